// The sequencer alone (no actors): the order of verdicts and tick marks, duplicates
// inside a batch and across batches (the shards' probe replies), late, expired and
// future records, the final tick, several partitions' clocks, and a brute-force
// reference that every shard count and batching must agree with.
#define BOOST_TEST_MODULE sequencer
#include <boost/test/unit_test.hpp>

#include <xxhash.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/event_parser.hpp"
#include "state/event_clock.hpp"
#include "state/sequencer.hpp"
#include "state/shard_state.hpp"

using namespace streamscore;

namespace {

constexpr int64_t kSec = kNanosPerSecond;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kDay = 86400 * kSec;
constexpr int64_t kT0 = 1735689600LL * kSec;  // 2025-01-01T00:00:00Z, a window start
constexpr int64_t kLateness = 10 * kMin;

// A record of customer `customer` with event id `id`; `cents` doubles as its name in the
// assertions, `fingerprint` tells a conflicting duplicate from an exact one.
ParsedEvent event(int customer, uint64_t id, int64_t ns, int64_t cents, uint32_t fingerprint = 1) {
  ParsedEvent e;
  e.customer_id = "C" + std::to_string(customer);
  e.time = EventTime{ns, 0};
  e.cents = cents;
  e.is_transaction = true;
  e.key = DedupKey{id * 0x9E3779B97F4A7C15ULL + 1, static_cast<uint64_t>(customer) + 1};
  e.fingerprint = fingerprint;
  e.customer_hash = XXH3_64bits(e.customer_id.data(), e.customer_id.size());
  return e;
}

// Record indices 0, stride, 2 * stride...: with a stride above 1, as if the parser had
// rejected the records between.
std::vector<ParsedEvent> numbered(std::vector<ParsedEvent> events, uint32_t stride = 1) {
  for (std::size_t i = 0; i < events.size(); ++i) events[i].record_index = static_cast<uint32_t>(i) * stride;
  return events;
}

SequencerOptions with_shards(SequencerOptions options, std::size_t shards) {
  options.shards = shards;
  return options;
}

// The shards' dedup sets and state, driven as the router's shards are.
struct Pipeline {
  explicit Pipeline(std::size_t shards, SequencerOptions options = {})
      : sequencer(with_shards(options, shards)), clock(kLateness) {
    for (std::size_t s = 0; s < shards; ++s) states.emplace_back(ShardOptions{kLateness});
  }

  // Sequences one batch and lets every shard apply its part.
  SequencedBatch run(std::vector<ParsedEvent> events, const std::vector<int32_t>& partitions = {},
                     uint32_t stride = 1) {
    events = numbered(std::move(events), stride);
    auto probe = [this](std::size_t s, const ProbeRequest& request) {
      ProbeReply reply;
      states[s].probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
      return reply;
    };
    SequencedBatch out = sequencer.sequence(events, partitions, probe, clock);
    std::vector<ShardBatch> applied = out.shards;
    for (std::size_t s = 0; s < states.size(); ++s) states[s].apply(applied[s].events, applied[s].ticks);
    return out;
  }

  Sequencer sequencer;
  EventClock clock;
  std::vector<ShardState> states;
};

std::vector<int64_t> names_of(const ShardBatch& batch) {
  std::vector<int64_t> out;
  for (const ParsedEvent& e : batch.events) out.push_back(e.cents);
  return out;
}

using Marks = std::vector<std::pair<uint32_t, int64_t>>;  // position, tick

Marks marks_of(const ShardBatch& batch) {
  Marks out;
  for (const TickMark& m : batch.ticks) out.emplace_back(m.position, m.tick);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(ticks_fall_between_the_events_where_the_clock_advances) {
  Pipeline p(1);
  const int64_t start = window_of(kT0 + kMin - kLateness);
  // The clock starts with the first record (after it), and ticks once the watermark
  // (largest time - 10 min) passes a window end: after the third and the fifth record.
  SequencedBatch out =
      p.run({event(0, 1, kT0 + kMin, 1), event(0, 2, kT0 + 2 * kMin, 2), event(0, 3, kT0 + 15 * kMin, 3),
             event(0, 4, kT0 + 14 * kMin, 4), event(0, 5, kT0 + 21 * kMin, 5)});
  BOOST_TEST(out.accepted == 5u);
  BOOST_TEST(names_of(out.shards[0]) == (std::vector<int64_t>{1, 2, 3, 4, 5}));
  BOOST_TEST((marks_of(out.shards[0]) ==
              (Marks{{1, start}, {3, window_of(kT0 + 5 * kMin)}, {5, window_of(kT0 + 11 * kMin)}})));
}

BOOST_AUTO_TEST_CASE(a_tick_reaches_every_shard_after_the_events_each_got_before_it) {
  std::vector<ParsedEvent> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(event(i, static_cast<uint64_t>(i), kT0 + i * kMin, i));
  // With one shard, a mark's position is its place in the whole batch.
  const ShardBatch whole = Pipeline(1).run(batch).shards[0];
  BOOST_REQUIRE(whole.ticks.size() == 8u);  // the start, then ticks at records 5, 10, ..., 35
  SequencedBatch out = Pipeline(4).run(batch);
  BOOST_TEST(out.accepted == 40u);
  std::size_t total = 0;
  for (std::size_t s = 0; s < 4; ++s) {
    const ShardBatch& sb = out.shards[s];
    BOOST_TEST_CONTEXT("shard " << s) {
      total += sb.events.size();
      for (const ParsedEvent& e : sb.events) BOOST_TEST(shard_of(e.customer_hash, 4) == s);
      BOOST_REQUIRE(sb.ticks.size() == whole.ticks.size());  // an idle shard ticks too
      for (std::size_t t = 0; t < sb.ticks.size(); ++t) {
        BOOST_TEST(sb.ticks[t].tick == whole.ticks[t].tick);
        // Before the mark: exactly this shard's events that came before the tick.
        const auto before = std::count_if(sb.events.begin(), sb.events.end(), [&](const ParsedEvent& e) {
          return e.cents < static_cast<int64_t>(whole.ticks[t].position);
        });
        BOOST_TEST(sb.ticks[t].position == static_cast<uint32_t>(before));
      }
    }
  }
  BOOST_TEST(total == 40u);
}

BOOST_AUTO_TEST_CASE(duplicates_inside_a_batch_keep_the_first_occurrence) {
  Pipeline p(2);
  SequencedBatch out = p.run({event(1, 7, kT0, 1, 10), event(2, 8, kT0, 2), event(1, 7, kT0, 3, 10),
                              event(1, 7, kT0 + kMin, 4, 11), event(2, 7, kT0, 5)});
  BOOST_TEST(out.accepted == 3u);  // 1, 2, and 5: the same event id of another customer
  BOOST_TEST(out.duplicates == 2u);
  BOOST_TEST(out.conflicting_duplicates == 1u);  // 4: same id, other content
  std::set<int64_t> accepted;
  for (const ShardBatch& sb : out.shards)
    for (int64_t name : names_of(sb)) accepted.insert(name);
  BOOST_TEST(accepted == (std::set<int64_t>{1, 2, 5}));
}

BOOST_AUTO_TEST_CASE(duplicates_across_batches_come_from_the_probe_replies) {
  Pipeline p(3);
  p.run({event(1, 7, kT0, 1, 10), event(2, 8, kT0, 2, 20)});
  SequencedBatch out = p.run({event(2, 8, kT0 + kMin, 3, 21), event(3, 9, kT0, 4), event(1, 7, kT0, 5, 10)});
  BOOST_TEST(out.accepted == 1u);
  BOOST_TEST(out.duplicates == 2u);
  BOOST_TEST(out.conflicting_duplicates == 1u);
}

// The steps one by one, as the router drives them: what a shard answers decides.
BOOST_AUTO_TEST_CASE(the_steps_ask_each_shard_once_and_read_its_answers_by_slot) {
  Sequencer sequencer(SequencerOptions{2});
  std::vector<ParsedEvent> events;
  for (int c = 0; c < 10; ++c) events.push_back(event(c, static_cast<uint64_t>(c), kT0, c));
  events = numbered(std::move(events));
  sequencer.begin(events.size());
  sequencer.add(events, {});
  std::vector<ProbeRequest> requests = sequencer.probe_requests();
  BOOST_REQUIRE(requests.size() == 2u);
  BOOST_REQUIRE(!requests[0].keys.empty());
  BOOST_REQUIRE(!requests[1].keys.empty());
  BOOST_TEST(requests[0].keys.size() + requests[1].keys.size() == 10u);
  // Every shard says: seen, an hour or more ago (still remembered), with the same content
  // for even ids and other content for odd ones; each answer is told by its key.
  auto seen_time = [](const DedupKey& key) { return kT0 - static_cast<int64_t>(60 + key.hi) * kMin; };
  for (std::size_t s = 0; s < 2; ++s) {
    ProbeReply reply;
    for (const DedupKey& key : requests[s].keys) {
      reply.found.push_back(1);
      reply.fingerprints.push_back(key.hi % 2 == 1 ? 1 : 2);  // hi = customer + 1
      reply.times.push_back(seen_time(key));
    }
    sequencer.take_reply(s, std::move(reply));
  }
  const std::vector<Candidate> candidates = sequencer.candidates();
  BOOST_REQUIRE(candidates.size() == 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    BOOST_TEST((candidates[i].key == events[i].key));
    BOOST_TEST(candidates[i].seen_before);
    BOOST_TEST(candidates[i].seen_time_ns == seen_time(events[i].key));
  }
  EventClock clock(kLateness);
  ClassifyResult result;
  clock.classify(candidates, &result);
  SequencedBatch out = sequencer.dispatch(result);
  BOOST_TEST(out.duplicates == 10u);
  BOOST_TEST(out.conflicting_duplicates == 5u);
  BOOST_TEST(out.accepted == 0u);
  BOOST_TEST(out.shards[0].ticks.empty());  // nothing accepted: the clock has not started
}

BOOST_AUTO_TEST_CASE(late_records_are_accepted_expired_ones_listed_by_record_index) {
  Pipeline p(2);
  p.run({event(1, 1, kT0 + 40 * kDay, 1)});
  // The clock is at about day 40: 20 minutes late is accepted (it only misses ticks),
  // older than day 10 is expired, listed by the record's place in its batch (every
  // other record of which was invalid).
  SequencedBatch out = p.run({event(2, 2, kT0 + 40 * kDay - 20 * kMin, 2), event(3, 3, kT0 + 9 * kDay, 3),
                              event(4, 4, kT0 + 11 * kDay, 4), event(5, 5, kT0 + 2 * kDay, 5)},
                             {}, /*stride=*/2);
  BOOST_TEST(out.accepted == 2u);
  BOOST_TEST(out.expired == (std::vector<uint32_t>{2, 6}));
}

BOOST_AUTO_TEST_CASE(future_records_end_at_the_shared_limit_which_saturates) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  BOOST_TEST(future_limit(kT0, 3600 * kSec) == kT0 + 3600 * kSec);
  BOOST_TEST(future_limit(kT0, kMax) == kMax);
  BOOST_TEST(future_limit(kMax - 5, 6) == kMax);
  BOOST_TEST(future_limit(kMax - 5, 5) == kMax);
  EventParser parser;
  ParseOptions options;
  options.max_event_ns = future_limit(kT0, 3600 * kSec);
  ParsedEvent e;
  ParseFailure failure;
  auto line = [](const char* time) {
    return std::string(R"({"event_id":"e","customer_id":"c","event_time":")") + time +
           R"(","event_type":"transaction","amount":1.00})";
  };
  BOOST_TEST(parser.parse(line("2025-01-01T01:00:00Z"), options, &e, &failure));
  BOOST_TEST(!parser.parse(line("2025-01-01T01:00:00.000000001Z"), options, &e, &failure));
  BOOST_TEST((failure.reason == Reason::future));
}

BOOST_AUTO_TEST_CASE(records_outside_the_range_are_counted_and_never_probed) {
  SequencerOptions options;
  options.since_ns = kT0;
  options.until_ns = kT0 + kDay;
  Pipeline p(2, options);
  SequencedBatch out = p.run({event(1, 1, kT0 - 1, 1), event(2, 2, kT0, 2), event(3, 3, kT0 + kDay, 3)});
  BOOST_TEST(out.out_of_range == 2u);
  BOOST_TEST(out.accepted == 1u);
  // Out of range, the first record did not start the clock: the start mark is the second's.
  BOOST_REQUIRE(out.shards[0].ticks.size() == 1u);
  BOOST_TEST(out.shards[0].ticks[0].tick == window_of(kT0 - kLateness));
}

BOOST_AUTO_TEST_CASE(each_partition_moves_and_expires_by_its_own_clock) {
  Pipeline p(2);
  // Partition 0 is 40 days ahead of partition 1.
  SequencedBatch out = p.run({event(1, 1, kT0 + 40 * kDay, 1), event(2, 2, kT0, 2), event(2, 3, kT0 + 20 * kMin, 3),
                              event(1, 4, kT0 + 2 * kDay, 4)},
                             {0, 1, 1, 0});
  BOOST_TEST(out.accepted == 3u);  // partition 1's records are not expired by partition 0
  BOOST_TEST(out.expired == (std::vector<uint32_t>{3}));
  std::vector<std::pair<int32_t, int64_t>> marks;
  for (const TickMark& m : out.shards[0].ticks) marks.emplace_back(m.clock, m.tick);
  BOOST_TEST((marks == std::vector<std::pair<int32_t, int64_t>>{{0, window_of(kT0 + 40 * kDay - kLateness)},
                                                                {1, window_of(kT0 - kLateness)},
                                                                {1, window_of(kT0 + 10 * kMin)}}));
  BOOST_TEST(p.clock.snapshots().at(1).tick == window_of(kT0 + 10 * kMin));
}

// The final tick (which the router holds every later batch behind) reaches every
// shard, idle ones too, before anything else.
BOOST_AUTO_TEST_CASE(the_final_tick_reaches_every_shard_at_position_zero) {
  Pipeline p(3);
  p.run({event(1, 1, kT0 + 7 * kMin, 1)}, {4});
  TickMark mark;
  uint64_t ticks = 0;
  BOOST_REQUIRE(p.clock.final_tick(&mark, &ticks));
  const std::vector<ShardBatch> batches = p.sequencer.final_tick(mark);
  BOOST_REQUIRE(batches.size() == 3u);
  for (const ShardBatch& sb : batches) {
    BOOST_TEST(sb.events.empty());
    BOOST_REQUIRE(sb.ticks.size() == 1u);
    BOOST_TEST(sb.ticks[0].position == 0u);
    BOOST_TEST(sb.ticks[0].tick == window_of(kT0 + 7 * kMin) + 1);
    BOOST_TEST(sb.ticks[0].clock == kEveryClock);
  }
}

namespace {

// What a record became, by the contract (docs/semantics.md 6), one record at a time.
struct Outcome {
  std::vector<std::pair<int32_t, int64_t>> marks;    // clock, tick, in order
  std::map<std::string, std::vector<int64_t>> kept;  // accepted names, by customer
  std::set<int64_t> expired;                         // names
  uint64_t duplicates = 0, conflicting = 0;
};

struct ReferenceClock {
  bool started = false;
  int64_t max_ns = 0, tick = 0;
};

Outcome brute_force(const std::vector<ParsedEvent>& log, const std::vector<int32_t>& partitions) {
  Outcome out;
  std::map<int32_t, ReferenceClock> clocks;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<int64_t, uint32_t>> seen;  // key -> time, fingerprint
  for (std::size_t i = 0; i < log.size(); ++i) {
    const ParsedEvent& e = log[i];
    const int32_t id = partitions[i];
    ReferenceClock& c = clocks[id];
    if (c.started && e.time.ns < horizon_start_ns(c.tick, kHorizonWindows)) {
      out.expired.insert(e.cents);
      continue;
    }
    const auto it = seen.find({e.key.lo, e.key.hi});
    if (it != seen.end() && (!c.started || it->second.first >= forget_before_ns(c.tick, kHorizonWindows, kLateness))) {
      ++out.duplicates;
      out.conflicting += it->second.second != e.fingerprint;
      continue;
    }
    seen[{e.key.lo, e.key.hi}] = {e.time.ns, e.fingerprint};
    out.kept[e.customer_id].push_back(e.cents);
    const int64_t due = window_of(e.time.ns - kLateness);
    if (!c.started) {
      c = ReferenceClock{true, e.time.ns, due};
      out.marks.emplace_back(id, due);
    } else if (e.time.ns > c.max_ns) {
      c.max_ns = e.time.ns;
      if (due > c.tick) out.marks.emplace_back(id, c.tick = due);
    }
  }
  return out;
}

// 70 days of records from 30 customers (each in its own partition), with disorder,
// late and very old records, exact and conflicting redeliveries, and ids delivered
// again after they are forgotten.
std::vector<ParsedEvent> random_log(uint64_t seed, std::size_t partitions, std::vector<int32_t>* partition_of) {
  std::mt19937_64 rng(seed);
  std::vector<ParsedEvent> log;
  std::vector<std::pair<int, uint64_t>> ids;  // customer, event id of each record
  for (int64_t n = 0; n < 3400; ++n) {
    const int customer = static_cast<int>(rng() % 30);
    int64_t ns = kT0 + n * 30 * kMin + static_cast<int64_t>(rng() % 20) * kMin;
    if (rng() % 20 == 0) ns -= static_cast<int64_t>(rng() % 48) * 3600 * kSec;  // late
    if (rng() % 100 == 0) ns -= 35 * kDay;                                      // expired
    std::pair<int, uint64_t> id{customer, static_cast<uint64_t>(n)};
    ParsedEvent e = event(id.first, id.second, ns, n, static_cast<uint32_t>(rng()));
    const uint64_t roll = rng() % 40;
    if (roll < 2 && !log.empty()) {  // a redelivery of an earlier record, maybe changed
      const std::size_t earlier = rng() % log.size();
      id = ids[earlier];
      e = event(id.first, id.second, roll == 0 ? log[earlier].time.ns : ns, n,
                roll == 0 ? log[earlier].fingerprint : log[earlier].fingerprint + 1);
    }
    log.push_back(e);
    ids.push_back(id);
    partition_of->push_back(static_cast<int32_t>(std::stoi(e.customer_id.substr(1)) % partitions));
  }
  return log;
}

Outcome sequenced(const std::vector<ParsedEvent>& log, const std::vector<int32_t>& partition_of, std::size_t shards,
                  uint64_t batch_seed) {
  Outcome out;
  Pipeline p(shards);
  std::mt19937_64 rng(batch_seed);
  for (std::size_t begin = 0; begin < log.size();) {
    const std::size_t end = std::min(log.size(), begin + 1 + rng() % 300);
    std::vector<ParsedEvent> batch(log.begin() + begin, log.begin() + end);
    std::vector<int32_t> partitions(partition_of.begin() + begin, partition_of.begin() + end);
    SequencedBatch b = p.run(batch, partitions);
    for (const TickMark& m : b.shards[0].ticks) out.marks.emplace_back(m.clock, m.tick);
    for (const ShardBatch& sb : b.shards)
      for (const ParsedEvent& e : sb.events) out.kept[e.customer_id].push_back(e.cents);
    for (uint32_t index : b.expired) out.expired.insert(log[begin + index].cents);
    out.duplicates += b.duplicates;
    out.conflicting += b.conflicting_duplicates;
    begin = end;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_shard_count_and_batching_agrees_with_a_record_by_record_reference) {
  for (std::size_t partitions : {1, 3}) {
    std::vector<int32_t> partition_of;
    const std::vector<ParsedEvent> log = random_log(11 + partitions, partitions, &partition_of);
    const Outcome expected = brute_force(log, partition_of);
    BOOST_REQUIRE(expected.duplicates > 20u);  // the log exercises every verdict
    BOOST_REQUIRE(expected.conflicting > 10u);
    BOOST_REQUIRE(expected.expired.size() > 10u);
    BOOST_REQUIRE(expected.marks.size() > 1000u);
    for (std::size_t shards : {1, 4}) {
      for (uint64_t batch_seed : {1, 2}) {
        BOOST_TEST_CONTEXT(partitions << " partitions, " << shards << " shards, batching " << batch_seed) {
          const Outcome got = sequenced(log, partition_of, shards, batch_seed);
          BOOST_TEST((got.marks == expected.marks));
          BOOST_TEST((got.kept == expected.kept));
          BOOST_TEST((got.expired == expected.expired));
          BOOST_TEST(got.duplicates == expected.duplicates);
          BOOST_TEST(got.conflicting == expected.conflicting);
        }
      }
    }
  }
}
