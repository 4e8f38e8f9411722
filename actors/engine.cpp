#include "actors/engine.hpp"

#include <spdlog/spdlog.h>
#include <xxhash.h>
#include <caf/all.hpp>

#include <malloc.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <thread>

#include "actors/actors.hpp"
#include "actors/model_actor.hpp"
#include "common/codec.hpp"
#include "common/thread_priority.hpp"
#include "io/dead_letter.hpp"
#include "io/item_sink.hpp"
#include "messages/messages.hpp"

namespace streamscore {

namespace {

// The state format this build reads and writes. Another one is refused: the log is
// the source of truth, so the way forward is a replay, never a guess.
constexpr const char* kStoreFormat = "streamscore-state-2";
constexpr const char* kSessionRebuilding = "rebuilding";
constexpr const char* kSessionComplete = "complete";

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void put_clock(std::string& out, const ClockSnapshot& c) {
  out.push_back(c.started ? 1 : 0);
  put_signed(out, c.max_event_ns);
  put_signed(out, c.tick);
}

bool get_clock(Decoder& d, ClockSnapshot* c) {
  uint8_t started = 0;
  if (!(d.byte(&started) && started <= 1 && d.signed_varint(&c->max_event_ns) && d.signed_varint(&c->tick)))
    return false;
  c->started = started != 0;
  return true;
}

// Every partition's clock. A file's one clock is stored as it always was (started flag,
// event time, tick); several start with kPartitionClocks.
constexpr uint8_t kPartitionClocks = 2;

// The first day of ids still inside the horizon (plus lateness) of a clock at `tick`.
int64_t first_day_kept(int64_t tick, const EngineOptions& options) {
  const int64_t forget_ns = forget_before_ns(tick, options.features.horizon_windows(), options.allowed_lateness_ns);
  return floor_div(forget_ns, kDayNanos);
}

std::string encode_clocks(const ClockSnapshots& clocks) {
  if (clocks.empty() || (clocks.size() == 1 && clocks.begin()->first == kSingleClock))
    return encode_clock(clocks.empty() ? ClockSnapshot{} : clocks.begin()->second);
  std::string out(1, static_cast<char>(kPartitionClocks));
  put_varint(out, clocks.size());
  for (const auto& [id, c] : clocks) {
    put_signed(out, id);
    put_clock(out, c);
  }
  return out;
}

Status decode_clocks(const std::string& data, ClockSnapshots* clocks) {
  clocks->clear();
  Decoder d(data);
  const auto malformed = Status::corruption("meta 'clock' is malformed");
  if (data.empty() || static_cast<uint8_t>(data[0]) != kPartitionClocks) {
    ClockSnapshot c;
    if (!(get_clock(d, &c) && d.at_end())) return malformed;
    (*clocks)[kSingleClock] = c;
    return Status::ok();
  }
  uint8_t marker = 0;
  uint64_t n = 0;
  if (!(d.byte(&marker) && d.varint(&n))) return malformed;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t id = 0;
    ClockSnapshot c;
    if (!(d.signed_varint(&id) && get_clock(d, &c))) return malformed;
    (*clocks)[static_cast<int32_t>(id)] = c;
  }
  return d.at_end() ? Status::ok() : malformed;
}

// Refuses a store written by another program or another state format.
Status check_format(StateStore* store) {
  std::string format;
  Status s = store->get_meta(kMetaFormat, &format);
  if (s.is_not_found()) {
    bool empty = true;
    Status scan = store->scan([&](const ItemRecord&) { return empty = false; });
    if (!scan.is_ok()) return scan;
    if (!empty)
      return Status::corruption(
          "the store holds items but no format marker: not written by "
          "streamscore; refusing to touch it");
    return store->put_meta(kMetaFormat, kStoreFormat);
  }
  if (!s.is_ok()) return s;
  if (format != kStoreFormat)
    return Status::corruption("state format '" + format + "' is not the one this build reads ('" +
                              std::string(kStoreFormat) + "'); run `streamscore replay` to rebuild");
  return Status::ok();
}

// The settings a state depends on: a state built with another allowed lateness would
// continue with other results than a replay under the new setting.
std::string settings_of(const EngineOptions& options) {
  return "window.allowed_lateness_ns=" + std::to_string(options.allowed_lateness_ns);
}

Status check_settings(StateStore* store, const EngineOptions& options) {
  std::string stored;
  Status s = store->get_meta(kMetaSettings, &stored);
  if (s.is_not_found()) return store->put_meta(kMetaSettings, settings_of(options));
  if (!s.is_ok()) return s;
  if (stored != settings_of(options))
    return Status::invalid_argument(
        "the state was built with " + stored + " but the config says " + settings_of(options) +
        " (key window.allowed_lateness); use the same setting, or rebuild with `streamscore replay`");
  return Status::ok();
}

Status refuse_other_features(const FeatureSet& features, std::string_view stored) {
  const std::string difference = features.difference_from(stored);
  if (difference.empty()) return Status::ok();
  return Status::invalid_argument(
      "the state was built with other feature definitions than the config's [[feature]] tables: feature " + difference +
      ". A state keeps only the history its own definitions need, so other definitions need the events again: "
      "rebuild with `streamscore replay` or `streamscore backfill` into a new state (or table), or configure "
      "the definitions it was built with");
}

Status read_checkpoint_number(StateStore* store, uint64_t* number) {
  std::string value;
  Status s = store->get_meta(kMetaCheckpoint, &value);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  char* end = nullptr;
  *number = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') return Status::corruption("meta 'checkpoint' is malformed");
  return Status::ok();
}

// The dead-letter length the last checkpoint covered, when it was the same file.
Status checkpointed_dead_letter_bytes(StateStore* store, const std::string& path, uint64_t* bytes) {
  std::string value;
  Status s = store->get_meta(kMetaDeadLetter, &value);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  const auto nl = value.rfind('\n');
  if (nl == std::string::npos) return Status::corruption("meta 'dead_letter' is malformed");
  if (value.substr(0, nl) == path) *bytes = std::strtoull(value.c_str() + nl + 1, nullptr, 10);
  return Status::ok();
}

// Which stored customers a load takes: their items, their dedup ids (empty: all).
struct LoadFilters {
  CustomerFilter items;
  CustomerFilter ids;
  CustomerPartition partition_of;         // the clock of customers stored without one
  const PartitionScope* scope = nullptr;  // set: the store reads only these partitions' customers (if it can)
};

// Loads the shards `worker`, `worker + workers`, ... : every worker scans the whole
// store but decodes only its own shards' customers and ids (those the filters pick).
Status load_shards(StateStore* store, std::vector<std::shared_ptr<ShardState>>& states, std::size_t worker,
                   std::size_t workers, const LoadFilters& filters) {
  auto mine = [&](std::string_view id, const CustomerFilter& owned) -> ShardState* {
    const std::size_t shard = shard_of(XXH3_64bits(id.data(), id.size()), states.size());
    if (shard % workers != worker || (owned && !owned(id))) return nullptr;
    return states[shard].get();
  };
  Status inner;
  const auto load_item = [&](const ItemRecord& record) {
    if (ShardState* shard = mine(customer_id_of_pk(record.pk), filters.items))
      inner =
          shard->load(record, filters.partition_of ? filters.partition_of(customer_id_of_pk(record.pk)) : kSingleClock);
    return inner.is_ok();
  };
  const auto load_ids = [&](const DedupRecord& record) {
    inner = for_each_dedup_id(record, [&](std::string_view id, const DedupEntry& entry) {
      if (ShardState* shard = mine(id, filters.ids)) shard->load_id(id, entry);
    });
    return inner.is_ok();
  };
  Status s = filters.scope ? store->scan_partitions(*filters.scope, load_item, load_ids) : store->scan(load_item);
  if (s.is_ok() && inner.is_ok() && !filters.scope) s = store->scan_dedup(load_ids);
  if (!s.is_ok() || !inner.is_ok()) return s.is_ok() ? inner : s;
  for (std::size_t i = worker; i < states.size(); i += workers) states[i]->finish_loading();
  return Status::ok();
}

// Fresh shard states at the clocks' ticks, holding the stored customers `owned` picks
// (all when it is empty). Shards share nothing, so they load in parallel.
Status load_customers(StateStore* store, const EngineOptions& options, int shards, int threads,
                      const ClockSnapshots& clocks, const LoadFilters& filters,
                      std::vector<std::shared_ptr<ShardState>>* states) {
  ShardOptions shard_options;
  shard_options.allowed_lateness_ns = options.allowed_lateness_ns;
  shard_options.features = options.features;
  states->clear();
  for (int i = 0; i < shards; ++i) states->push_back(std::make_shared<ShardState>(shard_options));
  // A clock that has not started (a writer's first run on a table others wrote, a new
  // daemon of a group) leaves the loaded customers' ticks as their data schedules them.
  for (const auto& [id, clock] : clocks)
    if (clock.started)
      for (auto& st : *states) st->set_current_tick(clock.tick, id);
  if (filters.scope && filters.scope->partitions.empty()) return Status::ok();  // no partition: nothing to read
  // A remote store is scanned once: every worker reads the whole store.
  const std::size_t workers = store->local_scans() ? std::min<std::size_t>(std::max(1, threads), states->size()) : 1;
  std::vector<Status> results(workers);
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w)
    pool.emplace_back([&, w] { results[w] = load_shards(store, *states, w, workers, filters); });
  results[0] = load_shards(store, *states, 0, workers, filters);
  for (auto& t : pool) t.join();
  for (const Status& r : results)
    if (!r.is_ok()) return r;
  return Status::ok();
}

Status load_state(StateStore* store, const EngineOptions& options, int threads, EventClock* clock,
                  std::vector<std::shared_ptr<ShardState>>* states) {
  std::string clock_data;
  ClockSnapshots clocks;
  Status s = store->get_meta(kMetaClock, &clock_data);
  if (s.is_ok())
    s = decode_clocks(clock_data, &clocks);
  else if (s.is_not_found())
    s = Status::ok();
  if (!s.is_ok()) return s;
  clock->restore(clocks);
  const PartitionScope* scope = options.load_partitions ? &*options.load_partitions : nullptr;
  return load_customers(store, options, options.shards, threads, clocks,
                        {options.load_customers, options.load_dedup_ids, nullptr, scope}, states);
}

// Lowers every thread the actor system starts (workers, timer, detached actors): they
// all do ingestion work.
class LowerPriorityHook final : public caf::thread_hook {
 public:
  explicit LowerPriorityHook(int steps) : steps_(steps) {}
  void init(caf::actor_system&) override {}
  // A failure only leaves the thread at the process's priority; `run` logs a warning when
  // the same steps fail on its source thread. Nothing to report from here: discarded.
  void thread_started() override { static_cast<void>(lower_this_thread_priority(steps_)); }
  void thread_terminates() override {}

 private:
  int steps_;
};

}  // namespace

struct Engine::Handles {
  ModelActor model;  // none without scoring
  RouterActor router;
  ClockActor clock;
  std::vector<ShardActor> shards;
};

std::string encode_clock(const ClockSnapshot& c) {
  std::string out;
  put_clock(out, c);
  return out;
}

// A bulk load writes items without checkpoints; one that did not complete is refused.
Status check_session(StateStore* store) {
  std::string session;
  Status s = store->get_meta(kMetaSession, &session);
  if (s.is_not_found() || (s.is_ok() && session == kSessionComplete)) return Status::ok();
  if (!s.is_ok()) return s;
  return Status::corruption(
      "the state is an interrupted rebuild (a replay was killed or failed before it completed); "
      "run `streamscore replay` again");
}

Status check_features(StateStore* store, const FeatureSet& features) {
  std::string stored;
  Status s = store->get_meta(kMetaFeatures, &stored);
  if (s.is_ok()) return refuse_other_features(features, stored);
  if (!s.is_not_found()) return s;
  // None stored: a new state, or one written before definitions were stored (it has
  // settings), whose features are today's three.
  std::string settings;
  s = store->get_meta(kMetaSettings, &settings);
  if (s.is_ok())
    s = refuse_other_features(features, FeatureSet::defaults().canonical());
  else if (s.is_not_found())
    s = Status::ok();
  return s.is_ok() ? store->put_meta(kMetaFeatures, features.canonical()) : s;
}

Status Engine::start(const EngineOptions& options, StateStore* store, std::unique_ptr<Engine>* out) {
  if (options.shards < 1) return Status::invalid_argument("shards must be >= 1");
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  if (!engine->options_.now_ns) engine->options_.now_ns = wall_clock_ns;
  engine->store_ = store;
  engine->router_probe_ = std::make_shared<RouterProbe>();
  engine->shard_probe_ = std::make_shared<ShardProbe>();
  engine->clock_probe_ = std::make_shared<ClockProbe>();
  engine->checkpoint_probe_ = std::make_shared<CheckpointProbe>();

  Status s = check_format(store);
  if (!s.is_ok() || !(s = check_features(store, options.features)).is_ok() ||
      !(s = check_settings(store, options)).is_ok() || !(s = check_session(store)).is_ok())
    return s;
  const int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  engine->options_.threads = threads;  // resolved once; replace_customers loads with as many
  auto clock = std::make_shared<EventClock>(options.allowed_lateness_ns, options.features.horizon_windows());
  std::vector<std::shared_ptr<ShardState>> states;
  s = load_state(store, options, threads, clock.get(), &states);
  if (!s.is_ok()) return s;
  if (!(s = read_checkpoint_number(store, &engine->checkpoint_number_)).is_ok()) return s;

  std::shared_ptr<DeadLetterSink> dead_letter;
  if (!(s = engine->open_dead_letter(&dead_letter)).is_ok()) return s;
  engine->dead_letter_identity_ = dead_letter->identity();
  if (options.make_item_sink &&
      (!(s = options.make_item_sink(&engine->item_sink_)).is_ok() || !(s = engine->catch_up_items()).is_ok()))
    return s;

  engine->config_ = std::make_unique<caf::actor_system_config>();
  engine->config_->set("scheduler.max-threads", static_cast<size_t>(threads));
  if (options.nice > 0) engine->config_->add_thread_hook<LowerPriorityHook>(options.nice);
  engine->system_ = std::make_unique<caf::actor_system>(*engine->config_);
  auto& sys = *engine->system_;
  engine->handles_ = std::make_unique<Handles>();
  Handles& handles = *engine->handles_;

  RouterConfig rc;
  const int parsers = options.parsers > 0 ? options.parsers : threads;
  const std::shared_ptr<const FeaturePlan> plan = FeaturePlan::make(options.features);
  for (int i = 0; i < parsers; ++i) rc.parsers.push_back(spawn_parser(sys, plan));
  engine->shard_probe_->set_features(options.features);
  ShardScoring scoring;
  engine->model_probe_ = std::make_shared<ModelProbe>(states.size());
  if (options.scoring) {
    std::size_t loaded = 0;
    for (const auto& st : states) loaded += st->customer_count();
    // Stored items (a restart) may carry another version's scores: converge them too.
    scoring.model = spawn_model_actor(sys, options.initial_model, engine->model_probe_, loaded > 0);
    scoring.metrics = engine->model_probe_;
    constexpr int64_t kStepsPerSecond = 10;
    scoring.rescore_interval_ms = 1000 / kStepsPerSecond;
    scoring.rescore_per_step = static_cast<std::size_t>(
        std::max<int64_t>(1, options.rescore_rate / kStepsPerSecond / static_cast<int64_t>(states.size())));
    handles.model = scoring.model;
  }
  for (std::size_t i = 0; i < states.size(); ++i)
    rc.shards.push_back(spawn_shard(sys, states[i], store, static_cast<uint32_t>(i), engine->shard_probe_, scoring));
  if (handles.model) caf::anon_send(handles.model, shards_atom::value, rc.shards);
  engine->shard_probe_->shard_count = static_cast<int>(states.size());
  rc.clock = spawn_window_clock(sys, clock, engine->clock_probe_);
  rc.dead_letter = spawn_dead_letter_sink(sys, std::move(dead_letter));
  rc.max_future_skew_ns = options.max_future_skew_ns;
  rc.now_ns = engine->options_.now_ns;
  rc.since_ns = options.since_ns;
  rc.until_ns = options.until_ns;
  rc.router_probe = engine->router_probe_;
  rc.shard_probe = engine->shard_probe_;
  handles.shards = rc.shards;
  auto& all = engine->actors_;
  for (const auto& parser : rc.parsers) all.push_back(caf::actor_cast<caf::actor>(parser));
  for (const auto& shard : rc.shards) all.push_back(caf::actor_cast<caf::actor>(shard));
  all.push_back(caf::actor_cast<caf::actor>(rc.clock));
  handles.clock = rc.clock;
  all.push_back(caf::actor_cast<caf::actor>(rc.dead_letter));
  if (handles.model) all.push_back(caf::actor_cast<caf::actor>(handles.model));
  handles.router = spawn_router(sys, std::move(rc));
  all.push_back(caf::actor_cast<caf::actor>(handles.router));
  engine->self_ = std::make_unique<caf::scoped_actor>(sys);
  (*engine->self_)->monitor(handles.router);  // never wait forever on a dead router
  if (options.bulk_load &&
      (!(s = store->put_meta(kMetaSession, kSessionRebuilding)).is_ok() || !(s = store->sync()).is_ok()))
    return s;
  *out = std::move(engine);
  return Status::ok();
}

// The configured sink, or the dead-letter file: appended to after being cut back to what
// the last checkpoint covered (its later lines come again from the records read again).
Status Engine::open_dead_letter(std::shared_ptr<DeadLetterSink>* sink) {
  if (options_.make_dead_letter_sink) return options_.make_dead_letter_sink(sink);
  auto writer = std::make_shared<DeadLetterWriter>();
  uint64_t dead_letter_bytes = std::numeric_limits<uint64_t>::max();
  Status s;
  if (!options_.truncate_dead_letter &&
      !(s = checkpointed_dead_letter_bytes(store_, options_.dead_letter_path, &dead_letter_bytes)).is_ok())
    return s;
  if (!(s = writer->open(options_.dead_letter_path, options_.truncate_dead_letter, dead_letter_bytes)).is_ok())
    return s;
  // The dead-letter file as this state knows it now. Written before any record is read,
  // so that a kill before the first checkpoint cuts back to here too (the file may hold
  // lines of earlier runs on other states).
  if (!options_.truncate_dead_letter &&
      (!(s = store_->put_meta(kMetaDeadLetter, options_.dead_letter_path + "\n" + std::to_string(writer->bytes())))
            .is_ok() ||
       !(s = store_->sync()).is_ok()))
    return s;
  *sink = std::move(writer);
  return Status::ok();
}

// Items go to the sink only after their checkpoint is durable, and the checkpoint after
// records that they are delivered (meta "output"). A crash in between leaves the record
// behind the checkpoint: the next start publishes the whole table again, because which
// items the lost checkpoint held is not kept. At least once; consumers keep the highest
// `version` per customer.
Status Engine::catch_up_items() {
  if (checkpoint_number_ == 0) return Status::ok();  // nothing committed yet
  std::string value;
  Status s = store_->get_meta(kMetaOutput, &value);
  if (!s.is_ok() && !s.is_not_found()) return s;
  if (s.is_ok() && value == output_marker()) return Status::ok();
  if (!(s = publish_all_items()).is_ok() || !(s = item_sink_->flush()).is_ok()) return s;
  return record_items_delivered();
}

// The item sink and the last checkpoint whose items it has delivered.
std::string Engine::output_marker() const {
  return item_sink_->identity() + "\n" + std::to_string(checkpoint_number_);
}

Status Engine::record_items_delivered() {
  Status s = store_->put_meta(kMetaOutput, output_marker());
  return s.is_ok() ? store_->sync() : s;
}

Status Engine::publish_all_items() {
  Status inner;
  Status s = store_->scan([&](const ItemRecord& item) {
    if (!item.item_json.empty()) inner = item_sink_->publish(item);
    return inner.is_ok();
  });
  return s.is_ok() ? inner : s;
}

Status Engine::publish_committed(const Cut& cut) {
  if (!item_sink_) return Status::ok();
  if (options_.bulk_load) return publish_all_items();  // the shards wrote the items themselves
  for (const ConditionalPut& put : cut.puts)
    if (!put.record.item_json.empty()) {
      Status s = item_sink_->publish(put.record);
      if (!s.is_ok()) return s;
    }
  return Status::ok();
}

Engine::~Engine() {
  if (!system_) return;
  for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  self_.reset();
  handles_.reset();
  actors_.clear();
  system_.reset();  // joins the scheduler threads
}

bool Engine::scoring() const {
  return handles_ && handles_->model;
}

void Engine::swap_model(std::shared_ptr<const LoadedModel> model) {
  if (handles_->model && model) caf::anon_send(handles_->model, swap_atom::value, ModelPtr(std::move(model)));
}

Status Engine::wait_for_one_ack() {
  (*self_)->receive(
      [&](ack_atom, BatchAck& ack) {
        --in_flight_;
        if (!ack.error.empty() && failure_.is_ok()) failure_ = Status::io_error(ack.error);
      },
      [&](caf::down_msg& down) {
        in_flight_ = 0;
        failure_ = Status::io_error("the router stopped: " + system_->render(down.reason));
      });
  return failure_;
}

Status Engine::drain() {
  // Every batch in flight is waited for, even after one failed: its result is the first
  // failure (failure_, sticky), returned once nothing is in flight.
  while (in_flight_ > 0) static_cast<void>(wait_for_one_ack());
  return failure_;
}

Status Engine::submit(RawBatch batch) {
  if (finished_) return Status::invalid_argument("engine already finished");
  while (in_flight_ >= options_.max_batches_in_flight) {
    Status s = wait_for_one_ack();
    if (!s.is_ok()) return s;
  }
  if (!failure_.is_ok()) return failure_;
  (*self_)->send(handles_->router, batch_atom::value, std::make_shared<const RawBatch>(std::move(batch)));
  ++in_flight_;
  return Status::ok();
}

// A shared table keeps each partition's clock next to its offset, in the same commit.
Status Engine::read_partition_clocks(const std::vector<int32_t>& partitions, ClockSnapshots* clocks) {
  for (int32_t p : partitions) {
    const std::string key = options_.partition_clock_key(p);
    std::string value;
    Status s = store_->get_meta(key, &value);
    if (s.is_not_found()) continue;  // never checkpointed: the partition's clock starts afresh
    if (!s.is_ok()) return s;
    Decoder d(value);
    ClockSnapshot c;
    if (!(get_clock(d, &c) && d.at_end())) return Status::corruption("meta '" + key + "' is malformed");
    (*clocks)[p] = c;
  }
  return Status::ok();
}

Status Engine::replace_customers(const CustomerFilter& owned, const PartitionScope* scope,
                                 const CustomerPartition& partition_of) {
  Status s = drain();
  if (!s.is_ok()) return s;
  if (owned && !(s = store_->recover_other_writers()).is_ok()) return s;
  // The partitions' clocks come with them, as their customers do: the ticks of each
  // continue exactly where its last holder's checkpoint left them.
  ClockSnapshots clocks;
  if (owned && scope && options_.partition_clock_key &&
      !(s = read_partition_clocks(scope->partitions, &clocks)).is_ok())
    return s;
  (*self_)
      ->request(handles_->clock, caf::infinite, clock_atom::value, clocks)
      .receive([](bool) {}, [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  if (!s.is_ok()) return s;
  const CustomerFilter none = [](std::string_view) { return false; };
  std::vector<std::shared_ptr<ShardState>> states;
  const CustomerFilter& picked = owned ? owned : none;
  if (!(s = load_customers(store_, options_, static_cast<int>(handles_->shards.size()), options_.threads, clocks,
                           {picked, picked, partition_of, owned ? scope : nullptr}, &states))
           .is_ok())
    return s;
  for (std::size_t i = 0; i < handles_->shards.size() && s.is_ok(); ++i)
    (*self_)
        ->request(handles_->shards[i], caf::infinite, replace_atom::value, std::move(states[i]))
        .receive([](bool) {}, [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  return s;
}

Status Engine::reshape_customers(const CustomerFilter& dropped, const std::vector<int32_t>& revoked,
                                 const CustomerFilter& added, const PartitionScope* scope,
                                 const CustomerPartition& partition_of) {
  Status s = drain();
  if (!s.is_ok()) return s;
  // The clocks follow the partitions (section 21): the revoked ones' go, the added ones'
  // come from the table, the kept ones' go on as they are.
  ClockSnapshots clocks, restored;
  (*self_)
      ->request(handles_->clock, caf::infinite, clock_atom::value)
      .receive([&](ClockSnapshots& current) { clocks = std::move(current); },
               [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  if (!s.is_ok()) return s;
  for (int32_t p : revoked) clocks.erase(p);
  std::vector<std::shared_ptr<ShardState>> states(handles_->shards.size());
  if (added) {
    if (!(s = store_->recover_other_writers()).is_ok()) return s;
    if (scope && options_.partition_clock_key && !(s = read_partition_clocks(scope->partitions, &restored)).is_ok())
      return s;
    for (const auto& [p, clock] : restored) clocks[p] = clock;
    if (!(s = load_customers(store_, options_, static_cast<int>(handles_->shards.size()), options_.threads, restored,
                             {added, added, partition_of, scope}, &states))
             .is_ok())
      return s;
  }
  (*self_)
      ->request(handles_->clock, caf::infinite, clock_atom::value, clocks)
      .receive([](bool) {}, [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  for (std::size_t i = 0; i < handles_->shards.size() && s.is_ok(); ++i)
    (*self_)
        ->request(handles_->shards[i], caf::infinite, reshape_atom::value,
                  Reshape{dropped, revoked, std::move(states[i])})
        .receive([](bool) {}, [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  return s;
}

Status Engine::take_cut(const BarrierRequest& request, Cut* cut) {
  Status s = drain();
  if (!s.is_ok()) return s;
  (*self_)
      ->request(handles_->router, caf::infinite, barrier_atom::value, request)
      .receive([&](Cut& c) { *cut = std::move(c); },
               [&](caf::error& err) { s = Status::io_error(system_->render(err)); });
  return s;
}

// Whole days of ids that have left the horizon (plus lateness) of every clock are forgotten
// under the writer's own key. In a table indexed by partition, each held partition's index
// is forgotten by that partition's clock alone, every writer's ids there: a partition
// given away is its new holder's to forget, whose clock may lag (section 21).
void Engine::add_forget_bounds(const ClockSnapshots& clocks, WriteSet* writes) {
  int64_t earliest = 0;
  if (earliest_tick(clocks, &earliest)) {
    const int64_t day = first_day_kept(earliest, options_);
    if (day > forgotten_before_day_) writes->forget_dedup_before_day = forgotten_before_day_ = day;
  }
  for (const auto& [partition, clock] : clocks) {
    if (partition == kSingleClock || !clock.started) continue;
    const int64_t day = first_day_kept(clock.tick, options_);
    auto [last, fresh] = forgotten_partition_day_.emplace(partition, day);
    if (!fresh && day <= last->second) continue;
    writes->forget_partition_dedup_before_day[partition] = last->second = day;
  }
}

// Whether the last commit goes through bulk parts: the shards write their items and ids
// into them in parallel, and the store takes them with the commit's meta at once. A
// rebuild's always do (a store without parts has the shards commit their own). A daemon's
// only where the store builds parts and nothing else needs the items in hand: an item sink
// publishes the committed puts, and a shared table filters and rebases them.
bool Engine::last_commit_in_parts() const {
  if (options_.bulk_load) return true;
  return store_->takes_bulk_parts() && !item_sink_ && !options_.write_customers && !options_.partition_clock_key;
}

// Commits the cut's items (or the parts the shards built), and the positions they are
// consistent with, atomically.
Status Engine::commit_cut(Cut& cut, const std::vector<MetaPut>& extra_meta, bool in_parts) {
  std::vector<MetaPut> meta = extra_meta;
  if (item_sink_) {
    // The items of the checkpoints before are delivered: this commit can say so.
    Status s = item_sink_->flush();
    if (!s.is_ok()) return s;
    meta.push_back({kMetaOutput, output_marker()});
  }
  meta.push_back({kMetaClock, encode_clocks(cut.clocks)});
  if (options_.partition_clock_key)
    for (const auto& [p, clock] : cut.clocks)
      if (p >= 0) meta.push_back({options_.partition_clock_key(p), encode_clock(clock)});
  meta.push_back({kMetaDeadLetter, dead_letter_identity_ + "\n" + std::to_string(cut.dead_letter_bytes)});
  meta.push_back({kMetaCheckpoint, std::to_string(checkpoint_number_ + 1)});
  if (options_.bulk_load) meta.push_back({kMetaSession, kSessionComplete});
  WriteSet writes;
  writes.puts = std::move(cut.puts);
  if (options_.write_customers) {
    const std::size_t all = writes.puts.size();
    writes.puts.erase(std::remove_if(writes.puts.begin(), writes.puts.end(),
                                     [&](const ConditionalPut& put) {
                                       return !options_.write_customers(customer_id_of_pk(put.record.pk));
                                     }),
                      writes.puts.end());
    items_not_written_ += all - writes.puts.size();
    cut.stats.items_written -= std::min(cut.stats.items_written, items_not_written_);
  }
  writes.meta = std::move(meta);
  writes.dedup = std::move(cut.dedup);
  add_forget_bounds(cut.clocks, &writes);
  std::vector<VersionShift> shifts;
  uint64_t conflicts = 0;
  // The shards' parts become visible with the meta that marks them committed (a rebuild:
  // complete), or not at all.
  Status s = in_parts && store_->takes_bulk_parts() ? store_->ingest_bulk_parts(writes)
                                                    : commit_with_retry(*store_, &writes, &shifts, &conflicts);
  // The parts' puts are counted by the shards that took them, in the cut's running total.
  const uint64_t items = in_parts ? cut.stats.items_written - items_in_cuts_ : writes.puts.size();
  if (!s.is_ok()) return s;
  items_in_cuts_ = cut.stats.items_written;
  cut.puts = std::move(writes.puts);  // as committed (versions moved by conflicts): for the item sink
  if (!shifts.empty()) {              // the owning shards move their versions along
    std::vector<std::vector<VersionShift>> per_shard(handles_->shards.size());
    for (VersionShift& shift : shifts) {
      const std::string_view id = customer_id_of_pk(shift.pk);
      per_shard[shard_of(XXH3_64bits(id.data(), id.size()), handles_->shards.size())].push_back(std::move(shift));
    }
    for (std::size_t i = 0; i < handles_->shards.size(); ++i)
      if (!per_shard[i].empty()) (*self_)->send(handles_->shards[i], rebase_atom::value, std::move(per_shard[i]));
  }
  if (!(s = store_->sync()).is_ok()) return s;
  ++checkpoint_number_;
  spdlog::debug("msg=\"checkpoint committed\" checkpoint={} items={} dedup_records={} conflicts={}", checkpoint_number_,
                items, writes.dedup.size(), conflicts);
  checkpoint_probe_->checkpoints += 1;
  checkpoint_probe_->items_committed += items;
  checkpoint_probe_->write_conflicts += conflicts;
  checkpoint_probe_->last_checkpoint_unix_ms = wall_clock_ns() / 1'000'000;
#ifdef __GLIBC__
  // Hand the checkpoint's freed buffers back to the system: without it glibc keeps them
  // in its arenas and a long-running daemon's RSS creeps up with fragmentation.
  malloc_trim(0);
#endif
  cut.stats.conflicts += conflicts;
  return Status::ok();
}

Status Engine::checkpoint(const std::vector<MetaPut>& extra_meta, RunStats* stats) {
  if (finished_) return Status::invalid_argument("engine already finished");
  if (options_.bulk_load) return Status::invalid_argument("a bulk load has no checkpoints");
  Cut cut;
  Status s = take_cut(BarrierRequest{false, false, checkpoint_number_ + 1}, &cut);
  if (!s.is_ok() || !(s = commit_cut(cut, extra_meta, false)).is_ok() || !(s = publish_committed(cut)).is_ok()) {
    // A fenced checkpoint wrote nothing; the caller drops the customers it held.
    if (failure_.is_ok() && !s.is_fenced()) failure_ = s;
    return s;
  }
  if (stats) *stats = cut.stats;
  return Status::ok();
}

Status Engine::finish(bool final_tick, RunStats* stats, const std::vector<MetaPut>& extra_meta,
                      int64_t final_tick_floor_ns) {
  if (finished_) return Status::invalid_argument("engine already finished");
  finished_ = true;
  Cut cut;
  const bool in_parts = last_commit_in_parts();
  Status s = take_cut(BarrierRequest{final_tick, in_parts, checkpoint_number_ + 1, final_tick_floor_ns}, &cut);
  if (!s.is_ok() || !(s = commit_cut(cut, extra_meta, in_parts)).is_ok()) return s;
  // The last items are delivered before the command ends, and the state says so: a
  // clean stop never publishes the table again at the next start.
  if (item_sink_ && (!(s = publish_committed(cut)).is_ok() || !(s = item_sink_->flush()).is_ok() ||
                     !(s = record_items_delivered()).is_ok()))
    return s;
  *stats = cut.stats;
  return Status::ok();
}

}  // namespace streamscore
