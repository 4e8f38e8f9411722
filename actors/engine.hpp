// The engine: spawns the actor pipeline on a store, takes raw batches from any
// source, and returns the totals at the end. `replay`, `run`, the tests and the
// benchmarks all drive this one class.
#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/checkpoint_probe.hpp"
#include "actors/clock_probe.hpp"
#include "actors/model_probe.hpp"
#include "actors/router_probe.hpp"
#include "actors/shard_probe.hpp"
#include "common/status.hpp"
#include "common/time.hpp"
#include "messages/run_stats.hpp"
#include "state/event_clock.hpp"
#include "state/feature_set.hpp"
#include "state/store.hpp"

namespace caf {
class actor_system;
class actor_system_config;
class scoped_actor;
class actor;
}  // namespace caf

namespace streamscore {

struct RawBatch;
class DeadLetterSink;
class ItemSink;
struct LoadedModel;
struct BarrierRequest;
struct Cut;

// Picks customers by id (a shared table's partitions, a partitioned backfill's part).
using CustomerFilter = std::function<bool(std::string_view customer_id)>;
// The Kafka partition of a customer (Kafka's default partitioner).
using CustomerPartition = std::function<int32_t(std::string_view customer_id)>;

struct EngineOptions {
  int shards = 8;
  int threads = 0;  // CAF scheduler threads; 0 = number of cores
  int parsers = 0;  // 0 = number of threads
  // Nice steps added to every scheduler thread CAF starts (config engine.nice): ingestion
  // yields the CPU to the HTTP server's thread. 0 = same priority as the process.
  int nice = 0;
  int64_t allowed_lateness_ns = kDefaultAllowedLatenessNs;
  int64_t max_future_skew_ns = kDefaultMaxFutureSkewNs;
  // The features the items hold (config [[feature]] tables; today's three when none): the
  // parser extracts what they read, and their longest window is the horizon. Part of the
  // state: start() refuses a state built with other definitions (check_features).
  FeatureSet features = FeatureSet::defaults();
  // A bulk load (`replay`) rebuilds the whole state as one unit: items are written
  // once, by the shards, at finish(), without checkpoints. The state is marked
  // "rebuilding" until then, so that an interrupted rebuild is refused, not resumed.
  bool bulk_load = false;
  // Which stored customers start() loads (empty: all).
  CustomerFilter load_customers;
  // Set: start() reads the store for these source partitions only (scan_partitions; the
  // filters below still pick), and with no partition reads nothing: a table shared by the
  // daemons of a consumer group starts with no customer, each assignment loads its own.
  std::optional<PartitionScope> load_partitions;
  // Which customers' dedup ids start() loads (empty: all). A partitioned backfill loads
  // its own customers' items but every customer's ids: it judges every record.
  CustomerFilter load_dedup_ids;
  // Which customers' items the checkpoints write (empty: all). A partitioned backfill
  // computes every customer (the clock needs every record) but writes only its part.
  CustomerFilter write_customers;
  std::string dead_letter_path;  // empty = count dead letters but do not write them
  // false: append, after cutting the file back to what the last checkpoint covered.
  bool truncate_dead_letter = true;
  // Set: dead letters go to the sink it makes (a Kafka topic) instead of the file above.
  // Each checkpoint flushes the sink before it commits. Called once, by start().
  std::function<Status(std::shared_ptr<DeadLetterSink>*)> make_dead_letter_sink;
  // Set: the items of every committed checkpoint are published to the sink it makes
  // (the output topic), at least once: see publish_committed() and catch_up_items().
  std::function<Status(std::unique_ptr<ItemSink>*)> make_item_sink;
  // A shared table: the meta key of a partition's window clock, committed with its offset
  // (docs/semantics.md section 21). replace_customers restores the clocks from there.
  std::function<std::string(int32_t partition)> partition_clock_key;
  // A backfill's time range: valid records with event_time outside [since, until) are
  // skipped (counted as out_of_range) before they reach the clock or a shard.
  int64_t since_ns = std::numeric_limits<int64_t>::min();
  int64_t until_ns = std::numeric_limits<int64_t>::max();
  std::function<int64_t()> now_ns;  // wall clock for the `future` check; tests pin it
  std::size_t max_batches_in_flight = 4;
  // Scoring: with `scoring`, a model actor scores the items the shards hand over at
  // barriers (while no model is active they carry no score). `initial_model` may be null.
  bool scoring = false;
  std::shared_ptr<const LoadedModel> initial_model;
  int64_t rescore_rate = 50000;  // items per second, all shards together, after a swap
};

class Engine {
 public:
  // Loads whatever state `store` holds (an empty store starts from scratch) and
  // starts the pipeline. `store` must outlive the engine.
  static Status start(const EngineOptions& options, StateStore* store, std::unique_ptr<Engine>* out);
  ~Engine();

  // Hands a batch to the router; blocks while max_batches_in_flight are in progress.
  Status submit(RawBatch batch);

  // Commits a checkpoint covering every batch submitted so far: a barrier flows
  // through the router to every shard, and the changed items (with their dedup ids),
  // the clock, the dead-letter position and `extra_meta` (the source position) are
  // written in one atomic batch. After a crash, start() resumes from the last one.
  // Blocks until it is durable. Not for bulk loads.
  Status checkpoint(const std::vector<MetaPut>& extra_meta, RunStats* stats = nullptr);

  // Waits for everything submitted, emits the final tick when `final_tick` (end of a
  // finite input), commits the last checkpoint (bulk load: writes every item and
  // marks the state complete), and returns the totals.
  Status finish(bool final_tick, RunStats* stats, const std::vector<MetaPut>& extra_meta = {},
                int64_t final_tick_floor_ns = std::numeric_limits<int64_t>::min());

  // Drops every customer the shards hold and loads, from the store, those `owned` picks
  // (none when it is empty): a daemon of a group taking its partitions' customers after
  // a rebalance. The window clocks become those stored for `scope`'s partitions (see
  // partition_clock_key); a customer stored without a clock ticks with the partition
  // `partition_of` gives it. Everything submitted is applied first; checkpoint before, so
  // that nothing dropped is unwritten. Other writers' half-applied commits are finished first.
  // `scope`, when set, names the source partitions `owned` picks: a store that keeps
  // customers by partition (DynamoDB) reads only theirs.
  Status replace_customers(const CustomerFilter& owned, const PartitionScope* scope = nullptr,
                           const CustomerPartition& partition_of = nullptr);
  // A cooperative rebalance: drops the customers `dropped` picks and the clocks of
  // `revoked` (revoked partitions; checkpoint before) and loads from the store those
  // `added` picks with the clocks of `scope`'s partitions (the added ones); every other
  // customer and clock stays in memory as it is. Either side may be empty.
  Status reshape_customers(const CustomerFilter& dropped, const std::vector<int32_t>& revoked,
                           const CustomerFilter& added, const PartitionScope* scope,
                           const CustomerPartition& partition_of);

  // Each component's probe, for /metrics (register them with the exporter) and progress.
  const RouterProbe& router_probe() const { return *router_probe_; }
  const ShardProbe& shard_probe() const { return *shard_probe_; }
  const ClockProbe& clock_probe() const { return *clock_probe_; }
  const CheckpointProbe& checkpoint_probe() const { return *checkpoint_probe_; }
  const ModelProbe& model_probe() const { return *model_probe_; }  // version 0 without scoring
  bool scoring() const;
  // Hands a loaded and checked model to the model actor (no-op without scoring). Safe
  // from any thread.
  void swap_model(std::shared_ptr<const LoadedModel> model);

 private:
  Engine() = default;
  Status wait_for_one_ack();
  Status read_partition_clocks(const std::vector<int32_t>& partitions, ClockSnapshots* clocks);
  Status drain();
  Status take_cut(const BarrierRequest& request, Cut* cut);
  bool last_commit_in_parts() const;
  Status commit_cut(Cut& cut, const std::vector<MetaPut>& extra_meta, bool in_parts);
  void add_forget_bounds(const ClockSnapshots& clocks, WriteSet* writes);
  Status open_dead_letter(std::shared_ptr<DeadLetterSink>* sink);
  Status publish_committed(const Cut& cut);
  Status catch_up_items();
  Status publish_all_items();
  std::string output_marker() const;
  Status record_items_delivered();

  EngineOptions options_;
  StateStore* store_ = nullptr;
  std::shared_ptr<RouterProbe> router_probe_;
  std::shared_ptr<ShardProbe> shard_probe_;
  std::shared_ptr<ClockProbe> clock_probe_;
  std::shared_ptr<CheckpointProbe> checkpoint_probe_;
  std::shared_ptr<ModelProbe> model_probe_;
  std::unique_ptr<ItemSink> item_sink_;
  std::string dead_letter_identity_;  // what meta "dead_letter" names: the file or the topic
  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<caf::scoped_actor> self_;
  struct Handles;  // the actors the engine talks to, by their typed interfaces
  std::unique_ptr<Handles> handles_;
  std::vector<caf::actor> actors_;
  std::size_t in_flight_ = 0;
  uint64_t checkpoint_number_ = 0;
  uint64_t items_not_written_ = 0;  // puts left out by write_customers, in total
  uint64_t items_in_cuts_ = 0;      // the shards' puts up to the last commit (cut.stats.items_written)
  int64_t forgotten_before_day_ = std::numeric_limits<int64_t>::min();
  std::map<int32_t, int64_t> forgotten_partition_day_;  // by held partition (its clock)
  Status failure_;
  bool finished_ = false;
};

// Meta keys the engine keeps in the store.
constexpr const char* kMetaFormat = "format";           // state format version
constexpr const char* kMetaSettings = "settings";       // settings the state depends on
constexpr const char* kMetaFeatures = "features";       // FeatureSet::canonical() of its definitions
constexpr const char* kMetaClock = "clock";             // window clock at the last checkpoint
constexpr const char* kMetaDeadLetter = "dead_letter";  // dead-letter file and its length
constexpr const char* kMetaCheckpoint = "checkpoint";   // number of the last checkpoint
// The item sink and the last checkpoint whose items it has delivered.
constexpr const char* kMetaOutput = "output";
// "rebuilding" while a bulk load runs, "complete" after it (absent: never bulk loaded).
constexpr const char* kMetaSession = "session";

// A window clock as stored: in meta "clock" (one clock) and next to a shared table's offsets.
std::string encode_clock(const ClockSnapshot& clock);

// The feature definitions a state was built with must be `features`: a state that
// stores none is a new one (they are stored) or, when it has settings, one written
// before definitions were stored, with today's three. Refused (invalid_argument, naming
// the first feature that differs and the way forward) otherwise. Engine::start checks;
// `backfill` checks too before it calls a backfill complete.
Status check_features(StateStore* store, const FeatureSet& features);

// A state whose bulk load (`replay`) did not complete is refused (corruption), by every
// command that reads a state: `run` at start, `export`.
Status check_session(StateStore* store);

}  // namespace streamscore
