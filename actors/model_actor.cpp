#include "actors/model_actor.hpp"

#include <chrono>

#include "model/scorer.hpp"

namespace streamscore {

namespace {

struct ModelActorState {
  ModelPtr model;
  std::vector<ShardActor> shards;
  std::shared_ptr<ModelProbe> metrics;
};

ModelActor::behavior_type model_actor(ModelActor::stateful_pointer<ModelActorState> self, ModelPtr initial,
                                      std::shared_ptr<ModelProbe> metrics, bool converge_initial) {
  self->state.model = std::move(initial);
  self->state.metrics = std::move(metrics);
  return {
      [=](shards_atom, std::vector<ShardActor>& shards) {
        auto& st = self->state;
        st.shards = std::move(shards);
        if (st.model && converge_initial)
          for (const auto& shard : st.shards) self->send(shard, model_atom::value, st.model->meta.version);
      },
      // One XGBoosterPredictFromDense call per request: a shard sends all the items it is
      // about to write, read through the active model's columns.
      [=](score_atom, const ScoreRequest& request) -> caf::result<ScoreReply> {
        auto& st = self->state;
        ScoreReply reply;
        if (!st.model) return reply;
        const auto started = std::chrono::steady_clock::now();
        Status s = score_items(*st.model, request.items, &reply.scores);
        st.metrics->scoring_latency.observe_ns(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
        if (!s.is_ok())
          return caf::make_error(caf::sec::runtime_error,
                                 "model " + st.model->meta.version_name() + ": " + s.to_string());
        reply.model_version = st.model->meta.version;
        st.metrics->rows_scored += request.items.size();
        return reply;
      },
      // The new model was loaded and checked by the sender; scores from the next request
      // on carry its version. Every shard starts re-scoring its items.
      [=](swap_atom, ModelPtr& model) {
        auto& st = self->state;
        if (!model || (st.model && st.model->meta.version == model->meta.version)) return;
        st.model = std::move(model);
        st.metrics->active_version = st.model->meta.version;
        ++st.metrics->swaps;
        for (const auto& shard : st.shards) self->send(shard, model_atom::value, st.model->meta.version);
      },
  };
}

}  // namespace

ModelActor spawn_model_actor(caf::actor_system& sys, ModelPtr initial, std::shared_ptr<ModelProbe> metrics,
                             bool converge_initial) {
  // Set before the actor runs: readers of the metrics see the initial model at once.
  metrics->active_version = initial ? initial->meta.version : 0;
  return sys.spawn(model_actor, std::move(initial), std::move(metrics), converge_initial);
}

}  // namespace streamscore
