// The engine's view of one customer event, after parsing and validation.
#pragma once

#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"

namespace streamscore {

// Amounts above this are rejected (bad_amount). It keeps 30-day sums in int64 cents exact
// up to 92 million maximum-amount transactions per customer and 30 days.
constexpr int64_t kMaxAmountCents = 100'000'000'000;  // 1,000,000,000.00
// A declared feature's field value, in units of 10^-scale, is absent beyond this bound
// (the amount's, in cents): sums stay exact in int64 for as many values per window.
constexpr int64_t kMaxScaledValue = kMaxAmountCents;

// An instant with the number of fraction digits it was written with, so that
// `last_event_time` is printed the way the input wrote it. Ordered by instant first;
// for the same instant the longer spelling wins, which keeps the choice independent
// of arrival order.
struct EventTime {
  int64_t ns = 0;           // nanoseconds since the Unix epoch (UTC)
  uint8_t frac_digits = 0;  // 0 = no fraction in the input, else 1..9

  friend bool operator<(const EventTime& a, const EventTime& b) {
    return a.ns != b.ns ? a.ns < b.ns : a.frac_digits < b.frac_digits;
  }
  friend bool operator==(const EventTime& a, const EventTime& b) {
    return a.ns == b.ns && a.frac_digits == b.frac_digits;
  }
  friend bool operator!=(const EventTime& a, const EventTime& b) { return !(a == b); }
};

// Index of the 5-minute window holding `ns`: window k is [k*300 s, (k+1)*300 s).
constexpr int64_t window_of(int64_t ns) {
  return floor_div(ns, kWindowNanos);
}

// At tick `tick`, events before this instant are expired: they can change no feature.
// `horizon_windows`: the longest feature window (FeatureSet::horizon_windows).
constexpr int64_t horizon_start_ns(int64_t tick, int64_t horizon_windows) {
  return (tick - horizon_windows) * kWindowNanos;
}
// At tick `tick`, ids whose first event is before this instant are forgotten: the
// horizon plus the allowed lateness (contract, section 2). The window clock and the
// shards must agree on it, so both use this.
constexpr int64_t forget_before_ns(int64_t tick, int64_t horizon_windows, int64_t allowed_lateness_ns) {
  return horizon_start_ns(tick, horizon_windows) - allowed_lateness_ns;
}

// 128-bit dedup key: XXH3-128 of the length-prefixed (customer_id, event_id) pair
// (dedup_key in io/event_parser.hpp).
struct DedupKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const DedupKey& a, const DedupKey& b) { return a.lo == b.lo && a.hi == b.hi; }
};

// Each source partition has its own clock (a Kafka partition, like a Kafka Streams
// task's stream time), so that a customer's ticks come from its partition's records only,
// whoever reads the others: a file or the generator is one partition, kSingleClock.
constexpr int32_t kSingleClock = -1;
constexpr int32_t kEveryClock = -2;  // a tick for every clock at once: the final tick

// What an event gives declared features other than the default set (state/feature_plan.hpp):
// bit f of `filters` set when its type passes the plan's filter f, bit k of `present` when
// value slot k was read, and the values by slot (scaled integers). Held in the event: an
// allocation per event cost more than the few words it adds to the default set's events.
struct FeatureInputs {
  uint64_t filters = 0;  // none for the default set: the event counts in no declared input
  uint64_t present = 0;
  boost::container::small_vector<int64_t, 2> values;
};

struct ParsedEvent {
  std::string customer_id;
  EventTime time;
  int64_t cents = 0;  // exact amount in cents
  DedupKey key;
  uint32_t fingerprint = 0;  // event_fingerprint: tells conflicting duplicates apart
  bool is_transaction = false;
  uint64_t customer_hash = 0;    // stable hash of customer_id, picks the shard
  uint32_t record_index = 0;     // position of the record in its batch
  int32_t clock = kSingleClock;  // its window clock: its source partition
  FeatureInputs inputs;          // declared features only
};

// "After the first `position` events of a shard batch, advance the clock to `tick`":
// ticks travel in-band with the events (like Flink watermarks), so every shard sees
// them at exactly the same place in the stream, whatever the batching.
struct TickMark {
  uint32_t position = 0;
  int64_t tick = 0;              // tick index: the tick instant is tick * 300 s
  int32_t clock = kSingleClock;  // whose customers it ticks: a partition, or kEveryClock
};

// Why a record went to the dead letter. Names are part of the output format.
enum class Reason : uint8_t {
  not_json,         // the record is not valid JSON (including invalid UTF-8)
  not_object,       // valid JSON, but not an object
  missing_field,    // a required field is absent
  bad_type,         // a required field has the wrong JSON type (amount as a string, null, ...)
  empty_field,      // event_id, customer_id or event_type is an empty string
  too_long,         // event_id > 128 bytes or customer_id > 64 bytes
  duplicate_field,  // a required field appears twice in the object
  bad_time,         // event_time is not YYYY-MM-DDTHH:MM:SS[.fraction]Z naming a real instant
  bad_amount,       // amount negative, or above kMaxAmountCents
  future,           // event_time more than window.max_future_skew ahead of the wall clock
  expired,          // event_time older than the current tick minus 30 days
  missing_key,      // a Kafka message without a key (the key must be the customer_id)
  wrong_partition,  // shared table: the customer's partition (Kafka's default partitioner) is another
};
constexpr int kReasonCount = 13;

std::string_view reason_name(Reason r);

}  // namespace streamscore
