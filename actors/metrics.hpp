// Counters the pipeline publishes while it runs (progress lines, `run` summaries,
// later /metrics). Written by the router and shards, read by anyone; relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>

#include "actors/event_clock.hpp"
#include "state/event.hpp"

namespace streamscore {

struct EngineMetrics {
  std::atomic<uint64_t> read{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};             // includes conflicting ones
  std::atomic<uint64_t> conflicting_duplicates{0};
  std::array<std::atomic<uint64_t>, kReasonCount> dead_lettered{};
  std::atomic<uint64_t> ticks{0};
  std::atomic<uint64_t> out_of_range{0};  // skipped: outside a backfill's time range
  // The last tick emitted (5-minute window index), for progress by event time.
  std::atomic<int64_t> last_tick{std::numeric_limits<int64_t>::min()};
  // Checkpoints (written by the engine when it commits one).
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<int64_t> last_checkpoint_unix_ms{0};  // 0 = none yet in this process
  std::atomic<uint64_t> items_committed{0};          // item puts in committed checkpoints
  std::atomic<uint64_t> write_conflicts{0};          // puts retried: another writer moved the version

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (const auto& d : dead_lettered) sum += d.load(std::memory_order_relaxed);
    return sum;
  }
};

// A plain copy of the counters at the end of a run, plus what the shards report.
struct RunStats {
  uint64_t read = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t conflicting_duplicates = 0;
  std::array<uint64_t, kReasonCount> dead_lettered{};
  uint64_t ticks = 0;
  uint64_t out_of_range = 0;
  uint64_t customers = 0;
  uint64_t items_written = 0;
  uint64_t logical_writes = 0;
  uint64_t dedup_ids = 0;
  uint64_t conflicts = 0;     // writes retried because another writer moved the version
  ClockSnapshot clock;        // where the window clock stands at the end
  double finish_seconds = 0;  // final tick + writing every item, after the last record
  double recovery_seconds = 0;  // loading the state at start (`run`)

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (uint64_t d : dead_lettered) sum += d;
    return sum;
  }
  bool balanced() const {
    return read == accepted + duplicates + dead_lettered_total() + out_of_range;
  }
};

}  // namespace streamscore
