// The parser pool, the shards, the window clock and the dead-letter sink: small
// actors, each a thin typed shell around a piece of pure logic.
#include "actors/actors.hpp"

#include <chrono>
#include "io/dead_letter.hpp"
#include "io/event_parser.hpp"
#include "messages/messages.hpp"

namespace streamscore {

namespace {

struct ParserState {
  EventParser parser;
};

caf::behavior parser_actor(caf::stateful_actor<ParserState>* self) {
  return {
      [=](parse_atom, const RawBatchPtr& batch_ptr, uint32_t begin, uint32_t end,
          int64_t max_event_ns) -> ParsedChunk {
        const RawBatch& batch = *batch_ptr;
        ParsedChunk chunk;
        chunk.events.reserve(end - begin);
        ParseOptions options;
        options.max_event_ns = max_event_ns;
        ParsedEvent event;
        ParseFailure failure;
        for (uint32_t i = begin; i < end; ++i) {
          if (self->state.parser.parse(batch.line(i), options, &event, &failure)) {
            event.record_index = i;
            chunk.events.push_back(std::move(event));
          } else {
            chunk.rejects.push_back(
                Rejected{i, failure.reason, std::move(failure.field), std::move(failure.detail)});
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
  std::shared_ptr<EngineMetrics> metrics;  // /metrics gauges, stress and simulation totals
  // What this shard has added to the totals in `metrics` so far (it adds the differences).
  uint64_t published_versions = 0, published_tick_nanos = 0;
  int64_t published_dedup = 0, published_customers = 0;
};

void publish(ShardActorState& st) {
  if (!st.metrics) return;
  const uint64_t versions = st.shard->logical_writes(), nanos = st.shard->tick_nanos();
  const auto dedup = static_cast<int64_t>(st.shard->dedup_size());
  st.metrics->item_versions.fetch_add(versions - st.published_versions, std::memory_order_relaxed);
  st.metrics->tick_nanos.fetch_add(nanos - st.published_tick_nanos, std::memory_order_relaxed);
  st.metrics->dedup_ids.fetch_add(dedup - st.published_dedup, std::memory_order_relaxed);
  const auto customers = static_cast<int64_t>(st.shard->customer_count());
  st.metrics->customers.fetch_add(customers - st.published_customers, std::memory_order_relaxed);
  st.published_customers = customers;
  st.published_versions = versions;
  st.published_tick_nanos = nanos;
  st.published_dedup = dedup;
}

ShardReport report_of(const ShardActorState& st) {
  ShardReport r;
  r.customers = st.shard->customer_count();
  r.items_written = st.items_written;
  r.logical_writes = st.shard->logical_writes();
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

caf::behavior shard_actor(caf::stateful_actor<ShardActorState>* self,
                          std::shared_ptr<ShardState> state, StateStore* store, uint32_t index,
                          std::shared_ptr<EngineMetrics> metrics) {
  self->state.shard = std::move(state);
  self->state.store = store;
  self->state.metrics = std::move(metrics);
  self->state.index = index;
  publish(self->state);  // the ids loaded from the store
  return {
      [=](probe_atom, const ProbeRequest& request) -> ProbeReply {
        ProbeReply reply;
        self->state.shard->probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
        return reply;
      },
      [=](apply_atom, ShardBatch& batch) {
        auto& st = self->state;
        if (st.index < kMaxShardMetrics)
          st.metrics->shard_queue_depth[st.index] = static_cast<int64_t>(self->mailbox().size());
        const auto started = std::chrono::steady_clock::now();
        st.shard->apply(batch.events, batch.ticks);
        if (!batch.ticks.empty())
          st.metrics->tick_duration.observe_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - started).count());
        publish(st);
        return true;  // applied: the router acks the batch to the source when all shards are
      },
      [=](snapshot_atom, const BarrierRequest& request) -> caf::result<ShardCut> {
        auto& st = self->state;
        ShardCut cut;
        Status s;
        if (request.direct) {
          FlushStats stats;
          s = st.shard->flush(*st.store, &stats);
          st.items_written += stats.items_written;
          st.conflicts += stats.conflicts;
          if (s.is_ok()) s = write_ids(st, request.sequence);
        } else {
          s = st.shard->take_changes([&](std::vector<ConditionalPut>& puts) {
            std::move(puts.begin(), puts.end(), std::back_inserter(cut.puts));
            return Status::ok();
          });
          st.items_written += cut.puts.size();
          st.shard->take_unsaved_ids(request.sequence, st.index, &cut.dedup);
        }
        if (!s.is_ok()) return caf::make_error(caf::sec::runtime_error, s.to_string());
        cut.report = report_of(st);
        return cut;
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
  std::shared_ptr<EngineMetrics> metrics;
};

void publish_clock(const EventClock& clock, EngineMetrics& m) {
  const ClockSnapshot& snap = clock.snapshot();
  if (!snap.started) return;
  m.max_event_time_ns = snap.max_event_ns;
  m.watermark_ns = clock.watermark_ns();
  m.event_clock_started = 1;
}

caf::behavior clock_actor(caf::stateful_actor<ClockActorState>* self,
                          std::shared_ptr<EventClock> clock, std::shared_ptr<EngineMetrics> metrics) {
  self->state.clock = std::move(clock);
  self->state.metrics = std::move(metrics);
  publish_clock(*self->state.clock, *self->state.metrics);  // a restored clock
  return {
      [=](classify_atom, const ClassifyRequest& request) -> ClassifyResult {
        ClassifyResult result;
        self->state.clock->classify(request.candidates, &result);
        publish_clock(*self->state.clock, *self->state.metrics);
        return result;
      },
      [=](final_atom) -> FinalTick {
        FinalTick f;
        f.has_tick = self->state.clock->final_tick(&f.mark, &f.ticks_emitted);
        return f;
      },
      [=](clock_atom) -> ClockSnapshot { return self->state.clock->snapshot(); },
  };
}

struct DeadLetterActorState {
  std::shared_ptr<DeadLetterWriter> writer;
  Status failure;
};

caf::behavior dead_letter_actor(caf::stateful_actor<DeadLetterActorState>* self,
                                std::shared_ptr<DeadLetterWriter> writer) {
  self->state.writer = std::move(writer);
  return {
      [=](write_atom, const std::string& lines) {
        if (!self->state.failure.is_ok()) return;
        Status s = self->state.writer->write(lines);
        if (!s.is_ok()) self->state.failure = s;
      },
      // Flushes and returns the file length: the position a checkpoint records.
      [=](flush_atom) -> caf::result<uint64_t> {
        if (self->state.failure.is_ok()) self->state.failure = self->state.writer->flush();
        if (!self->state.failure.is_ok())
          return caf::make_error(caf::sec::runtime_error,
                                 "dead letter: " + self->state.failure.to_string());
        return self->state.writer->bytes();
      },
  };
}

}  // namespace

caf::actor spawn_parser(caf::actor_system& sys) { return sys.spawn(parser_actor); }

caf::actor spawn_shard(caf::actor_system& sys, std::shared_ptr<ShardState> state,
                       StateStore* store, uint32_t index, std::shared_ptr<EngineMetrics> metrics) {
  return sys.spawn(shard_actor, std::move(state), store, index, std::move(metrics));
}

caf::actor spawn_window_clock(caf::actor_system& sys, std::shared_ptr<EventClock> clock,
                              std::shared_ptr<EngineMetrics> metrics) {
  return sys.spawn(clock_actor, std::move(clock), std::move(metrics));
}

caf::actor spawn_dead_letter_sink(caf::actor_system& sys,
                                  std::shared_ptr<DeadLetterWriter> writer) {
  return sys.spawn(dead_letter_actor, std::move(writer));
}

}  // namespace streamscore
