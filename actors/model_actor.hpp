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

#include "actors/model_probe.hpp"
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

// `initial` may be null (no model: replies carry no scores). With `converge_initial`
// (a restart on stored items, which may carry another version's scores), the shards
// re-score to the initial model as after a swap.
caf::actor spawn_model_actor(caf::actor_system& sys, ModelPtr initial, std::shared_ptr<ModelProbe> metrics,
                             bool converge_initial);

}  // namespace streamscore

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ScoreReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(streamscore::ModelPtr)
