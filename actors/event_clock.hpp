// The logic of the window clock: event time, watermark, allowed lateness, expiry,
// first-occurrence resolution inside a batch, and the 5-minute ticks. Pure and
// sequential: it sees every valid record in arrival order, which is what makes
// results independent of shard counts, threads and batch sizes.
#pragma once

#include <cstdint>
#include <vector>

#include "state/dedup_table.hpp"
#include "state/event.hpp"

namespace streamscore {

// A valid record as the clock needs it, with what its shard's dedup set said.
struct Candidate {
  int64_t time_ns = 0;
  DedupKey key;
  uint32_t fingerprint = 0;       // event_fingerprint of the record
  uint32_t seen_fingerprint = 0;  // when seen_before
  int64_t seen_time_ns = 0;       // event time of the first occurrence, when seen_before
  bool seen_before = false;       // the shard's dedup set had the id before this batch
};

enum class Verdict : uint8_t { accepted, duplicate, conflicting_duplicate, expired };

struct ClassifyResult {
  std::vector<Verdict> verdicts;  // one per candidate
  // Tick marks with `position` = number of candidates before the tick. The first mark
  // of a run starts the clock (it is not counted as a tick).
  std::vector<TickMark> ticks;
  uint64_t ticks_emitted = 0;
};

struct ClockSnapshot {
  bool started = false;
  int64_t max_event_ns = 0;  // largest accepted event time
  int64_t tick = 0;          // last tick index emitted
};

class EventClock {
 public:
  explicit EventClock(int64_t allowed_lateness_ns) : lateness_ns_(allowed_lateness_ns) {}

  void classify(const std::vector<Candidate>& batch, ClassifyResult* out);
  // The final tick at the end of a finite input: the end of the window holding the
  // largest accepted event time. False when there is nothing to tick.
  bool final_tick(TickMark* mark, uint64_t* ticks_emitted);

  const ClockSnapshot& snapshot() const { return state_; }
  void restore(const ClockSnapshot& s) { state_ = s; }
  int64_t watermark_ns() const { return state_.max_event_ns - lateness_ns_; }

 private:
  bool expired(int64_t time_ns) const;
  // Whether an id whose first occurrence had this event time is still remembered.
  // Ids are forgotten exactly when their event leaves the 30-day horizon plus the
  // allowed lateness; shards drop them physically later, in sweeps.
  bool remembered(int64_t first_time_ns) const;
  void accept(int64_t time_ns, uint32_t position, ClassifyResult* out);

  int64_t lateness_ns_;
  ClockSnapshot state_;
  DedupTable batch_ids_;  // ids accepted earlier in the current batch
};

}  // namespace streamscore
