// What the daemon reports about scoring: the active version, the latency of scoring one
// batch, swaps, rows scored, and per shard the items left on another version. Fed by the
// model actor and the shards; read by /metrics, the rollout reports and `run`'s summary.
// The engine always has one, so that /metrics shows "no model" as version 0.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/metrics_text.hpp"

namespace streamscore {

struct ModelProbe final : MetricsProbe {
  explicit ModelProbe(std::size_t shards) : stale(shards), stale_for(shards) {
    for (auto& s : stale) s.store(0);
    for (auto& s : stale_for) s.store(0);
  }
  std::atomic<int> active_version{0};  // "v7" -> 7; 0 = no model active
  LatencyHistogram scoring_latency;    // scoring one batch of changed customers
  std::atomic<uint64_t> swaps{0};
  std::atomic<uint64_t> rows_scored{0};
  std::atomic<uint64_t> rescored{0};  // items re-scored in the background (version + 1 each)
  // Per shard: items whose model_version is not the active one, as of its last re-score
  // step (0 once it has converged).
  std::vector<std::atomic<int64_t>> stale;
  std::vector<std::atomic<int>> stale_for;  // the version each shard's count refers to

  // Items left to re-score to the active version; -1 while a shard has not counted yet.
  int64_t stale_total() const {
    int64_t sum = 0;
    for (std::size_t i = 0; i < stale.size(); ++i) {
      if (stale_for[i].load() != active_version.load()) return -1;
      sum += stale[i].load(std::memory_order_relaxed);
    }
    return sum;
  }

  void render(std::string& out, int64_t now_unix_ns) const override;
};

}  // namespace streamscore
