#include "actors/shard_probe.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace streamscore {

void ShardProbe::render(std::string& out, int64_t) const {
  render_histogram(out, "streamscore_tick_duration_seconds",
                   "Time a shard spends applying one batch that carries tick marks.", tick_duration);
  render_family(out, "streamscore_shard_queue_depth", "gauge", "Batches sent to each shard and not yet applied by it.");
  const int shards = std::min<int>(shard_count.load(), static_cast<int>(kMaxShardMetrics));
  for (int s = 0; s < shards; ++s)
    out += fmt::format("streamscore_shard_queue_depth{{shard=\"{}\"}} {}\n", s, shard_queue_depth(s));
  if (feature_names_.empty()) return;
  render_family(out, "streamscore_feature_values_skipped_total", "counter",
                "Accepted events a declared feature skipped: its field absent, not a number, or out of bounds.");
  for (std::size_t f = 0; f < feature_names_.size(); ++f)
    out += fmt::format("streamscore_feature_values_skipped_total{{feature=\"{}\"}} {}\n", feature_names_[f],
                       skipped_values[f].load(std::memory_order_relaxed));
}

// The default set skips nothing it reads (the amount is required): no family for it.
void ShardProbe::set_features(const FeatureSet& features) {
  feature_names_.clear();
  if (features.is_default()) return;
  for (const FeatureSpec& spec : features.specs()) feature_names_.push_back(spec.name);
}

}  // namespace streamscore
