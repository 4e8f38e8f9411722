#include "actors/engine.hpp"

#include <caf/all.hpp>
#include <xxhash.h>

#include <chrono>
#include <thread>

#include "actors/actors.hpp"
#include "io/dead_letter.hpp"
#include "messages/messages.hpp"
#include "state/codec.hpp"

namespace streamscore {

namespace {

constexpr const char* kStoreFormat = "streamscore-state-1";

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_clock(const ClockSnapshot& c) {
  std::string out;
  out.push_back(c.started ? 1 : 0);
  put_signed(out, c.max_event_ns);
  put_signed(out, c.tick);
  return out;
}

Status decode_clock(const std::string& data, ClockSnapshot* c) {
  Decoder d(data);
  uint8_t started = 0;
  if (!(d.byte(&started) && d.signed_varint(&c->max_event_ns) && d.signed_varint(&c->tick) &&
        d.at_end()))
    return Status::corruption("meta 'clock' is malformed");
  c->started = started != 0;
  return Status::ok();
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
      return Status::corruption("the store holds items but no format marker: not written by "
                                "streamscore; refusing to touch it");
    return store->put_meta(kMetaFormat, kStoreFormat);
  }
  if (!s.is_ok()) return s;
  if (format != kStoreFormat)
    return Status::corruption("state format '" + format + "' is not the one this build reads ('" +
                              std::string(kStoreFormat) + "'); run `streamscore replay` to rebuild");
  return Status::ok();
}

// Until checkpoints exist, a state that was not closed cleanly cannot be trusted:
// items may be newer than the clock and source positions. Refuse it, loudly.
Status check_closed(StateStore* store) {
  std::string session;
  Status s = store->get_meta(kMetaSession, &session);
  if (s.is_not_found() || (s.is_ok() && session == "closed")) return Status::ok();
  if (!s.is_ok()) return s;
  return Status::corruption(
      "the state was not closed cleanly (the process was killed or failed while writing); "
      "streamscore cannot resume it yet: rebuild it from the log with `streamscore replay`");
}

Status load_state(StateStore* store, int64_t lateness_ns, int shards, EventClock* clock,
                  std::vector<std::shared_ptr<ShardState>>* states) {
  ShardOptions shard_options;
  shard_options.allowed_lateness_ns = lateness_ns;
  for (int i = 0; i < shards; ++i) states->push_back(std::make_shared<ShardState>(shard_options));
  std::string clock_data;
  Status s = store->get_meta(kMetaClock, &clock_data);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  ClockSnapshot snap;
  if (!(s = decode_clock(clock_data, &snap)).is_ok()) return s;
  clock->restore(snap);
  if (snap.started)
    for (auto& st : *states) st->set_current_tick(snap.tick);
  Status item_status;
  s = store->scan([&](const ItemRecord& record) {
    const std::string id = record.pk.substr(std::string("CUSTOMER#").size());
    auto& shard = (*states)[shard_of(XXH3_64bits(id.data(), id.size()), states->size())];
    item_status = shard->load(record);
    return item_status.is_ok();
  });
  return s.is_ok() ? item_status : s;
}

}  // namespace

Status Engine::start(const EngineOptions& options, StateStore* store, std::unique_ptr<Engine>* out) {
  if (options.shards < 1) return Status::invalid_argument("shards must be >= 1");
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  if (!engine->options_.now_ns) engine->options_.now_ns = wall_clock_ns;
  engine->store_ = store;
  engine->metrics_ = std::make_shared<EngineMetrics>();

  Status s = check_format(store);
  if (!s.is_ok() || !(s = check_closed(store)).is_ok()) return s;
  auto clock = std::make_shared<EventClock>(options.allowed_lateness_ns);
  std::vector<std::shared_ptr<ShardState>> states;
  if (!(s = load_state(store, options.allowed_lateness_ns, options.shards, clock.get(), &states)).is_ok())
    return s;

  auto writer = std::make_shared<DeadLetterWriter>();
  if (!(s = writer->open(options.dead_letter_path, options.truncate_dead_letter)).is_ok()) return s;

  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  engine->config_ = std::make_unique<caf::actor_system_config>();
  engine->config_->set("scheduler.max-threads", static_cast<size_t>(threads));
  engine->system_ = std::make_unique<caf::actor_system>(*engine->config_);
  auto& sys = *engine->system_;

  RouterConfig rc;
  const int parsers = options.parsers > 0 ? options.parsers : threads;
  for (int i = 0; i < parsers; ++i) rc.parsers.push_back(spawn_parser(sys));
  for (auto& st : states)
    rc.shards.push_back(spawn_shard(sys, st, store, options.flush_interval_ms, engine->metrics_,
                                    static_cast<int>(rc.shards.size())));
  engine->metrics_->shard_count = static_cast<int>(rc.shards.size());
  rc.clock = spawn_window_clock(sys, clock, engine->metrics_);
  rc.dead_letter = spawn_dead_letter_sink(sys, writer);
  rc.max_future_skew_ns = options.max_future_skew_ns;
  rc.now_ns = engine->options_.now_ns;
  rc.metrics = engine->metrics_;
  engine->actors_ = rc.parsers;
  engine->actors_.insert(engine->actors_.end(), rc.shards.begin(), rc.shards.end());
  engine->actors_.push_back(rc.clock);
  engine->actors_.push_back(rc.dead_letter);
  engine->router_ = std::make_unique<caf::actor>(spawn_router(sys, std::move(rc)));
  engine->actors_.push_back(*engine->router_);
  engine->self_ = std::make_unique<caf::scoped_actor>(sys);
  (*engine->self_)->monitor(*engine->router_);  // never wait forever on a dead router
  if (!(s = store->put_meta(kMetaSession, "open")).is_ok() || !(s = store->sync()).is_ok())
    return s;
  *out = std::move(engine);
  return Status::ok();
}

Engine::~Engine() {
  if (!system_) return;
  for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  self_.reset();
  router_.reset();
  actors_.clear();
  system_.reset();  // joins the scheduler threads
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

Status Engine::submit(RawBatch batch) {
  if (finished_) return Status::invalid_argument("engine already finished");
  while (in_flight_ >= options_.max_batches_in_flight) {
    Status s = wait_for_one_ack();
    if (!s.is_ok()) return s;
  }
  if (!failure_.is_ok()) return failure_;
  (*self_)->send(*router_, batch_atom::value, std::make_shared<const RawBatch>(std::move(batch)));
  ++in_flight_;
  return Status::ok();
}

Status Engine::finish(bool final_tick, RunStats* stats,
                      const std::vector<std::pair<std::string, std::string>>& extra_meta) {
  if (finished_) return Status::invalid_argument("engine already finished");
  finished_ = true;
  while (in_flight_ > 0) wait_for_one_ack();
  if (!failure_.is_ok()) return failure_;
  Status result;
  (*self_)
      ->request(*router_, caf::infinite, end_atom::value, final_tick)
      .receive([&](RunStats& s) { *stats = s; },
               [&](caf::error& err) { result = Status::io_error(system_->render(err)); });
  if (!result.is_ok()) return result;
  for (const auto& [key, value] : extra_meta)
    if (!(result = store_->put_meta(key, value)).is_ok()) return result;
  if (!(result = store_->put_meta(kMetaClock, encode_clock(stats->clock))).is_ok()) return result;
  if (!(result = store_->sync()).is_ok()) return result;
  // Only now is the state consistent: items, clock and source position all written.
  if (!(result = store_->put_meta(kMetaSession, "closed")).is_ok()) return result;
  return store_->sync();
}

}  // namespace streamscore
