// What a source hands to the pipeline: raw records in one shared buffer. Below every
// layer, so that the readers (io/) build batches without pulling in the actors' messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace streamscore {

// One line of input inside a RawBatch buffer.
struct LineRef {
  uint32_t offset = 0;
  uint32_t length = 0;    // without the line break
  uint64_t position = 0;  // line number in a file (1-based), or offset in a partition
};

// A Kafka message key in the batch's buffer; length < 0: the message has no key.
struct KeyRef {
  uint32_t offset = 0;
  int32_t length = -1;
};

// Raw records from a source. Lines point into one shared, immutable buffer.
struct RawBatch {
  std::shared_ptr<const std::string> buffer;
  std::vector<LineRef> lines;
  // Kafka only (empty otherwise), one per line: the key (expected: the value's
  // customer_id); `source` is then the topic, positions are offsets.
  std::vector<KeyRef> keys;
  // Kafka, or an object of a partitioned layout (io/partitioned_layout.hpp), one per
  // line: the source partition, whose clock the record ticks with (empty: one clock).
  std::vector<int32_t> partitions;
  // Kafka with a shared table (state.shared), or a part's share of a topic or of a
  // partitioned layout: the partition count. Each customer belongs to the partition
  // Kafka's default partitioner gives its id; a record read from another partition is
  // dead-lettered (wrong_partition). 0: no such check.
  int32_t partition_count = 0;
  std::string source;  // "events.jsonl", later "customer-events/3"
  std::string_view line(std::size_t i) const {
    return std::string_view(buffer->data() + lines[i].offset, lines[i].length);
  }
};

using RawBatchPtr = std::shared_ptr<const RawBatch>;

}  // namespace streamscore
