// The model actor: holds the active model, scores batches of feature rows for the
// shards, and takes version-swap messages (from the daemon's watcher of the active
// reference). After a swap it tells every shard, which then re-scores its items in the
// background, throttled, so the table converges to the active version.
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "messages/interfaces.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"
#include "state/metrics.hpp"

namespace streamscore {

// What the daemon reports about scoring; shared by the model actor and the shards.
struct ModelMetrics {
  explicit ModelMetrics(std::size_t shards) : stale(shards), stale_for(shards) {
    for (auto& s : stale) s.store(0);
    for (auto& s : stale_for) s.store(0);
  }
  std::atomic<int> active_version{0};
  // The engine's /metrics (streamscore_model_active_version, the scoring latency); null
  // in tests that run the model actor alone.
  std::shared_ptr<EngineMetrics> engine;
  std::atomic<uint64_t> swaps{0};
  std::atomic<uint64_t> rows_scored{0};
  std::atomic<uint64_t> rescored{0};  // items re-scored in the background (version + 1 each)
  // Per shard: items whose model_version is not the active one, as of its last re-score
  // step (0 once it has converged).
  std::vector<std::atomic<int64_t>> stale;
  std::vector<std::atomic<int>> stale_for;  // the version each shard's count refers to

  void set_active(int version) {
    active_version = version;
    if (engine) engine->active_model_version = version;
  }
  void observe_scoring(int64_t ns) {
    if (engine) engine->scoring_latency.observe_ns(ns);
  }

  // Items left to re-score to the active version; -1 while a shard has not counted yet.
  int64_t stale_total() const {
    int64_t sum = 0;
    for (std::size_t i = 0; i < stale.size(); ++i) {
      if (stale_for[i].load() != active_version.load()) return -1;
      sum += stale[i].load(std::memory_order_relaxed);
    }
    return sum;
  }
};

// `initial` may be null (no model: replies carry no scores). With `converge_initial`
// (a restart on stored items, which may carry another version's scores), the shards
// re-score to the initial model as after a swap.
ModelActor spawn_model_actor(caf::actor_system& sys, ModelPtr initial, std::shared_ptr<ModelMetrics> metrics,
                             bool converge_initial);

}  // namespace streamscore
