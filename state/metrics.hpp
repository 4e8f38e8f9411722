// Counters the pipeline publishes while it runs (progress lines, `run` summaries,
// GET /metrics). Written by the router and shards, read by anyone; relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>

#include "state/event.hpp"
#include "state/event_clock.hpp"

namespace streamscore {

// A Prometheus-style histogram with fixed bucket bounds, lock-free: observe() from any
// thread, read the buckets from any other. Counts are per bucket (not cumulative); the
// renderer accumulates them.
struct LatencyHistogram {
  // Upper bounds in seconds, 50 us .. 10 s; one more bucket holds everything above.
  static constexpr std::array<double, 16> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                     0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   10.0};
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_ns{0};

  void observe_ns(int64_t ns) {
    if (ns < 0) ns = 0;
    const double seconds = static_cast<double>(ns) / 1e9;
    std::size_t b = 0;
    while (b < kBounds.size() && seconds > kBounds[b]) ++b;
    buckets[b].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
};

// Gauges per shard are kept for at most this many shards (engine.shards allows 1024).
constexpr std::size_t kMaxShardMetrics = 1024;

struct EngineMetrics {
  std::atomic<uint64_t> read{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};  // includes conflicting ones
  std::atomic<uint64_t> conflicting_duplicates{0};
  std::array<std::atomic<uint64_t>, kReasonCount> dead_lettered{};
  std::atomic<uint64_t> ticks{0};
  std::atomic<uint64_t> out_of_range{0};  // skipped: outside a backfill's time range
  // The last tick emitted (5-minute window index), for progress by event time.
  std::atomic<int64_t> last_tick{std::numeric_limits<int64_t>::min()};
  // Checkpoints (written by the engine when it commits one).
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<int64_t> last_checkpoint_unix_ms{0};  // 0 = none yet in this process
  std::atomic<uint64_t> items_committed{0};         // item puts in committed checkpoints
  std::atomic<uint64_t> write_conflicts{0};         // puts retried: another writer moved the version
  // Shard work, published after every applied batch (load simulations, `stress`).
  std::atomic<uint64_t> item_versions{0};   // logical item writes (new versions) at ticks
  std::atomic<uint64_t> tick_nanos{0};      // time the shards spent evaluating ticks, summed
  std::atomic<int64_t> dedup_ids{0};        // ids the shards remember now (all shards)
  std::atomic<int64_t> customers{0};        // customers the shards hold now (all shards)
  std::atomic<uint64_t> key_mismatches{0};  // Kafka records keyed other than their customer_id
  // The Kafka source's own health. The source updates it through the engine's const
  // view of the metrics, hence mutable.
  struct KafkaGauges {
    std::atomic<uint64_t> errors{0};          // client errors (broker down, request errors), recovered or not
    std::atomic<uint64_t> rebalances{0};      // partition assignments and revocations
    std::atomic<int64_t> partitions{0};       // partitions assigned now
    std::atomic<int64_t> lag{-1};             // messages behind the partitions' ends; -1 = unknown
    std::atomic<uint64_t> offset_commits{0};  // offsets committed to the group after a checkpoint
  };
  mutable KafkaGauges kafka;

  // ---- for /metrics (rendered by io/metrics_text.cpp) -----------------------------
  // Event time (ns since the Unix epoch): the largest accepted event time and the
  // watermark (that minus the allowed lateness). `event_clock_started` is 0 until the
  // first accepted event, and the two gauges mean nothing before.
  std::atomic<int> event_clock_started{0};
  std::atomic<int64_t> max_event_time_ns{0};
  std::atomic<int64_t> watermark_ns{0};
  // The watermark (ns) of each Kafka partition whose clock this daemon holds: each
  // partition ticks by its own records, so an idle one shows here as behind.
  void set_partition_watermarks(std::map<int32_t, int64_t> watermarks) const {
    std::lock_guard<std::mutex> lock(partition_watermarks_mutex_);
    partition_watermarks_ = std::move(watermarks);
  }
  std::map<int32_t, int64_t> partition_watermarks() const {
    std::lock_guard<std::mutex> lock(partition_watermarks_mutex_);
    return partition_watermarks_;
  }
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
  // Model scoring: latency of scoring one batch of changed customers, and the active
  // model version number ("v7" -> 7; 0 = no model active). Fed by the model actor.
  LatencyHistogram scoring_latency;
  std::atomic<int64_t> active_model_version{0};

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (const auto& d : dead_lettered) sum += d.load(std::memory_order_relaxed);
    return sum;
  }

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

 private:
  mutable std::mutex partition_watermarks_mutex_;
  mutable std::map<int32_t, int64_t> partition_watermarks_;
};

// A plain copy of the counters at the end of a run, plus what the shards report.
struct RunStats {
  uint64_t read = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t conflicting_duplicates = 0;
  std::array<uint64_t, kReasonCount> dead_lettered{};
  uint64_t ticks = 0;
  uint64_t out_of_range = 0;
  uint64_t key_mismatches = 0;
  uint64_t customers = 0;
  uint64_t items_written = 0;
  uint64_t logical_writes = 0;
  uint64_t dedup_ids = 0;
  uint64_t conflicts = 0;       // writes retried because another writer moved the version
  ClockSnapshot clock;          // where the window clock stands at the end
  double finish_seconds = 0;    // final tick + writing every item, after the last record
  double recovery_seconds = 0;  // loading the state at start (`run`)

  uint64_t dead_lettered_total() const {
    uint64_t sum = 0;
    for (uint64_t d : dead_lettered) sum += d;
    return sum;
  }
  bool balanced() const { return read == accepted + duplicates + dead_lettered_total() + out_of_range; }
};

}  // namespace streamscore
