// The sequence of one batch, from parsed records to what each shard applies: the
// records inside the run's range take their partition's clock, the owning shards are
// asked which ids they have seen, the window clock classifies the records in arrival
// order, and the accepted ones go to their shards with the tick marks in-band. Pure and
// sequential: the router actor drives it step by step across its asynchronous requests,
// the trainer in one call (sequence()), so serving and training share one order of checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "state/event.hpp"
#include "state/event_clock.hpp"

namespace streamscore {

// The shard that owns a customer: a stable hash, the same on every run and machine.
inline std::size_t shard_of(uint64_t customer_hash, std::size_t shards) {
  return static_cast<std::size_t>(customer_hash % shards);
}

// The latest event time that is not `future`: the wall clock plus the allowed skew,
// saturated (the parser applies it, with the same limit for serving and training).
int64_t future_limit(int64_t now_ns, int64_t max_future_skew_ns);

// The ids a shard's dedup set is asked about, and its answers, one per key.
struct ProbeRequest {
  std::vector<DedupKey> keys;
};
struct ProbeReply {
  std::vector<uint8_t> found;
  std::vector<uint32_t> fingerprints;
  std::vector<int64_t> times;
};

// What one shard applies: accepted events with the tick marks between them.
struct ShardBatch {
  std::vector<ParsedEvent> events;
  std::vector<TickMark> ticks;
};

struct SequencerOptions {
  std::size_t shards = 1;
  int64_t since_ns = std::numeric_limits<int64_t>::min();  // valid records outside
  int64_t until_ns = std::numeric_limits<int64_t>::max();  // [since, until) are skipped
};

// A sequenced batch: for every shard (even an idle one) what it applies, and the counts.
struct SequencedBatch {
  std::vector<ShardBatch> shards;
  std::vector<uint32_t> expired;  // record indices of expired records, ascending
  uint64_t accepted = 0;
  uint64_t duplicates = 0;              // conflicting ones included
  uint64_t conflicting_duplicates = 0;  // same id, different content
  uint64_t out_of_range = 0;            // valid records outside [since, until)
};

class Sequencer {
 public:
  explicit Sequencer(SequencerOptions options = {});

  // 1. A new batch; then its parsed records in record order, in one or several parts.
  // `partitions` (one per record of a Kafka batch, else empty) gives each its clock.
  void begin(std::size_t expected_records = 0);
  void add(std::vector<ParsedEvent>& events, const std::vector<int32_t>& partitions);
  // 2. The ids to ask each shard about (a request without keys needs no answer), then
  // every answer, by shard.
  std::vector<ProbeRequest> probe_requests();
  void take_reply(std::size_t shard, ProbeReply reply);
  // 3. The records as the window clock classifies them, with what their shards said.
  std::vector<Candidate> candidates() const;
  // 4. The clock's verdicts and ticks, turned into the shards' batches. Ends the batch.
  SequencedBatch dispatch(const ClassifyResult& result);

  // The final tick of a finite input, for every shard.
  std::vector<ShardBatch> final_tick(const TickMark& mark) const;

  // Steps 1 to 4 at once, for a caller that holds the dedup sets and the clock itself:
  // `probe(shard, request)` returns that shard's ProbeReply.
  template <class Probe>
  SequencedBatch sequence(std::vector<ParsedEvent>& events, const std::vector<int32_t>& partitions, Probe&& probe,
                          EventClock& clock) {
    begin(events.size());
    add(events, partitions);
    std::vector<ProbeRequest> requests = probe_requests();
    for (std::size_t s = 0; s < requests.size(); ++s)
      if (!requests[s].keys.empty()) take_reply(s, probe(s, requests[s]));
    ClassifyResult result;
    clock.classify(candidates(), &result);
    return dispatch(result);
  }

 private:
  SequencerOptions options_;
  std::vector<ParsedEvent> events_;  // the batch's records inside the range
  std::vector<uint32_t> shard_of_event_;
  std::vector<uint32_t> probe_slot_;  // index of the event's key in its shard's probe
  std::vector<ProbeReply> replies_;
  uint64_t out_of_range_ = 0;
};

}  // namespace streamscore
