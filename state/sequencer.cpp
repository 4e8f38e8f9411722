#include "state/sequencer.hpp"

#include <utility>

namespace streamscore {

namespace {

// A tick reaches every shard, after the events that shard got before it.
void add_tick_to_all(std::vector<ShardBatch>& out, const TickMark& mark) {
  for (auto& sb : out) sb.ticks.push_back(TickMark{static_cast<uint32_t>(sb.events.size()), mark.tick, mark.clock});
}

}  // namespace

int64_t future_limit(int64_t now_ns, int64_t max_future_skew_ns) {
  return now_ns > std::numeric_limits<int64_t>::max() - max_future_skew_ns ? std::numeric_limits<int64_t>::max()
                                                                           : now_ns + max_future_skew_ns;
}

Sequencer::Sequencer(SequencerOptions options) : options_(options) {}

void Sequencer::begin(std::size_t expected_records) {
  events_.clear();
  events_.reserve(expected_records);
  out_of_range_ = 0;
}

void Sequencer::add(std::vector<ParsedEvent>& events, const std::vector<int32_t>& partitions) {
  for (ParsedEvent& e : events) {
    // Outside a backfill's --since/--until: skipped before anything sees it.
    if (e.time.ns >= options_.since_ns && e.time.ns < options_.until_ns) {
      if (!partitions.empty()) e.clock = partitions[e.record_index];  // its partition's clock
      events_.push_back(std::move(e));
    } else {
      ++out_of_range_;
    }
  }
}

std::vector<ProbeRequest> Sequencer::probe_requests() {
  std::vector<ProbeRequest> requests(options_.shards);
  replies_.assign(options_.shards, ProbeReply{});
  shard_of_event_.resize(events_.size());
  probe_slot_.resize(events_.size());
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const auto s = static_cast<uint32_t>(shard_of(events_[i].customer_hash, options_.shards));
    shard_of_event_[i] = s;
    probe_slot_[i] = static_cast<uint32_t>(requests[s].keys.size());
    requests[s].keys.push_back(events_[i].key);
  }
  return requests;
}

void Sequencer::take_reply(std::size_t shard, ProbeReply reply) {
  replies_[shard] = std::move(reply);
}

std::vector<Candidate> Sequencer::candidates() const {
  std::vector<Candidate> out(events_.size());
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const ParsedEvent& ev = events_[i];
    const ProbeReply& reply = replies_[shard_of_event_[i]];
    Candidate& c = out[i];
    c.time_ns = ev.time.ns;
    c.key = ev.key;
    c.fingerprint = ev.fingerprint;
    c.seen_before = reply.found[probe_slot_[i]] != 0;
    c.seen_fingerprint = reply.fingerprints[probe_slot_[i]];
    c.seen_time_ns = reply.times[probe_slot_[i]];
    c.clock = ev.clock;
  }
  return out;
}

SequencedBatch Sequencer::dispatch(const ClassifyResult& result) {
  SequencedBatch out;
  out.shards.resize(options_.shards);
  std::vector<uint32_t> per_shard(options_.shards, 0);
  for (uint32_t s : shard_of_event_) ++per_shard[s];
  for (std::size_t s = 0; s < out.shards.size(); ++s) out.shards[s].events.reserve(per_shard[s]);
  std::size_t t = 0;
  for (std::size_t i = 0; i <= events_.size(); ++i) {
    for (; t < result.ticks.size() && result.ticks[t].position == i; ++t) add_tick_to_all(out.shards, result.ticks[t]);
    if (i == events_.size()) break;
    switch (result.verdicts[i]) {
      case Verdict::accepted:
        ++out.accepted;
        out.shards[shard_of_event_[i]].events.push_back(std::move(events_[i]));
        break;
      case Verdict::conflicting_duplicate:
        ++out.conflicting_duplicates;
        ++out.duplicates;
        break;
      case Verdict::duplicate:
        ++out.duplicates;
        break;
      case Verdict::expired:
        out.expired.push_back(events_[i].record_index);
        break;
    }
  }
  out.out_of_range = out_of_range_;
  events_.clear();
  shard_of_event_.clear();
  probe_slot_.clear();
  replies_.clear();
  return out;
}

std::vector<ShardBatch> Sequencer::final_tick(const TickMark& mark) const {
  return std::vector<ShardBatch>(options_.shards, ShardBatch{{}, {mark}});
}

}  // namespace streamscore
