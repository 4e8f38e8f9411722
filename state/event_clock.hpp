// The logic of the window clocks: event time, watermark, allowed lateness, expiry,
// first-occurrence resolution inside a batch, and the 5-minute ticks. Pure and
// sequential: it sees every valid record in arrival order, which is what makes
// results independent of shard counts, threads and batch sizes.
//
// One clock per source partition (Candidate::clock): a record moves, expires and is
// judged a duplicate by its own partition's clock only, so a partition's results do not
// depend on when the other partitions were read, nor by whom (docs/semantics.md 7, 21).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
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
  int32_t clock = kSingleClock;   // the record's source partition
};

enum class Verdict : uint8_t { accepted, duplicate, conflicting_duplicate, expired };

struct ClassifyResult {
  std::vector<Verdict> verdicts;  // one per candidate
  // Tick marks with `position` = number of candidates before the tick, each for the
  // clock that moved. The first mark of a clock starts it (it is not counted as a tick).
  std::vector<TickMark> ticks;
  uint64_t ticks_emitted = 0;
};

struct ClockSnapshot {
  bool started = false;
  int64_t max_event_ns = 0;  // largest accepted event time
  int64_t tick = 0;          // last tick index emitted
};

// Every partition's clock, by partition (kSingleClock: a file, the generator).
using ClockSnapshots = std::map<int32_t, ClockSnapshot>;

// The clocks as one, for gauges and summaries: the largest event time and tick of any.
ClockSnapshot combined(const ClockSnapshots& clocks);
// The earliest tick of the started clocks, and whether one has started: what every
// clock has reached (how far dedup ids may be forgotten).
bool earliest_tick(const ClockSnapshots& clocks, int64_t* tick);

class EventClock {
 public:
  // `horizon_windows`: the longest feature window (FeatureSet::horizon_windows).
  explicit EventClock(int64_t allowed_lateness_ns, int64_t horizon_windows = kHorizonWindows)
      : lateness_ns_(allowed_lateness_ns), horizon_windows_(horizon_windows) {}

  void classify(const std::vector<Candidate>& batch, ClassifyResult* out);
  // The final tick at the end of a finite input, one for every clock (kEveryClock): the
  // end of the window holding the largest accepted event time of any partition, so that
  // a finite read ends complete as of one instant, as a file does; at least the end of
  // the window holding `floor_ns` (the largest of partitions read elsewhere). False when
  // there is nothing to tick.
  bool final_tick(TickMark* mark, uint64_t* ticks_emitted, int64_t floor_ns = std::numeric_limits<int64_t>::min());

  const ClockSnapshots& snapshots() const { return clocks_; }
  ClockSnapshot snapshot() const { return combined(clocks_); }
  // Replaces every clock (a restart, a shared table's new assignment).
  void restore(const ClockSnapshots& s) { clocks_ = s; }
  void restore(const ClockSnapshot& s) { clocks_ = {{kSingleClock, s}}; }
  int64_t watermark_ns() const { return snapshot().max_event_ns - lateness_ns_; }
  int64_t lateness_ns() const { return lateness_ns_; }

 private:
  bool expired(const ClockSnapshot& clock, int64_t time_ns) const;
  // Whether an id whose first occurrence had this event time is still remembered.
  // Ids are forgotten exactly when their event leaves the horizon plus the
  // allowed lateness; shards drop them physically later, in sweeps.
  bool remembered(const ClockSnapshot& clock, int64_t first_time_ns) const;
  void accept(ClockSnapshot& clock, int32_t id, int64_t time_ns, uint32_t position, ClassifyResult* out);

  int64_t lateness_ns_;
  int64_t horizon_windows_;
  ClockSnapshots clocks_;
  DedupTable batch_ids_;  // ids accepted earlier in the current batch
};

}  // namespace streamscore
