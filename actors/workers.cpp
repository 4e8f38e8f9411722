// The parser pool, the shards, the window clock and the dead-letter sink: small
// actors, each a thin typed shell around a piece of pure logic.
#include "actors/actors.hpp"
#include "actors/model_actor.hpp"

#include <chrono>
#include "io/dead_letter.hpp"
#include "io/event_parser.hpp"
#include "io/kafka_client.hpp"
#include "messages/messages.hpp"

namespace streamscore {

namespace {

struct ParserState {
  EventParser parser;
  std::shared_ptr<const FeaturePlan> features;  // null: the default set
};

// A Kafka record is keyed by customer_id. Without a key it is dead-lettered (as Kafka
// Streams skips null keys in aggregations, but nothing is dropped silently); with
// another key the value wins and the mismatch is counted. With a shared table, the
// customer must be in the partition Kafka's default partitioner gives it: the daemon
// that owns that partition owns the customer.
bool check_key(const RawBatch& batch, uint32_t i, const ParsedEvent& event, ParsedChunk* chunk, ParseFailure* failure) {
  if (!batch.keys.empty()) {
    const KeyRef& key = batch.keys[i];
    if (key.length <= 0) {
      failure->reason = Reason::missing_key;
      failure->field = "key";
      failure->detail = "the Kafka message has no key (expected the customer_id)";
      return false;
    }
    if (std::string_view(batch.buffer->data() + key.offset, static_cast<std::size_t>(key.length)) != event.customer_id)
      ++chunk->key_mismatches;
  }
  // Kafka, or the objects of a partitioned layout (Kafka Connect's) read in parts.
  if (batch.partition_count > 0) {
    const int32_t owner = kafka_partition_of_key(event.customer_id, batch.partition_count);
    if (owner != batch.partitions[i]) {
      failure->reason = Reason::wrong_partition;
      failure->field = "customer_id";
      failure->detail = "customer_id " + std::string(event.customer_id) + " belongs to partition " +
                        std::to_string(owner) + " of " + std::to_string(batch.partition_count) +
                        " (Kafka's default partitioner, murmur2 of the key), not " +
                        std::to_string(batch.partitions[i]);
      return false;
    }
  }
  return true;
}

ParserActor::behavior_type parser_actor(ParserActor::stateful_pointer<ParserState> self,
                                        std::shared_ptr<const FeaturePlan> features) {
  self->state.features = std::move(features);
  return {
      [=](parse_atom, const RawBatchPtr& batch_ptr, uint32_t begin, uint32_t end, int64_t max_event_ns) -> ParsedChunk {
        const RawBatch& batch = *batch_ptr;
        ParsedChunk chunk;
        chunk.events.reserve(end - begin);
        ParseOptions options;
        options.max_event_ns = max_event_ns;
        options.features = self->state.features.get();
        ParsedEvent event;
        ParseFailure failure;
        for (uint32_t i = begin; i < end; ++i) {
          if (self->state.parser.parse(batch.line(i), options, &event, &failure) &&
              check_key(batch, i, event, &chunk, &failure)) {
            event.record_index = i;
            chunk.events.push_back(std::move(event));
          } else {
            chunk.rejects.push_back(Rejected{i, failure.reason, std::move(failure.field), std::move(failure.detail)});
          }
        }
        return chunk;
      },
  };
}

struct ShardActorState {
  std::shared_ptr<ShardState> shard;
  StateStore* store = nullptr;
  uint32_t index = 0;  // its place among the shards (names its dedup records)
  uint64_t items_written = 0;
  uint64_t conflicts = 0;
  uint64_t logical_writes_before = 0;  // by the states replaced since start (a shared table's rebalances)
  std::shared_ptr<ShardProbe> probe;   // /metrics gauges, stress and simulation totals
  ShardScoring scoring;
  int32_t rescore_target = 0;  // the model version the items converge to
  bool rescore_pending = false;
  uint64_t rescores_reported = 0;
  // What this shard has added to the totals in `probe` so far (it adds the differences).
  uint64_t published_versions = 0, published_tick_nanos = 0;
  int64_t published_dedup = 0, published_customers = 0;
  std::vector<uint64_t> published_skipped;  // by feature
};

// Each feature's skipped values since the last call (a replaced state starts from 0).
void publish_skipped(ShardActorState& st) {
  const std::size_t features = st.probe->feature_count();
  st.published_skipped.resize(features, 0);
  for (std::size_t f = 0; f < features; ++f) {
    const uint64_t now = st.shard->skipped_values(f);
    st.probe->skipped_values[f].fetch_add(now - st.published_skipped[f], std::memory_order_relaxed);
    st.published_skipped[f] = now;
  }
}

using shard_ptr = ShardActor::stateful_pointer<ShardActorState>;

void publish(ShardActorState& st) {
  if (!st.probe) return;
  const uint64_t versions = st.shard->logical_writes(), nanos = st.shard->tick_nanos();
  const auto dedup = static_cast<int64_t>(st.shard->dedup_size());
  st.probe->item_versions.fetch_add(versions - st.published_versions, std::memory_order_relaxed);
  st.probe->tick_nanos.fetch_add(nanos - st.published_tick_nanos, std::memory_order_relaxed);
  st.probe->dedup_ids.fetch_add(dedup - st.published_dedup, std::memory_order_relaxed);
  const auto customers = static_cast<int64_t>(st.shard->customer_count());
  st.probe->customers.fetch_add(customers - st.published_customers, std::memory_order_relaxed);
  st.published_customers = customers;
  st.published_versions = versions;
  st.published_tick_nanos = nanos;
  st.published_dedup = dedup;
  publish_skipped(st);
}

ShardReport report_of(const ShardActorState& st) {
  ShardReport r;
  r.customers = st.shard->customer_count();
  r.items_written = st.items_written;
  r.logical_writes = st.logical_writes_before + st.shard->logical_writes();
  r.dedup_ids = st.shard->dedup_size();
  r.conflicts = st.conflicts;
  return r;
}

// The shard writes nothing on its own: its changed items leave it at checkpoint
// barriers, in the order of its mailbox, so that they are consistent with the clock
// and source positions committed with them.
// Writes the shard's new dedup ids straight to the store (bulk loads).
Status write_ids(ShardActorState& st, uint64_t sequence) {
  WriteSet writes;
  st.shard->take_unsaved_ids(sequence, st.index, &writes.dedup);
  std::vector<std::size_t> conflicts;
  return writes.dedup.empty() ? Status::ok() : st.store->commit(writes, &conflicts);
}

// A bulk load's items and ids, written by the shard itself: into its part of the load
// when the store builds parts apart (the shards build theirs in parallel; the engine
// ingests them all at its last commit), else into the store, commit by commit.
Status write_directly(ShardActorState& st, uint64_t sequence) {
  std::unique_ptr<BulkPart> part;
  Status s = st.store->open_bulk_part(st.index, &part);
  if (!s.is_ok()) return s;
  if (!part) {
    FlushStats stats;
    s = st.shard->flush(*st.store, &stats);
    st.items_written += stats.items_written;
    st.conflicts += stats.conflicts;
    return s.is_ok() ? write_ids(st, sequence) : s;
  }
  s = st.shard->take_changes([&](std::vector<ConditionalPut>& puts) {
    Status added = part->add_puts(puts);
    if (added.is_ok()) st.items_written += puts.size();
    return added;
  });
  if (!s.is_ok()) return s;
  std::vector<DedupRecord> ids;
  st.shard->take_unsaved_ids(sequence, st.index, &ids, st.shard->first_day_kept());
  if (!(s = part->add_dedup(ids)).is_ok()) return s;
  return part->finish();
}

// The cut of a barrier: the changed items and new dedup ids, handed back (or, `direct`,
// written).
Status take_cut(ShardActorState& st, const BarrierRequest& request, ShardCut& cut) {
  Status s;
  if (request.direct) {
    s = write_directly(st, request.sequence);
  } else {
    s = st.shard->take_changes([&](std::vector<ConditionalPut>& puts) {
      std::move(puts.begin(), puts.end(), std::back_inserter(cut.puts));
      return Status::ok();
    });
    st.items_written += cut.puts.size();
    st.shard->take_unsaved_ids(request.sequence, st.index, &cut.dedup);
  }
  if (s.is_ok()) cut.report = report_of(st);
  return s;
}

// Scores the items about to leave at a barrier: one request to the model actor with
// their feature values, awaited (no other message changes the shard in between), then
// `done`. Without a model actor, or with nothing to score, `done` runs at once.
void score_then(shard_ptr self, std::function<void()> done, std::function<void(caf::error&)> failed) {
  auto& st = self->state;
  auto slots = std::make_shared<std::vector<uint32_t>>();
  if (st.scoring.model) st.shard->items_to_write(slots.get());
  if (slots->empty()) return done();
  ScoreRequest request;
  request.items.reserve(slots->size());
  for (uint32_t slot : *slots) request.items.push_back(item_feature_values(st.shard->customers()[slot]));
  self->request(st.scoring.model, caf::infinite, score_atom::value, std::move(request))
      .await(
          [=](ScoreReply& reply) {
            auto& st = self->state;
            if (reply.model_version > 0 && reply.scores.size() == slots->size())
              for (std::size_t i = 0; i < slots->size(); ++i)
                st.shard->set_score((*slots)[i], reply.scores[i], reply.model_version);
            st.scoring.metrics->rescored += st.shard->rescores() - st.rescores_reported;
            st.rescores_reported = st.shard->rescores();
            if (st.rescore_target > 0) {
              st.scoring.metrics->stale[st.index].store(
                  static_cast<int64_t>(st.shard->mark_stale(st.rescore_target, 0)));
              st.scoring.metrics->stale_for[st.index].store(st.rescore_target);
            }
            done();
          },
          failed);
}

// One step of the background re-score after a swap: a throttled number of items whose
// score is by another version are marked; they are re-scored (each a new version of the
// item) when the next barrier takes them. Repeats until none is left.
void rescore_step(shard_ptr self) {
  auto& st = self->state;
  st.rescore_pending = false;
  const std::size_t stale = st.shard->mark_stale(st.rescore_target, st.scoring.rescore_per_step);
  st.scoring.metrics->stale[st.index].store(static_cast<int64_t>(stale));
  st.scoring.metrics->stale_for[st.index].store(st.rescore_target);
  if (stale > 0) {
    st.rescore_pending = true;
    self->delayed_send(self, std::chrono::milliseconds(st.scoring.rescore_interval_ms), rescore_atom::value);
  }
}

ShardActor::behavior_type shard_actor(shard_ptr self, std::shared_ptr<ShardState> state, StateStore* store,
                                      uint32_t index, std::shared_ptr<ShardProbe> shard_probe, ShardScoring scoring) {
  self->state.shard = std::move(state);
  self->state.store = store;
  self->state.probe = std::move(shard_probe);
  self->state.index = index;
  self->state.scoring = std::move(scoring);
  publish(self->state);  // the ids loaded from the store
  return {
      [=](probe_atom, const ProbeRequest& request) -> ProbeReply {
        ProbeReply reply;
        self->state.shard->probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
        return reply;
      },
      [=](apply_atom, ShardBatch& batch) {
        auto& st = self->state;
        const auto started = std::chrono::steady_clock::now();
        st.shard->apply(batch.events, batch.ticks);
        if (!batch.ticks.empty())
          st.probe->tick_duration.observe_ns(
              std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
        publish(st);
        st.probe->batch_applied(st.index);
        return true;  // applied: the router acks the batch to the source when all shards are
      },
      [=](snapshot_atom, const BarrierRequest& request) -> caf::result<ShardCut> {
        auto promise = self->make_response_promise<ShardCut>();
        score_then(
            self,
            [=]() mutable {
              ShardCut cut;
              Status s = take_cut(self->state, request, cut);
              if (!s.is_ok())
                promise.deliver(caf::make_error(caf::sec::runtime_error, s.to_string()));
              else
                promise.deliver(std::move(cut));
            },
            [=](caf::error& err) mutable { promise.deliver(err); });
        return promise;
      },
      // The model actor swapped to `version`: re-score every item, in throttled steps.
      [=](model_atom, int version) {
        auto& st = self->state;
        st.rescore_target = version;
        st.scoring.metrics->stale_for[st.index].store(0);  // not counted yet
        if (!st.rescore_pending) {
          st.rescore_pending = true;
          self->send(self, rescore_atom::value);
        }
      },
      [=](rescore_atom) { rescore_step(self); },
      // A cooperative rebalance (shared table): the revoked partitions' customers go, the
      // added ones' come, and the others stay as they are.
      [=](reshape_atom, Reshape& change) {
        auto& st = self->state;
        if (change.dropped) st.shard->drop_customers(change.dropped, change.dropped_clocks);
        if (change.added) st.shard->absorb(*change.added);
        publish(st);
        return true;
      },
      // A rebalance moved customers (shared table): the shard now holds `fresh`'s.
      [=](replace_atom, std::shared_ptr<ShardState>& fresh) {
        auto& st = self->state;
        st.logical_writes_before += st.shard->logical_writes();
        st.shard = std::move(fresh);
        // Totals keep counting from here: the fresh state's own counters start at 0.
        st.published_versions = st.shard->logical_writes();
        st.published_tick_nanos = st.shard->tick_nanos();
        st.published_skipped.assign(st.published_skipped.size(), 0);
        st.rescores_reported = st.shard->rescores();
        publish(st);
        if (st.rescore_target > 0 && !st.rescore_pending) {
          st.rescore_pending = true;
          self->send(self, rescore_atom::value);
        }
        return true;
      },
      // A committed checkpoint found items moved on by another writer.
      [=](rebase_atom, const std::vector<VersionShift>& shifts) {
        for (const VersionShift& shift : shifts) self->state.shard->rebase(shift);
        self->state.conflicts += shifts.size();
      },
  };
}

struct ClockActorState {
  std::shared_ptr<EventClock> clock;
  std::shared_ptr<ClockProbe> probe;
};

void publish_clock(const EventClock& clock, ClockProbe& m) {
  std::map<int32_t, int64_t> partitions;
  for (const auto& [id, c] : clock.snapshots())
    if (id >= 0 && c.started) partitions[id] = c.max_event_ns - clock.lateness_ns();
  m.set_partition_watermarks(std::move(partitions));
  const ClockSnapshot& snap = clock.snapshot();
  if (!snap.started) return;
  m.max_event_time_ns = snap.max_event_ns;
  m.watermark_ns = clock.watermark_ns();
  m.started = 1;
}

ClockActor::behavior_type clock_actor(ClockActor::stateful_pointer<ClockActorState> self,
                                      std::shared_ptr<EventClock> clock, std::shared_ptr<ClockProbe> clock_probe) {
  self->state.clock = std::move(clock);
  self->state.probe = std::move(clock_probe);
  publish_clock(*self->state.clock, *self->state.probe);  // a restored clock
  return {
      [=](classify_atom, const ClassifyRequest& request) -> ClassifyResult {
        ClassifyResult result;
        self->state.clock->classify(request.candidates, &result);
        publish_clock(*self->state.clock, *self->state.probe);
        return result;
      },
      [=](final_atom, int64_t floor_ns) -> FinalTick {
        FinalTick f;
        f.has_tick = self->state.clock->final_tick(&f.mark, &f.ticks_emitted, floor_ns);
        return f;
      },
      [=](clock_atom) -> ClockSnapshots { return self->state.clock->snapshots(); },
      // A shared table's new assignment: the clocks of the partitions taken over.
      [=](clock_atom, const ClockSnapshots& clocks) {
        self->state.clock->restore(clocks);
        publish_clock(*self->state.clock, *self->state.probe);
        return true;
      },
  };
}

struct DeadLetterActorState {
  std::shared_ptr<DeadLetterSink> sink;
  Status failure;
};

DeadLetterActor::behavior_type dead_letter_actor(DeadLetterActor::stateful_pointer<DeadLetterActorState> self,
                                                 std::shared_ptr<DeadLetterSink> sink) {
  self->state.sink = std::move(sink);
  return {
      [=](write_atom, const DeadLetterBatch& batch) {
        if (!self->state.failure.is_ok()) return;
        Status s = self->state.sink->write(batch);
        if (!s.is_ok()) self->state.failure = s;
      },
      // Flushes (file: written; Kafka: delivered) and returns the sink's position: what
      // a checkpoint records. A failure fails the checkpoint, so it never commits past
      // a lost dead letter.
      [=](flush_atom) -> caf::result<uint64_t> {
        if (self->state.failure.is_ok()) self->state.failure = self->state.sink->flush();
        if (!self->state.failure.is_ok())
          return caf::make_error(caf::sec::runtime_error, "dead letter: " + self->state.failure.to_string());
        return self->state.sink->position();
      },
  };
}

}  // namespace

ParserActor spawn_parser(caf::actor_system& sys, std::shared_ptr<const FeaturePlan> features) {
  return sys.spawn(parser_actor, std::move(features));
}

ShardActor spawn_shard(caf::actor_system& sys, std::shared_ptr<ShardState> state, StateStore* store, uint32_t index,
                       std::shared_ptr<ShardProbe> shard_probe, ShardScoring scoring) {
  return sys.spawn(shard_actor, std::move(state), store, index, std::move(shard_probe), std::move(scoring));
}

ClockActor spawn_window_clock(caf::actor_system& sys, std::shared_ptr<EventClock> clock,
                              std::shared_ptr<ClockProbe> clock_probe) {
  return sys.spawn(clock_actor, std::move(clock), std::move(clock_probe));
}

DeadLetterActor spawn_dead_letter_sink(caf::actor_system& sys, std::shared_ptr<DeadLetterSink> sink) {
  // A sink that waits on the network gets a thread of its own, so that it never holds
  // one of the scheduler's threads (the shards') while a flush waits for the brokers.
  if (sink->blocking()) return sys.spawn<caf::detached>(dead_letter_actor, std::move(sink));
  return sys.spawn(dead_letter_actor, std::move(sink));
}

}  // namespace streamscore
