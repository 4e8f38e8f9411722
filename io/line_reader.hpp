// Reads a JSONL file as RawBatches of complete lines, in big chunks. Lines point
// into shared chunk buffers, so nothing is copied per line. Blank lines are not
// records: they are skipped (but still counted for line numbers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/raw_batch.hpp"
#include "common/status.hpp"

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

  // Opens `path` and starts at byte `offset`, which is line `line` (1-based).
  Status open(const std::string& path, uint64_t offset = 0, uint64_t line = 1);

  // Fills `batch` with up to `max_lines` records. At the end of the data read so
  // far, `*at_end` is set: with `take_partial`, a last line without '\n' is taken as a
  // record (end of a finite file); without it, the partial line waits for more
  // bytes (following a growing file, like tail -F).
  Status next(std::size_t max_lines, bool take_partial, RawBatch* batch, bool* at_end);

  uint64_t offset() const { return base_offset_ + pos_; }  // bytes consumed

  // input_fingerprint of what has been consumed ("" when the input is not a regular file).
  std::string fingerprint() const;
  uint64_t line() const { return line_; }  // next line number

 private:
  Status refill(bool* got_bytes);
  void take_line(std::size_t end, RawBatch* batch);

  std::string path_;
  int fd_ = -1;
  std::shared_ptr<std::string> buffer_ = std::make_shared<std::string>();
  std::size_t pos_ = 0;       // first unconsumed byte in buffer_
  uint64_t base_offset_ = 0;  // file offset of buffer_[0]
  uint64_t line_ = 1;
};

}  // namespace streamscore
