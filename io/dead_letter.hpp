// The dead-letter output: one JSON line per rejected record, with its reason, source
// position and raw bytes, so nothing read is silently dropped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "state/event.hpp"

namespace streamscore {

// Appends `{"reason":..,"field":..,"detail":..,"source":..,"raw":..}\n` ("field" omitted
// when empty). All strings are escaped with append_json_string_lossless, so the line is
// valid JSON even when `raw` is not valid UTF-8.
void append_dead_letter(std::string& out, Reason reason, std::string_view field, std::string_view detail,
                        std::string_view source, std::string_view raw);

// The dead letters of one input batch: their rendered lines, and for each line where it
// ends and what it is, so that a sink that sends one message per record (Kafka) can
// split them and label each without parsing the JSON again.
struct DeadLetterEntry {
  std::size_t end = 0;  // the line is lines[previous end, end), its '\n' included
  Reason reason = Reason::not_json;
  int32_t partition = -1;  // the Kafka partition; -1 when the source is not Kafka
  uint64_t position = 0;   // line number in a file, record number, or offset in a partition
};
struct DeadLetterBatch {
  std::string source;  // the batch's source (RawBatch::source): a file path, "generator", or the topic
  std::string lines;
  std::vector<DeadLetterEntry> entries;
};

// Where dead letters go: a file (DeadLetterWriter) or a Kafka topic
// (io/kafka_sinks.hpp). The dead-letter actor calls it; a checkpoint calls flush() and
// records identity() and position() with the state, so that a committed checkpoint
// never covers a dead letter that is not written (file) or delivered (Kafka).
class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  virtual Status write(const DeadLetterBatch& batch) = 0;
  virtual Status flush() = 0;
  // What the checkpoint records: the file's path and length, or the topic and the
  // number of messages delivered.
  virtual std::string identity() const = 0;
  virtual uint64_t position() const = 0;
  // Whether write()/flush() may block on the network (the actor then gets a thread).
  virtual bool blocking() const { return false; }
};

// Buffered append-only file of already rendered dead-letter lines. An empty path means
// "discard": every call succeeds and nothing is written (the caller still counts them).
class DeadLetterWriter : public DeadLetterSink {
 public:
  DeadLetterWriter() = default;
  ~DeadLetterWriter() override;
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  // Creates missing parent directories; truncates or appends to an existing file.
  // When appending to a file whose length a checkpoint recorded (`cut_back_to`), a longer
  // file is first cut back to it, and a shorter or missing one is refused (corruption).
  Status open(const std::string& path, bool truncate, uint64_t cut_back_to = std::numeric_limits<uint64_t>::max());
  Status write(std::string_view already_rendered_lines);
  Status write(const DeadLetterBatch& batch) override { return write(batch.lines); }
  // fflush and fdatasync: what a checkpoint then records is on disk.
  Status flush() override;
  void close();
  std::string identity() const override { return path_; }
  uint64_t position() const override { return bytes_; }
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
