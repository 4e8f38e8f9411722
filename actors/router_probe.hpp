// The router's counters: every record it read and where it went (accepted, duplicate,
// dead-lettered by reason, outside a backfill's range), the ticks it emitted. Fed by the
// router actor only; read by /metrics, progress lines, `stress` and `backfill`.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>

#include "io/metrics_text.hpp"
#include "state/event.hpp"

namespace streamscore {

struct RouterProbe final : MetricsProbe {
  std::atomic<uint64_t> read{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};  // includes conflicting ones
  std::atomic<uint64_t> conflicting_duplicates{0};
  std::array<std::atomic<uint64_t>, kReasonCount> dead_lettered{};
  std::atomic<uint64_t> ticks{0};
  std::atomic<uint64_t> out_of_range{0};  // skipped: outside a backfill's time range
  // The last tick emitted (5-minute window index), for progress by event time.
  std::atomic<int64_t> last_tick{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> key_mismatches{0};  // Kafka records keyed other than their customer_id

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (const auto& d : dead_lettered) sum += d.load(std::memory_order_relaxed);
    return sum;
  }

  void render(std::string& out, int64_t now_unix_ns) const override;
};

}  // namespace streamscore
