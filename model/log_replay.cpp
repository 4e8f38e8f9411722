#include "model/log_replay.hpp"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "io/line_reader.hpp"

namespace streamscore {

LogReplay::LogReplay(const LogReplayOptions& options)
    : options_(options),
      shard_counts_(std::max<std::size_t>(options.shards, 1)),
      clock_(options.allowed_lateness_ns),
      sequencer_(SequencerOptions{std::max<std::size_t>(options.shards, 1)}) {
  for (std::size_t s = 0; s < shard_counts_.size(); ++s)
    shards_.emplace_back(ShardOptions{options.allowed_lateness_ns});
  int64_t now = options.now_ns;
  if (now == 0)
    now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
  parse_options_.max_event_ns = future_limit(now, options.max_future_skew_ns);
}

Status LogReplay::feed(const std::string& path, const ReplayProgress& progress) {
  LineReader reader;
  reader.set_s3(options_.s3);
  Status s = reader.open(path);
  if (!s.is_ok()) return s;
  for (;;) {
    RawBatch batch;
    bool at_end = false;
    if (!(s = reader.next(options_.batch_lines, /*take_partial=*/true, &batch, &at_end)).is_ok()) return s;
    process(batch);
    if (progress) progress(counts());
    if (at_end) return Status::ok();
  }
}

int64_t LogReplay::finish() {
  TickMark mark;
  uint64_t ticks = 0;
  if (clock_.final_tick(&mark, &ticks)) {
    std::vector<ShardBatch> batches = sequencer_.final_tick(mark);
    apply_all(batches);
  }
  return clock_.snapshot().tick;
}

LogReplayCounts LogReplay::counts() const {
  LogReplayCounts sum;
  sum.read = read_;
  sum.dead_lettered = dead_lettered_;
  sum.duplicates = duplicates_;
  for (const LogReplayCounts& c : shard_counts_) {
    if (c.accepted == 0) continue;
    if (sum.accepted == 0 || c.first_event_ns < sum.first_event_ns) sum.first_event_ns = c.first_event_ns;
    if (sum.accepted == 0 || c.last_event_ns > sum.last_event_ns) sum.last_event_ns = c.last_event_ns;
    sum.accepted += c.accepted;
  }
  return sum;
}

std::size_t LogReplay::shard_of_customer(const std::string& customer_id) const {
  return shard_of(XXH3_64bits(customer_id.data(), customer_id.size()), shards_.size());
}

// The router's sequence for one batch: parse, then the sequencer (probe the shards'
// dedup sets, classify in arrival order), then the shards apply their accepted events
// with the in-band ticks.
void LogReplay::process(const RawBatch& batch) {
  events_.clear();
  ParsedEvent event;
  ParseFailure failure;
  for (std::size_t i = 0; i < batch.lines.size(); ++i) {
    ++read_;
    if (parser_.parse(batch.line(i), parse_options_, &event, &failure))
      events_.push_back(event);
    else
      ++dead_lettered_;
  }
  auto probe = [this](std::size_t shard, const ProbeRequest& request) {
    ProbeReply reply;
    shards_[shard].probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
    return reply;
  };
  SequencedBatch sequenced = sequencer_.sequence(events_, /*partitions=*/{}, probe, clock_);
  duplicates_ += sequenced.duplicates;
  dead_lettered_ += sequenced.expired.size();
  apply_all(sequenced.shards);
}

// Shard 0 on this thread, every other shard with work on a thread of its own: the
// shards share nothing, and the next batch is sequenced once all of them are done.
void LogReplay::apply_all(std::vector<ShardBatch>& batches) {
  std::vector<std::thread> others;
  for (std::size_t s = 1; s < batches.size(); ++s)
    if (!batches[s].events.empty() || !batches[s].ticks.empty())
      others.emplace_back([this, s, &batches] { apply(s, batches[s]); });
  apply(0, batches[0]);
  for (std::thread& t : others) t.join();
}

// As ShardState::apply, through the hooks.
void LogReplay::apply(std::size_t shard, ShardBatch& batch) {
  LogReplayCounts& n = shard_counts_[shard];
  std::size_t t = 0;
  for (std::size_t i = 0; i <= batch.events.size(); ++i) {
    for (; t < batch.ticks.size() && batch.ticks[t].position <= i; ++t) advance(shard, batch.ticks[t].tick);
    if (i == batch.events.size()) break;
    ParsedEvent& e = batch.events[i];
    ++n.accepted;
    if (n.accepted == 1 || e.time.ns < n.first_event_ns) n.first_event_ns = e.time.ns;
    if (n.accepted == 1 || e.time.ns > n.last_event_ns) n.last_event_ns = e.time.ns;
    accept(shard, e);
  }
}

void LogReplay::accept(std::size_t shard, ParsedEvent& event) {
  shards_[shard].apply_event(event);
}

}  // namespace streamscore
