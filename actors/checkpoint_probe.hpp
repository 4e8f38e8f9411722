// The checkpoints this process committed: how many, when the last one was, the item puts
// they carried and the puts retried because another writer had moved a version. Fed by
// the engine when it commits a checkpoint; read by /metrics, `stress` and `backfill`.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "io/metrics_text.hpp"

namespace streamscore {

struct CheckpointProbe final : MetricsProbe {
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<int64_t> last_checkpoint_unix_ms{0};  // 0 = none yet in this process
  std::atomic<uint64_t> items_committed{0};         // item puts in committed checkpoints
  std::atomic<uint64_t> write_conflicts{0};         // puts retried: another writer moved the version

  void render(std::string& out, int64_t now_unix_ns) const override;
};

}  // namespace streamscore
