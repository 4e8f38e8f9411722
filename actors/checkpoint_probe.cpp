#include "actors/checkpoint_probe.hpp"

namespace streamscore {

void CheckpointProbe::render(std::string& out, int64_t now_unix_ns) const {
  render_counter(out, "streamscore_items_written_total",
                 "Item puts committed to customer_feature_state by checkpoints.", items_committed.load());
  render_counter(out, "streamscore_write_conflicts_total",
                 "Item puts retried because another writer had moved the stored version.", write_conflicts.load());
  render_counter(out, "streamscore_checkpoints_total", "Checkpoints committed by this process.", checkpoints.load());
  const int64_t checkpoint_ms = last_checkpoint_unix_ms.load();
  if (checkpoint_ms <= 0) return;
  const int64_t checkpoint = checkpoint_ms * 1'000'000;
  render_gauge(out, "streamscore_last_checkpoint_seconds", "Time of the last checkpoint (Unix seconds).",
               static_cast<double>(checkpoint) / 1e9);
  render_gauge(out, "streamscore_checkpoint_age_seconds", "Seconds since the last checkpoint.",
               static_cast<double>(now_unix_ns - checkpoint) / 1e9);
}

}  // namespace streamscore
