// The Kafka source's health on /metrics: client errors, rebalances, the partitions it
// holds, its lag and the offsets it committed. Fed by the source (io/kafka_source.cpp);
// rendered as zeros by a daemon without a Kafka source.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "io/metrics_text.hpp"

namespace streamscore {

struct KafkaSourceProbe final : MetricsProbe {
  std::atomic<uint64_t> errors{0};          // client errors (broker down, request errors), recovered or not
  std::atomic<uint64_t> rebalances{0};      // partition assignments and revocations
  std::atomic<int64_t> partitions{0};       // partitions assigned now
  std::atomic<int64_t> lag{-1};             // messages behind the partitions' ends; -1 = unknown
  std::atomic<uint64_t> offset_commits{0};  // offsets committed to the group after a checkpoint

  void render(std::string& out, int64_t now_unix_ns) const override;
};

}  // namespace streamscore
