// Reads a JSONL file as RawBatches of complete lines, in big chunks. Lines point
// into shared chunk buffers, so nothing is copied per line. Blank lines are not
// records: they are skipped (but still counted for line numbers).
//
// A gzip or zstd file (io/content_decoder.hpp, told by its first bytes) is decompressed
// as it is read, in bounded memory. Its offsets and fingerprints are those of its
// content (the decompressed bytes), so that a position means the same in a plain log and
// in its compressed copy: opening at an offset decompresses the file from its beginning
// up to it, as a compressed stream cannot be entered in the middle.
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "common/raw_batch.hpp"
#include "common/status.hpp"
#include "io/content_decoder.hpp"

namespace streamscore {
class S3Client;
}

namespace streamscore {

// Identifies the first `length` bytes of the regular file open as `fd`: a hash of their
// first and last 64 KiB (all of them when shorter), as 16 hex digits. A state records it
// with its read position, so that a restart can tell the file it has read from another
// file under the same name (replaced, rewritten) without reading the whole prefix again.
// The content decides, not the inode: a copy or a restore of the same bytes is the same
// input. An unreadable prefix gives "".
std::string input_fingerprint(int fd, uint64_t length);

class LineReader {
 public:
  LineReader() = default;
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // An object store for paths "s3://bucket/key" (S3 objects are read in 8 MiB ranged
  // GETs). Without one, such a path does not open.
  void set_s3(S3Client* client) { s3_ = client; }

  // Opens `path` and starts at byte `offset` of its content, which is line `line` (1-based).
  // A content that ends before `offset` is an error.
  Status open(const std::string& path, uint64_t offset = 0, uint64_t line = 1);

  // Fills `batch` with up to `max_lines` records. At the end of the data read so
  // far, `*at_end` is set: with `take_partial`, a last line without '\n' is taken as a
  // record (end of a finite file); without it, the partial line waits for more
  // bytes (following a growing file, like tail -F). A compressed file that ends inside a
  // gzip member or zstd frame when `take_partial` is set, or holds corrupt data, is an
  // error that names the file, the line and the offsets reached: never a shorter log.
  Status next(std::size_t max_lines, bool take_partial, RawBatch* batch, bool* at_end);

  uint64_t offset() const { return base_offset_ + pos_; }  // bytes of content consumed

  // input_fingerprint of the content consumed ("" when the input is not a regular file).
  std::string fingerprint() const;
  uint64_t line() const { return line_; }  // next line number
  ContentFormat format() const { return format_; }

  // How many bytes of content `path` holds up to `length` (`*held` < `length`: it is
  // shorter; a plain file tells its size), and the fingerprint of its first `length`
  // bytes when it holds them. A compressed file is decompressed up to there.
  static Status content_prefix(const std::string& path, uint64_t length, uint64_t* held, std::string* fingerprint);

 private:
  Status detect_format(uint64_t offset);
  Status skip_to(uint64_t offset);
  bool nothing_new() const;
  Status refill(bool* got_bytes);
  Status read_file(char* out, std::size_t capacity, std::size_t* n);
  Status read_object(char* out, std::size_t capacity, std::size_t* n);
  struct ObjectRange {
    bool fetched = false;
    uint64_t from = 0;
    Status status;
    std::string bytes;
    uint64_t object_size = 0;
  };
  ObjectRange fetch_range(uint64_t from) const;
  bool is_object() const { return !bucket_.empty(); }
  Status decode(char* out, std::size_t capacity, std::size_t* produced);
  Status end_of_input() const;
  std::string where_decoded() const;
  Status damage_error() const;
  std::string consumed_tail() const;
  void keep_head();
  void take_line(std::size_t end, RawBatch* batch);

  std::string path_;
  int fd_ = -1;
  std::shared_ptr<std::string> buffer_ = std::make_shared<std::string>();
  std::size_t pos_ = 0;       // first unconsumed byte in buffer_
  uint64_t base_offset_ = 0;  // file offset of buffer_[0]
  uint64_t line_ = 1;
  uint64_t file_bytes_read_ = 0;  // read from the file (compressed bytes for a decoder)

  // S3 objects only: the object, and the range fetched last (served from object_pos_).
  S3Client* s3_ = nullptr;
  std::string bucket_, key_;
  uint64_t object_size_ = 0;
  bool object_sized_ = false;  // object_size_ is known (after the first GET)
  std::string object_range_;
  std::size_t object_pos_ = 0;

  // Compressed input only.
  ContentFormat format_ = ContentFormat::plain;
  std::unique_ptr<ContentDecoder> decoder_;
  std::string raw_;  // compressed bytes read, not yet decoded: raw_[raw_pos_, end)
  std::size_t raw_pos_ = 0;
  uint64_t content_decoded_ = 0;
  std::string damage_;     // what the decoder found corrupt, reported once the content before it is read
  std::string damage_at_;  // where_decoded() then

  // Last: it is waited for before the members it reads go.
  std::future<ObjectRange> next_range_;  // S3: the range after object_range_, fetched meanwhile
  bool decoder_filled_up_ = false;       // the last refill stopped on a full chunk: more may be due
  std::string head_;                     // the content's first bytes, and the last bytes consumed
  std::string previous_tail_;            // before buffer_[0], for fingerprint()
};

}  // namespace streamscore
