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
}

}  // namespace streamscore
