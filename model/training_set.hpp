// The point-in-time training set: the event log replayed through the engine's own
// logic (EventParser -> the shard's dedup probe -> EventClock -> ShardState, as the
// router and one shard drive them), with a snapshot of every active customer's item
// at each cut tick, labelled from what happens after the cut.
//
// Point in time: a row's features are the item the engine serves at its cut tick T:
// transactions with event_time in [T - 30 days, T), as received when the clock reached
// T. Events at or after T never enter them (the shard only folds windows < T).
// Label (docs/semantics.md, "Model"): the sum of the customer's accepted transaction
// amounts with event_time in [T, T + 30 days) is in the top `top_fraction` of the
// cut's rows (ties at the threshold are positive, a zero amount never is), or, with
// `min_amount_cents` set, is at least that amount.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "common/time.hpp"
#include "model/features.hpp"
#include "model/log_replay.hpp"

namespace streamscore {

struct TrainingSetOptions {
  LogReplayOptions replay;          // the window settings and the wall clock (`shards` is 1)
  int64_t cut_every_windows = 288;  // one cut a day (cuts are multiples of it: UTC midnight)
  double top_fraction = 0.1;        // label: top decile of the cut...
  int64_t min_amount_cents = -1;    // ...or, when >= 0, at least this amount
};

struct TrainingRow {
  int64_t cut_tick = 0;  // tick index (instant = cut_tick * 300 s)
  std::string customer_id;
  int64_t txn_count = 0;  // the item's features at the cut
  int64_t cents = 0;
  int64_t last_event_ns = 0;  // the item's last_event_time (< the cut)
  int64_t future_cents = 0;   // transactions in [cut, cut + 30 days)
  float label = 0;
};

struct TrainingSet {
  std::vector<TrainingRow> rows;  // by cut, then customer id
  // The items' values at their cuts (item_feature_values), `width` per row, in the rows'
  // order: one array rather than one per row, which would double train's memory.
  std::vector<FeatureValue> values;
  std::size_t width = 0;
  const FeatureValue* values_of(std::size_t row) const { return values.data() + row * width; }
  std::vector<int64_t> cuts;  // cut ticks that got rows, ascending
  uint64_t read = 0, accepted = 0, duplicates = 0, dead_lettered = 0;
  int64_t first_event_ns = 0, last_event_ns = 0;  // accepted events
  int64_t end_tick = 0;                           // the final tick of the log
};

// Cuts whose 30-day label window ends after the log's final tick are dropped (their
// label would be incomplete). A customer is active at a cut when its item exists and
// its last_event_time is inside the 30 days before the cut.
Status build_training_set(const std::vector<std::string>& files, const TrainingSetOptions& options, TrainingSet* out);

}  // namespace streamscore
