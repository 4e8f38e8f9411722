// Where event time stands: the largest accepted event time, the watermark, and each Kafka
// partition's own watermark. Fed by the window clock actor; read by /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "io/metrics_text.hpp"

namespace streamscore {

class ClockProbe final : public MetricsProbe {
 public:
  // Event time (ns since the Unix epoch): the largest accepted event time and the
  // watermark (that minus the allowed lateness). `started` is 0 until the first accepted
  // event, and the two gauges mean nothing before.
  std::atomic<int> started{0};
  std::atomic<int64_t> max_event_time_ns{0};
  std::atomic<int64_t> watermark_ns{0};

  // The watermark (ns) of each Kafka partition whose clock this daemon holds: each
  // partition ticks by its own records, so an idle one shows here as behind.
  void set_partition_watermarks(std::map<int32_t, int64_t> watermarks) {
    std::lock_guard<std::mutex> lock(partition_watermarks_mutex_);
    partition_watermarks_ = std::move(watermarks);
  }
  std::map<int32_t, int64_t> partition_watermarks() const {
    std::lock_guard<std::mutex> lock(partition_watermarks_mutex_);
    return partition_watermarks_;
  }

  void render(std::string& out, int64_t now_unix_ns) const override;

 private:
  mutable std::mutex partition_watermarks_mutex_;  // locked by the const reader too
  std::map<int32_t, int64_t> partition_watermarks_;
};

}  // namespace streamscore
