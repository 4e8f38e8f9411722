// Object layouts split by source partition, as Kafka Connect's S3 sink writes a topic:
// `topics/<topic>/partition=<N>/<topic>+<N>+<start offset>.json.gz`. Each object holds
// records of one Kafka partition, so each partition's records can tick with that
// partition's clock (docs/semantics.md section 10), whatever order the partitions are
// read in; what matters is the order inside a partition, which the start offsets give.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

// The event logs of one listing (URLs or paths), in reading order, with the partition of
// each when the listing is a partitioned layout.
struct PartitionedLogs {
  std::vector<std::string> logs;
  std::vector<int32_t> partitions;  // one per log; empty: no partition=N in any name
  int32_t partition_count = 0;      // the highest partition + 1 (0: not partitioned)
};

// Orders `names` (the objects under `listed`, the prefix as given, named in errors) as a
// partitioned layout when one of them has a directory `partition=N` (N a decimal
// number; the last such directory counts): by partition, and inside a partition by the
// start offset of Kafka Connect's name `<topic>+<N>+<offset>.<ext>` (numerically, so
// unpadded offsets sort too) or, when one of the partition's names is not of that form,
// in name order. Without `partition=N` in any name, `names` stay as they are. Usage
// errors (invalid_argument) name the object: a name without `partition=N` among names
// with it, a Connect name whose partition is not its directory's, Connect names of two
// topics (whose partitions would share clocks).
Status order_partitioned(const std::string& listed, std::vector<std::string> names, PartitionedLogs* out);

// A layout's objects as a resumable reader records them at its first start: per
// partition, how many and the last one (compact JSON, one line). An archive that Kafka
// Connect keeps writing grows meanwhile, as a topic does; a resume reads what the first
// start listed, so that it equals one uninterrupted read.
std::string encode_listing(const PartitionedLogs& logs);
// Cuts `logs` (as listed now) to the objects `listing` recorded: the first `count` of
// each partition it names, the last of which must be the one it names; partitions and
// objects added since are left out, and partition_count is the first start's. Corruption
// naming the partition when its objects are no longer those (removed, renamed, or one
// added among them).
Status keep_listed(const std::string& listing, const std::string& listed, PartitionedLogs* logs);

}  // namespace streamscore
