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
#include "messages/interfaces.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"

namespace streamscore {

// `initial` may be null (no model: replies carry no scores). With `converge_initial`
// (a restart on stored items, which may carry another version's scores), the shards
// re-score to the initial model as after a swap.
ModelActor spawn_model_actor(caf::actor_system& sys, ModelPtr initial, std::shared_ptr<ModelProbe> metrics,
                             bool converge_initial);

}  // namespace streamscore
