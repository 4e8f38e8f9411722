// Spawning the pipeline's actors. Each takes what it owns; nothing is shared
// between shards.
//
//   source --RawBatch--> router --parse--> parser pool (parallel)
//                          |  --probe--> shards (their dedup sets)
//                          |  --classify--> window_clock (watermark, expiry, ticks)
//                          |  --ShardBatch (events + in-band ticks)--> shards --> store
//                          '--dead letters--> dead_letter sink
#pragma once

#include <caf/all.hpp>

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "actors/clock_probe.hpp"
#include "actors/router_probe.hpp"
#include "actors/shard_probe.hpp"
#include "messages/interfaces.hpp"
#include "state/event_clock.hpp"
#include "state/sequencer.hpp"
#include "state/shard_state.hpp"
#include "state/store.hpp"

namespace streamscore {

class DeadLetterSink;

// `features`: the declared features' plan the parser extracts inputs for (null: the default set).
ParserActor spawn_parser(caf::actor_system& sys, std::shared_ptr<const FeaturePlan> features);

struct ModelProbe;

// How a shard gets scores: at a barrier it sends the feature rows of the items it is
// about to hand over to the model actor; after a swap it marks its items for re-scoring
// in throttled steps (they leave at the following barriers).
struct ShardScoring {
  ModelActor model;                     // none: items carry no score
  std::shared_ptr<ModelProbe> metrics;  // the shard's entries are at its index
  std::size_t rescore_per_step = 1000;  // items marked per step
  int64_t rescore_interval_ms = 100;    // between steps
};

// `store` outlives the actor; the shard writes to it only for a `direct` barrier.
// The shard publishes its gauges (batches applied, tick duration) in `shard_probe` under `index`,
// and its totals (item versions, tick time, dedup ids, customers) after every batch.
ShardActor spawn_shard(caf::actor_system& sys, std::shared_ptr<ShardState> state, StateStore* store, uint32_t index,
                       std::shared_ptr<ShardProbe> shard_probe, ShardScoring scoring = {});

// Publishes the event time and the watermarks in `clock_probe` after each batch.
ClockActor spawn_window_clock(caf::actor_system& sys, std::shared_ptr<EventClock> clock,
                              std::shared_ptr<ClockProbe> clock_probe);

DeadLetterActor spawn_dead_letter_sink(caf::actor_system& sys, std::shared_ptr<DeadLetterSink> sink);

struct RouterConfig {
  std::vector<ParserActor> parsers;
  std::vector<ShardActor> shards;
  ClockActor clock;
  DeadLetterActor dead_letter;
  int64_t max_future_skew_ns = 0;
  int64_t since_ns = std::numeric_limits<int64_t>::min();  // valid records outside
  int64_t until_ns = std::numeric_limits<int64_t>::max();  // [since, until) are skipped
  std::function<int64_t()> now_ns;
  std::shared_ptr<RouterProbe> router_probe;
  std::shared_ptr<ShardProbe> shard_probe;  // the router counts the batches it sends each shard
};

RouterActor spawn_router(caf::actor_system& sys, RouterConfig config);

}  // namespace streamscore
