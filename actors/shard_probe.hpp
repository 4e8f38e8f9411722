// The shards' work: their totals (item versions, tick time, dedup ids, customers), the
// time one batch with ticks takes, and each shard's queue. Fed by the shard actors and,
// for the batches sent, by the router; read by /metrics and `stress`.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/metrics_text.hpp"
#include "state/feature_set.hpp"

namespace streamscore {

// Gauges per shard are kept for at most this many shards (engine.shards allows 1024).
constexpr std::size_t kMaxShardMetrics = 1024;

struct ShardProbe final : MetricsProbe {
  // Shard work, published after every applied batch (load simulations, `stress`).
  std::atomic<uint64_t> item_versions{0};  // logical item writes (new versions) at ticks
  std::atomic<uint64_t> tick_nanos{0};     // time the shards spent evaluating ticks, summed
  std::atomic<int64_t> dedup_ids{0};       // ids the shards remember now (all shards)
  std::atomic<int64_t> customers{0};       // customers the shards hold now (all shards)
  // Wall time a shard spends applying one batch that carries tick marks (evaluating
  // the customers whose windows moved), per batch.
  LatencyHistogram tick_duration;
  std::atomic<int> shard_count{0};
  // Batches the router has sent to each shard, and batches the shard has applied; the
  // difference is the shard's queue depth. Counted here rather than read from CAF's
  // mailbox().size(): that walks CAF's queue internals (a sentinel downcast UBSan
  // reports), counts every message kind, and was only sampled when a batch was taken.
  // These are live and readable from any thread.
  std::array<std::atomic<uint64_t>, kMaxShardMetrics> shard_batches_sent{};
  std::array<std::atomic<uint64_t>, kMaxShardMetrics> shard_batches_applied{};

  // The router, before it sends a shard a batch (the mailbox hand-over then orders this
  // before the shard's batch_applied).
  void batch_sent(std::size_t shard) {
    if (shard < kMaxShardMetrics) shard_batches_sent[shard].fetch_add(1, std::memory_order_relaxed);
  }
  // The shard, once a batch is applied.
  void batch_applied(std::size_t shard) {
    if (shard < kMaxShardMetrics) shard_batches_applied[shard].fetch_add(1, std::memory_order_release);
  }
  // Batches sent to `shard` and not applied yet (waiting, or being applied). `applied` is
  // read first: every send it has seen the application of is then visible too, so the
  // difference is never negative.
  int64_t shard_queue_depth(std::size_t shard) const {
    if (shard >= kMaxShardMetrics) return 0;
    const uint64_t applied = shard_batches_applied[shard].load(std::memory_order_acquire);
    const uint64_t sent = shard_batches_sent[shard].load(std::memory_order_acquire);
    return sent > applied ? static_cast<int64_t>(sent - applied) : 0;
  }

  // Accepted events each declared feature skipped (its field absent, not a number, or
  // out of bounds), by feature in config order; set_features names them (before the shards start).
  std::array<std::atomic<uint64_t>, kMaxFeatures> skipped_values{};
  void set_features(const FeatureSet& features);
  std::size_t feature_count() const { return feature_names_.size(); }

  void render(std::string& out, int64_t now_unix_ns) const override;

 private:
  std::vector<std::string> feature_names_;
};

}  // namespace streamscore
