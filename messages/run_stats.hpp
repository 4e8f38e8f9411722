// The totals of a run, carried by a checkpoint barrier's cut and returned by the engine.
#pragma once

#include <array>
#include <cstdint>

#include "state/event.hpp"
#include "state/event_clock.hpp"

namespace streamscore {

// A plain copy of the counters at the end of a run, plus what the shards report.
struct RunStats {
  uint64_t read = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t conflicting_duplicates = 0;
  std::array<uint64_t, kReasonCount> dead_lettered{};
  uint64_t ticks = 0;
  uint64_t out_of_range = 0;
  uint64_t key_mismatches = 0;
  uint64_t customers = 0;
  uint64_t items_written = 0;
  uint64_t logical_writes = 0;
  uint64_t dedup_ids = 0;
  uint64_t conflicts = 0;       // writes retried because another writer moved the version
  ClockSnapshot clock;          // where the window clock stands at the end
  double finish_seconds = 0;    // final tick + writing every item, after the last record
  double recovery_seconds = 0;  // loading the state at start (`run`)

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (uint64_t d : dead_lettered) sum += d;
    return sum;
  }
  bool balanced() const { return read == accepted + duplicates + dead_lettered_total() + out_of_range; }
};

}  // namespace streamscore
