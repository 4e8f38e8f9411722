#include "model/log_replay.hpp"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <thread>

#include "io/line_reader.hpp"

namespace streamscore {

LogReplay::LogReplay(const LogReplayOptions& options)
    : options_(options),
      shard_counts_(std::max<std::size_t>(options.shards, 1)),
      clock_(options.allowed_lateness_ns, options.features.horizon_windows()),
      sequencer_(SequencerOptions{std::max<std::size_t>(options.shards, 1)}) {
  for (std::size_t s = 0; s < shard_counts_.size(); ++s)
    shards_.emplace_back(ShardOptions{options.allowed_lateness_ns, options.features});
  parsers_.resize(shard_counts_.size());
  parsed_.resize(shard_counts_.size());
  unparsed_.resize(shard_counts_.size());
  int64_t now = options.now_ns;
  if (now == 0)
    now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
  parse_options_.max_event_ns = future_limit(now, options.max_future_skew_ns);
  plan_ = FeaturePlan::make(options.features);
  parse_options_.features = plan_.get();
}

// A pipeline of three stages. A reader thread reads and parses batches ahead (parsing
// touches no shard), kParsedAhead of them queued and one more in its hands. This thread hands each to the
// sequencer, whose probes wait for the batch before to be applied and then run on the
// shards' threads; the clock's classification follows, and the shards apply the batch on
// their threads while this one takes the next. The reader keeps the cores busy while
// the classification runs alone.
Status LogReplay::feed(const std::string& path, const ReplayProgress& progress) {
  LineReader reader;
  reader.set_s3(options_.s3);
  Status s = reader.open(path);
  if (!s.is_ok()) return s;
  ParsedQueue queue;
  std::thread reading([&] { read_ahead(reader, queue); });
  std::vector<ProbeRequest> requests;
  bool last = false;
  // The next parsed batch, handed to the sequencer: its probe requests.
  auto take_next = [&] {
    ParsedBatch batch = queue.pop();
    if (!batch.status.is_ok()) return batch.status;
    read_ += batch.lines;
    dead_lettered_ += batch.unparsed;
    last = batch.last;
    sequencer_.begin(batch.events.size());
    sequencer_.add(batch.events, /*partitions=*/{});
    requests = sequencer_.probe_requests();
    return Status::ok();
  };
  s = take_next();
  while (s.is_ok()) {
    probe(requests);
    SequencedBatch sequenced = classify_and_dispatch();
    std::vector<std::thread> appliers = start_applying(sequenced.shards);
    const bool more = !last;
    if (more) s = take_next();
    for (std::thread& t : appliers) t.join();
    if (!s.is_ok()) break;
    if (progress) progress(counts());
    if (!more) break;
  }
  reading.join();  // it stops after the last batch or an error, both taken by now
  return s;
}

// The reader thread: batches read and parsed in order, the last one (at the end or on an
// error) marked.
void LogReplay::read_ahead(LineReader& reader, ParsedQueue& queue) {
  for (;;) {
    ParsedBatch parsed;
    RawBatch batch;
    bool at_end = false;
    parsed.status = reader.next(options_.batch_lines, /*take_partial=*/true, &batch, &at_end);
    if (parsed.status.is_ok()) parse(batch, &parsed);
    parsed.last = at_end || !parsed.status.is_ok();
    const bool last = parsed.last;
    queue.push(std::move(parsed));
    if (last) return;
  }
}

void LogReplay::ParsedQueue::push(ParsedBatch batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return batches_.size() < kParsedAhead; });
  batches_.push_back(std::move(batch));
  changed_.notify_all();
}

LogReplay::ParsedBatch LogReplay::ParsedQueue::pop() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !batches_.empty(); });
  ParsedBatch batch = std::move(batches_.front());
  batches_.pop_front();
  changed_.notify_all();
  return batch;
}

int64_t LogReplay::finish() {
  TickMark mark;
  uint64_t ticks = 0;
  if (clock_.final_tick(&mark, &ticks)) {
    std::vector<ShardBatch> batches = sequencer_.final_tick(mark);
    for (std::thread& t : start_applying(batches)) t.join();
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

// The router's probe of the shards' dedup sets, each shard on a thread of its own.
void LogReplay::probe(const std::vector<ProbeRequest>& requests) {
  std::vector<ProbeReply> replies(requests.size());
  auto ask = [&](std::size_t shard) {
    shards_[shard].probe(requests[shard].keys, &replies[shard].found, &replies[shard].fingerprints,
                         &replies[shard].times);
  };
  std::vector<std::thread> askers;
  for (std::size_t shard = 1; shard < requests.size(); ++shard)
    if (!requests[shard].keys.empty()) askers.emplace_back(ask, shard);
  if (!requests.empty() && !requests[0].keys.empty()) ask(0);
  for (std::thread& t : askers) t.join();
  for (std::size_t shard = 0; shard < requests.size(); ++shard)
    if (!requests[shard].keys.empty()) sequencer_.take_reply(shard, std::move(replies[shard]));
}

// The clock classifies the probed batch in arrival order; the accepted events go to
// their shards with the in-band ticks.
SequencedBatch LogReplay::classify_and_dispatch() {
  ClassifyResult result;
  clock_.classify(sequencer_.candidates(), &result);
  SequencedBatch sequenced = sequencer_.dispatch(result);
  duplicates_ += sequenced.duplicates;
  dead_lettered_ += sequenced.expired.size();
  return sequenced;
}

// The lines in as many consecutive parts as there are parsers, part 0 on this thread,
// the others each on a thread of its own; the events then in line order.
void LogReplay::parse(const RawBatch& batch, ParsedBatch* out) {
  constexpr std::size_t kLinesPerPart = 4096;  // below this a thread costs more than it saves
  const std::size_t n = batch.lines.size();
  const std::size_t parts = std::clamp<std::size_t>(n / kLinesPerPart, 1, parsers_.size());
  auto parse_part = [&](std::size_t k) {
    std::vector<ParsedEvent>& events = parsed_[k];
    events.clear();
    unparsed_[k] = 0;
    ParsedEvent event;
    ParseFailure failure;
    for (std::size_t i = n * k / parts; i < n * (k + 1) / parts; ++i) {
      if (parsers_[k].parse(batch.line(i), parse_options_, &event, &failure))
        events.push_back(event);
      else
        ++unparsed_[k];
    }
  };
  std::vector<std::thread> others;
  for (std::size_t k = 1; k < parts; ++k) others.emplace_back(parse_part, k);
  parse_part(0);
  for (std::thread& t : others) t.join();
  out->lines = n;
  for (std::size_t k = 0; k < parts; ++k) {
    out->unparsed += unparsed_[k];
    out->events.insert(out->events.end(), std::make_move_iterator(parsed_[k].begin()),
                       std::make_move_iterator(parsed_[k].end()));
  }
}

// Each shard with work on a thread of its own: the shards share nothing. `batches` must
// outlive the threads.
std::vector<std::thread> LogReplay::start_applying(std::vector<ShardBatch>& batches) {
  std::vector<std::thread> appliers;
  for (std::size_t s = 0; s < batches.size(); ++s)
    if (!batches[s].events.empty() || !batches[s].ticks.empty())
      appliers.emplace_back([this, s, &batches] { apply(s, batches[s]); });
  return appliers;
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
