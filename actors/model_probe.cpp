#include "actors/model_probe.hpp"

namespace streamscore {

void ModelProbe::render(std::string& out, int64_t) const {
  render_histogram(out, "streamscore_scoring_latency_seconds", "Time to score one batch of changed customers.",
                   scoring_latency);
  render_gauge(out, "streamscore_model_active_version",
               "Number of the active model version (v7 -> 7); 0 = no model active.",
               static_cast<double>(active_version.load()));
}

}  // namespace streamscore
