// The router: takes raw batches in order and, for each, fans parsing out to the
// parser pool, asks the owning shards whether the ids were seen, lets the window clock
// classify the records in arrival order, then dispatches accepted events (with the
// in-band ticks) to the shards by a stable hash of customer_id, and dead letters to
// the sink. Batches are sequenced strictly in arrival order, one at a time, while the
// parser pool already works on the batches behind it and the shards apply the ones
// before it: three stages overlap.
#include <algorithm>
#include <deque>

#include "actors/actors.hpp"
#include "io/dead_letter.hpp"
#include "messages/messages.hpp"
#include "state/sequencer.hpp"

namespace streamscore {

namespace {

constexpr uint32_t kMinRecordsPerParser = 512;

struct BarrierContext {
  caf::response_promise promise;
  BarrierRequest request;
  Cut cut;
  std::vector<ShardCut> shard_cuts;
  std::size_t pending = 0;
  bool failed = false;
};

// A batch between its arrival and its dispatch, or a checkpoint barrier (`barrier`
// set) that waits its turn behind the batches that arrived before it.
struct InFlight {
  std::shared_ptr<BarrierContext> barrier;
  RawBatchPtr batch;
  AckReceiver reply_to;
  std::vector<ParsedChunk> chunks;
  std::size_t parts_pending = 0;
  std::string error;  // set when parsing failed
};

struct RouterState {
  RouterConfig config;
  std::deque<std::shared_ptr<InFlight>> queue;  // arrival order
  // The batch being sequenced (probe -> classify -> dispatch), if any.
  std::shared_ptr<InFlight> current;
  std::size_t pending = 0;  // probe replies still awaited
  Sequencer sequencer;      // the current batch's records, from parsed to dispatched
  std::vector<Rejected> rejects;
  uint64_t key_mismatches = 0;  // of the current batch
  // The number of the batch being sequenced; retired (incremented) when it is done or
  // failed, so that a late reply for it is never taken for the next batch's.
  uint64_t sequence_number = 0;
  // While the final tick is being fetched, nothing behind the barrier may pass.
  bool held = false;
};

using router_ptr = RouterActor::stateful_pointer<RouterState>;

void pump(router_ptr self);

// Retires the current batch. Its ack goes to the source now on an error; otherwise
// dispatch() sends it once every shard has applied its part.
void finish_current(router_ptr self, std::string error, bool ack_now = true) {
  auto& st = self->state;
  if (ack_now) self->send(st.current->reply_to, ack_atom::value, BatchAck{std::move(error)});
  st.current.reset();
  ++st.sequence_number;
  pump(self);
}

void fail_batch(router_ptr self, uint64_t number, const caf::error& err) {
  auto& st = self->state;
  if (number != st.sequence_number || !st.current) return;
  finish_current(self, self->system().render(err));
}

// `expired`: record indices, ascending.
DeadLetterBatch render_dead_letters(const RouterState& st, const std::vector<uint32_t>& expired) {
  const RawBatch& batch = *st.current->batch;
  DeadLetterBatch out;
  std::size_t r = 0, e = 0;
  // file:line, or topic/partition:offset (a Kafka batch names the topic and each line
  // its partition; an object of a partitioned layout is a file: its key names its
  // partition, and a Kafka dead-letter sink labels it as a file, not as a topic's record).
  const bool from_kafka = !batch.keys.empty();
  auto add = [&](Reason reason, std::string_view field, std::string_view detail, uint32_t index) {
    const uint64_t position = batch.lines[index].position;
    const int32_t partition = from_kafka ? batch.partitions[index] : -1;
    const std::string where = partition < 0 ? batch.source : batch.source + "/" + std::to_string(partition);
    append_dead_letter(out.lines, reason, field, detail, where + ":" + std::to_string(position), batch.line(index));
    out.entries.push_back(DeadLetterEntry{out.lines.size(), reason, partition, position});
  };
  // Merge both lists by record index so the dead letter keeps input order.
  while (r < st.rejects.size() || e < expired.size()) {
    const bool take_reject = e == expired.size() || (r < st.rejects.size() && st.rejects[r].index < expired[e]);
    if (take_reject) {
      const Rejected& rej = st.rejects[r++];
      add(rej.reason, rej.field, rej.detail, rej.index);
    } else {
      add(Reason::expired, "event_time", "older than the current tick minus 30 days", expired[e++]);
    }
  }
  if (!out.entries.empty()) out.source = batch.source;
  return out;
}

void dispatch(router_ptr self, const ClassifyResult& result) {
  auto& st = self->state;
  auto& metrics = *st.config.router_probe;
  SequencedBatch sequenced = st.sequencer.dispatch(result);
  std::vector<ShardBatch>& out = sequenced.shards;
  DeadLetterBatch dead = render_dead_letters(st, sequenced.expired);
  // The source gets its ack when the shards have applied the batch, not when it is
  // dispatched: the source's in-flight limit then bounds the shards' mailboxes too
  // (backpressure), and memory stays flat when shards are slower than the router.
  struct Applied {
    AckReceiver reply_to;
    std::size_t pending = 0;
    std::string error;
  };
  auto applied = std::make_shared<Applied>();
  applied->reply_to = st.current->reply_to;
  for (const ShardBatch& sb : out)
    if (!sb.events.empty() || !sb.ticks.empty()) ++applied->pending;
  auto one_done = [=] {
    if (--applied->pending == 0) self->send(applied->reply_to, ack_atom::value, BatchAck{applied->error});
  };
  for (std::size_t s = 0; s < out.size(); ++s) {
    if (out[s].events.empty() && out[s].ticks.empty()) continue;
    st.config.shard_probe->batch_sent(s);
    self->request(st.config.shards[s], caf::infinite, apply_atom::value, std::move(out[s]))
        .then([=](bool) { one_done(); },
              [=](caf::error& err) {
                if (applied->error.empty()) applied->error = self->system().render(err);
                one_done();
              });
  }
  if (applied->pending == 0) self->send(applied->reply_to, ack_atom::value, BatchAck{});
  if (!dead.entries.empty()) self->send(st.config.dead_letter, write_atom::value, std::move(dead));

  metrics.read += st.current->batch->lines.size();
  metrics.accepted += sequenced.accepted;
  metrics.duplicates += sequenced.duplicates;
  metrics.conflicting_duplicates += sequenced.conflicting_duplicates;
  metrics.dead_lettered[static_cast<int>(Reason::expired)] += sequenced.expired.size();
  for (const Rejected& r : st.rejects) ++metrics.dead_lettered[static_cast<int>(r.reason)];
  metrics.ticks += result.ticks_emitted;
  metrics.out_of_range += sequenced.out_of_range;
  metrics.key_mismatches += st.key_mismatches;
  if (!result.ticks.empty()) metrics.last_tick = result.ticks.back().tick;
  finish_current(self, {}, /*ack_now=*/false);
}

void classify(router_ptr self) {
  auto& st = self->state;
  ClassifyRequest request;
  request.candidates = st.sequencer.candidates();
  const uint64_t number = st.sequence_number;
  self->request(st.config.clock, caf::infinite, classify_atom::value, std::move(request))
      .then(
          [=](ClassifyResult& result) {
            if (number == self->state.sequence_number) dispatch(self, result);
          },
          [=](caf::error& err) { fail_batch(self, number, err); });
}

void probe(router_ptr self) {
  auto& st = self->state;
  const std::size_t shards = st.config.shards.size();
  std::vector<ProbeRequest> requests = st.sequencer.probe_requests();
  st.pending = 0;
  for (std::size_t s = 0; s < shards; ++s)
    if (!requests[s].keys.empty()) ++st.pending;
  if (st.pending == 0) return classify(self);
  const uint64_t number = st.sequence_number;
  for (std::size_t s = 0; s < shards; ++s) {
    if (requests[s].keys.empty()) continue;
    self->request(st.config.shards[s], caf::infinite, probe_atom::value, std::move(requests[s]))
        .then(
            [=](ProbeReply& reply) {
              if (number != self->state.sequence_number) return;
              self->state.sequencer.take_reply(s, std::move(reply));
              if (--self->state.pending == 0) classify(self);
            },
            [=](caf::error& err) { fail_batch(self, number, err); });
  }
}

void sequence(router_ptr self, std::shared_ptr<InFlight> batch) {
  auto& st = self->state;
  st.current = std::move(batch);
  st.rejects.clear();
  std::size_t total = 0;
  for (const auto& chunk : st.current->chunks) total += chunk.events.size();
  st.sequencer.begin(total);
  st.key_mismatches = 0;
  const std::vector<int32_t>& partitions = st.current->batch->partitions;
  for (auto& chunk : st.current->chunks) {
    st.sequencer.add(chunk.events, partitions);
    std::move(chunk.rejects.begin(), chunk.rejects.end(), std::back_inserter(st.rejects));
    st.key_mismatches += chunk.key_mismatches;
  }
  st.current->chunks.clear();
  probe(self);
}

void start_parse(router_ptr self, std::shared_ptr<InFlight> batch) {
  auto& st = self->state;
  const auto n = static_cast<uint32_t>(batch->batch->lines.size());
  const auto pool = static_cast<uint32_t>(st.config.parsers.size());
  const uint32_t parts = std::max<uint32_t>(1, std::min(pool, n / kMinRecordsPerParser));
  const uint32_t per_part = (n + parts - 1) / parts;
  const int64_t max_event_ns = future_limit(st.config.now_ns(), st.config.max_future_skew_ns);
  batch->chunks.assign(parts, ParsedChunk{});
  batch->parts_pending = parts;
  for (uint32_t p = 0; p < parts; ++p) {
    const uint32_t begin = std::min(n, p * per_part);
    const uint32_t end = std::min(n, begin + per_part);
    self->request(st.config.parsers[p], caf::infinite, parse_atom::value, batch->batch, begin, end, max_event_ns)
        .then(
            [=](ParsedChunk& chunk) {
              batch->chunks[p] = std::move(chunk);
              if (--batch->parts_pending == 0) pump(self);
            },
            [=](caf::error& err) {
              if (batch->error.empty()) batch->error = self->system().render(err);
              if (--batch->parts_pending == 0) pump(self);
            });
  }
}

void fail_barrier(const std::shared_ptr<BarrierContext>& ctx, const caf::error& err) {
  if (ctx->failed) return;
  ctx->failed = true;
  ctx->promise.deliver(err);
}

void barrier_part_done(const std::shared_ptr<BarrierContext>& ctx) {
  if (--ctx->pending > 0 || ctx->failed) return;
  Cut& cut = ctx->cut;
  for (ShardCut& sc : ctx->shard_cuts) {
    cut.shard_of_put_begin.push_back(cut.puts.size());
    std::move(sc.puts.begin(), sc.puts.end(), std::back_inserter(cut.puts));
    std::move(sc.dedup.begin(), sc.dedup.end(), std::back_inserter(cut.dedup));
    cut.stats.customers += sc.report.customers;
    cut.stats.items_written += sc.report.items_written;
    cut.stats.logical_writes += sc.report.logical_writes;
    cut.stats.dedup_ids += sc.report.dedup_ids;
    cut.stats.conflicts += sc.report.conflicts;
  }
  ctx->shard_cuts.clear();
  ctx->promise.deliver(std::move(cut));
}

// Takes the cut: the counters now (every batch before the barrier is dispatched),
// and requests that reach each shard, the clock and the dead-letter sink after
// everything sent to them before. Batches behind the barrier flow on meanwhile.
void cut_at_barrier(router_ptr self, const std::shared_ptr<BarrierContext>& ctx) {
  auto& st = self->state;
  const auto& m = *st.config.router_probe;
  RunStats& s = ctx->cut.stats;
  s.read = m.read;
  s.accepted = m.accepted;
  s.duplicates = m.duplicates;
  s.conflicting_duplicates = m.conflicting_duplicates;
  for (int r = 0; r < kReasonCount; ++r) s.dead_lettered[r] = m.dead_lettered[r];
  s.ticks = m.ticks;
  s.out_of_range = m.out_of_range;
  s.key_mismatches = m.key_mismatches;
  const std::size_t shards = st.config.shards.size();
  ctx->shard_cuts.assign(shards, ShardCut{});
  ctx->pending = shards + 2;
  for (std::size_t i = 0; i < shards; ++i)
    self->request(st.config.shards[i], caf::infinite, snapshot_atom::value, ctx->request)
        .then(
            [=](ShardCut& cut) {
              ctx->shard_cuts[i] = std::move(cut);
              barrier_part_done(ctx);
            },
            [=](caf::error& err) { fail_barrier(ctx, err); });
  self->request(st.config.dead_letter, caf::infinite, flush_atom::value)
      .then(
          [=](uint64_t bytes) {
            ctx->cut.dead_letter_bytes = bytes;
            barrier_part_done(ctx);
          },
          [=](caf::error& err) { fail_barrier(ctx, err); });
  self->request(st.config.clock, caf::infinite, clock_atom::value)
      .then(
          [=](ClockSnapshots& clocks) {
            ctx->cut.stats.clock = combined(clocks);
            ctx->cut.clocks = std::move(clocks);
            barrier_part_done(ctx);
          },
          [=](caf::error& err) { fail_barrier(ctx, err); });
}

void run_barrier(router_ptr self, std::shared_ptr<BarrierContext> ctx) {
  if (!ctx->request.final_tick) return cut_at_barrier(self, ctx);
  self->state.held = true;
  self->request(self->state.config.clock, caf::infinite, final_atom::value, ctx->request.final_tick_floor_ns)
      .then(
          [=](FinalTick& f) {
            auto& st = self->state;
            if (f.has_tick) {
              std::vector<ShardBatch> final_batches = st.sequencer.final_tick(f.mark);
              // Nothing waits for the shard's reply: the barrier's snapshot request below
              // reaches it after this tick. The typed interface makes a plain send (whose
              // reply would reach the router unhandled) a compile error.
              for (std::size_t s = 0; s < st.config.shards.size(); ++s) {
                st.config.shard_probe->batch_sent(s);
                self->request(st.config.shards[s], caf::infinite, apply_atom::value, std::move(final_batches[s]))
                    .then([](bool) {});
              }
              st.config.router_probe->ticks += f.ticks_emitted;
              st.config.router_probe->last_tick = f.mark.tick;
            }
            cut_at_barrier(self, ctx);
            st.held = false;
            pump(self);
          },
          [=](caf::error& err) {
            fail_barrier(ctx, err);
            self->state.held = false;
            pump(self);
          });
}

// Sequences the oldest batch once it is parsed and the previous one is dispatched;
// runs a barrier once everything before it is through.
void pump(router_ptr self) {
  auto& st = self->state;
  while (!st.current && !st.held && !st.queue.empty() && st.queue.front()->parts_pending == 0) {
    std::shared_ptr<InFlight> next = std::move(st.queue.front());
    st.queue.pop_front();
    if (next->barrier) {
      run_barrier(self, std::move(next->barrier));
      continue;
    }
    if (!next->error.empty()) {
      self->send(next->reply_to, ack_atom::value, BatchAck{next->error});
      continue;
    }
    sequence(self, std::move(next));
  }
}

RouterActor::behavior_type router_actor(router_ptr self, RouterConfig config) {
  self->state.config = std::move(config);
  const RouterConfig& c = self->state.config;
  self->state.sequencer = Sequencer(SequencerOptions{c.shards.size(), c.since_ns, c.until_ns});
  return {
      [=](batch_atom, RawBatchPtr& raw) {
        auto batch = std::make_shared<InFlight>();
        batch->reply_to = caf::actor_cast<AckReceiver>(self->current_sender());
        batch->batch = std::move(raw);
        self->state.queue.push_back(batch);
        if (batch->batch->lines.empty()) {
          pump(self);
          return;
        }
        start_parse(self, batch);
      },
      // A checkpoint barrier (or the end of intake, with the final tick): returns the
      // cut once every batch sent before it has been applied by the shards.
      [=](barrier_atom, const BarrierRequest& request) -> caf::result<Cut> {
        auto entry = std::make_shared<InFlight>();
        entry->barrier = std::make_shared<BarrierContext>();
        entry->barrier->promise = self->make_response_promise();
        entry->barrier->request = request;
        auto promise = entry->barrier->promise;
        self->state.queue.push_back(std::move(entry));
        pump(self);
        return promise;
      },
  };
}

}  // namespace

RouterActor spawn_router(caf::actor_system& sys, RouterConfig config) {
  return sys.spawn(router_actor, std::move(config));
}

}  // namespace streamscore
