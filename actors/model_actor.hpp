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

#include "model/artifact.hpp"
#include "model/features.hpp"

namespace streamscore {

using score_atom = caf::atom_constant<caf::atom("score")>;
using swap_atom = caf::atom_constant<caf::atom("swap")>;
using model_atom = caf::atom_constant<caf::atom("model")>;      // model actor -> shard: new version
using rescore_atom = caf::atom_constant<caf::atom("rescore")>;  // shard -> itself: next step
using shards_atom = caf::atom_constant<caf::atom("shards")>;

using ModelPtr = std::shared_ptr<const LoadedModel>;

struct ScoreRequest {
  std::vector<FeatureRow> rows;
};

struct ScoreReply {
  int model_version = 0;      // 0: no active model, `scores` is empty
  std::vector<float> scores;  // one per row
};

// What the daemon reports about scoring; shared by the model actor and the shards.
struct ModelMetrics {
  explicit ModelMetrics(std::size_t shards) : stale(shards) {
    for (auto& s : stale) s.store(0);
  }
  std::atomic<int> active_version{0};
  std::atomic<uint64_t> swaps{0};
  std::atomic<uint64_t> rows_scored{0};
  std::atomic<uint64_t> rescored{0};       // items re-scored in the background (version + 1 each)
  // Per shard: items whose model_version is not the active one, as of its last re-score
  // step (0 once it has converged).
  std::vector<std::atomic<int64_t>> stale;

  int64_t stale_total() const {
    int64_t sum = 0;
    for (const auto& s : stale) sum += s.load(std::memory_order_relaxed);
    return sum;
  }
};

// `initial` may be null (no model: replies carry no scores).
caf::actor spawn_model_actor(caf::actor_system& sys, ModelPtr initial,
                             std::shared_ptr<ModelMetrics> metrics);

}  // namespace streamscore

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ModelPtr)
