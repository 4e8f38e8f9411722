// The parser pool, the shards, the window clock and the dead-letter sink: small
// actors, each a thin typed shell around a piece of pure logic.
#include "actors/actors.hpp"
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
  uint64_t items_written = 0;
  uint64_t conflicts = 0;
};

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
caf::behavior shard_actor(caf::stateful_actor<ShardActorState>* self,
                          std::shared_ptr<ShardState> state, StateStore* store) {
  self->state.shard = std::move(state);
  self->state.store = store;
  return {
      [=](probe_atom, const ProbeRequest& request) -> ProbeReply {
        ProbeReply reply;
        self->state.shard->probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
        return reply;
      },
      [=](apply_atom, ShardBatch& batch) { self->state.shard->apply(batch.events, batch.ticks); },
      [=](snapshot_atom, bool direct) -> caf::result<ShardCut> {
        auto& st = self->state;
        ShardCut cut;
        Status s;
        if (direct) {
          FlushStats stats;
          s = st.shard->flush(*st.store, &stats);
          st.items_written += stats.items_written;
          st.conflicts += stats.conflicts;
        } else {
          s = st.shard->take_changes([&](std::vector<ConditionalPut>& puts) {
            std::move(puts.begin(), puts.end(), std::back_inserter(cut.puts));
            return Status::ok();
          });
          st.items_written += cut.puts.size();
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
};

caf::behavior clock_actor(caf::stateful_actor<ClockActorState>* self,
                          std::shared_ptr<EventClock> clock) {
  self->state.clock = std::move(clock);
  return {
      [=](classify_atom, const ClassifyRequest& request) -> ClassifyResult {
        ClassifyResult result;
        self->state.clock->classify(request.candidates, &result);
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
                       StateStore* store) {
  return sys.spawn(shard_actor, std::move(state), store);
}

caf::actor spawn_window_clock(caf::actor_system& sys, std::shared_ptr<EventClock> clock) {
  return sys.spawn(clock_actor, std::move(clock));
}

caf::actor spawn_dead_letter_sink(caf::actor_system& sys,
                                  std::shared_ptr<DeadLetterWriter> writer) {
  return sys.spawn(dead_letter_actor, std::move(writer));
}

}  // namespace streamscore
