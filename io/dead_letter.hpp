// The dead-letter output: one JSON line per rejected record, with its reason, source
// position and raw bytes, so nothing read is silently dropped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "state/event.hpp"
#include "state/status.hpp"

namespace streamscore {

// Appends `{"reason":..,"field":..,"detail":..,"source":..,"raw":..}\n` ("field" omitted
// when empty). All strings are escaped with append_json_string_lossless, so the line is
// valid JSON even when `raw` is not valid UTF-8.
void append_dead_letter(std::string& out, Reason reason, std::string_view field,
                        std::string_view detail, std::string_view source, std::string_view raw);

// Buffered append-only file of already rendered dead-letter lines. An empty path means
// "discard": every call succeeds and nothing is written (the caller still counts them).
class DeadLetterWriter {
 public:
  DeadLetterWriter() = default;
  ~DeadLetterWriter();
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  // Creates missing parent directories; truncates or appends to an existing file.
  // When appending, a file longer than `cut_back_to` bytes is first cut back to it.
  Status open(const std::string& path, bool truncate,
              uint64_t cut_back_to = std::numeric_limits<uint64_t>::max());
  Status write(std::string_view already_rendered_lines);
  Status flush();
  void close();
  // The file length once flushed: what a checkpoint records.
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kBufferBytes = 1 << 20;
  std::string path_;
  FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  uint64_t bytes_ = 0;  // stdio buffer; must outlive file_
};

}  // namespace streamscore
