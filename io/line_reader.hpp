// Reads a JSONL file as RawBatches of complete lines, in big chunks. Lines point
// into shared chunk buffers, so nothing is copied per line. Blank lines are not
// records: they are skipped (but still counted for line numbers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "messages/messages.hpp"
#include "state/status.hpp"

namespace streamscore {

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
  uint64_t line() const { return line_; }                  // next line number

 private:
  Status refill(bool* got_bytes);
  void take_line(std::size_t end, RawBatch* batch);

  std::string path_;
  int fd_ = -1;
  std::shared_ptr<std::string> buffer_ = std::make_shared<std::string>();
  std::size_t pos_ = 0;        // first unconsumed byte in buffer_
  uint64_t base_offset_ = 0;   // file offset of buffer_[0]
  uint64_t line_ = 1;
};

}  // namespace streamscore
