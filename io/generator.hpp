// The seed's simulator of the `customer-events` topic: JSONL records in arrival order,
// with the mess a real at-least-once stream has (redeliveries, bounded disorder, late
// events, malformed records).
//
// The output depends only on the options: the PRNG (xoshiro256** seeded by splitmix64)
// and every transform are our own integer or basic IEEE arithmetic (no std::
// distributions, no libm), so a seed gives the same bytes on any machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace streamscore {

struct GeneratorOptions {
  int64_t customers = 10000;  // 1..9999999; customer_id is "C" + 7 digits, from C0000001
  int64_t events = 1000000;   // lines to produce, duplicates and bad ones included; 0 = never end
  int64_t days = 45;          // event times spread evenly over this many days from start_ns
  double dup_rate = 0.02;     // fraction of emitted records that are at-least-once redeliveries of
                              // an earlier record (exact same line), a few records later
  int64_t disorder_s = 120;   // bounded disorder: arrival may precede event-time order by up to this
                              // many seconds
  double late_rate = 0.001;   // fraction of events whose event_time is 1..48 hours behind the
                              // stream (late, but within 30 days)
  double bad_rate = 0.001;    // fraction of malformed records (cycling through BadKind)
  // Hot keys: a fraction `hot_share` of the events goes to the `hot_customers` fraction
  // of customers (uniformly among them), the rest as usual. 0 = off, and then no random
  // draw is spent on it, so the default stream is unchanged.
  double hot_customers = 0;
  double hot_share = 0;
  uint64_t seed = 42;
  int64_t start_ns = 1'735'689'600LL * 1'000'000'000;  // 2025-01-01T00:00:00Z
};

// When `events` is 0 the stream has no length to spread over `days`: it then advances
// as if `days` held this many records.
constexpr int64_t kUnboundedEventsPerSpan = 1'000'000;

// What a line is, so tests and benchmarks can predict the engine's counters.
enum class RecordKind : uint8_t {
  valid,      // a new event, event_time within the bounded disorder
  late,       // a new event, event_time 1..48 hours behind the stream
  duplicate,  // an exact copy of an earlier valid or late line
  bad,        // malformed: the engine must dead-letter it
};

// The malformed classes, in the order they cycle.
enum class BadKind : uint8_t {
  truncated_json,    // the first half of a valid line
  amount_as_string,  // "amount":"120.50"
  missing_customer,  // no customer_id field
  bad_event_time,    // "event_time":"2025-13-01T00:00:00Z"
  negative_amount,   // "amount":-120.50 (never -0.00)
  not_an_object,     // a JSON array of the values
};
constexpr int kBadKindCount = 6;

struct GeneratorCounts {
  int64_t valid = 0;
  int64_t late = 0;
  int64_t duplicates = 0;
  int64_t bad = 0;
};

class EventGenerator {
 public:
  explicit EventGenerator(const GeneratorOptions& options);

  // Appends the next record (one JSON line WITHOUT the trailing newline) to `line`
  // (cleared first). False when `events` records have been produced (events == 0:
  // never ends).
  bool next(std::string* line);
  int64_t produced() const { return produced_; }

  RecordKind last_kind() const { return last_kind_; }  // of the line `next` just produced
  const GeneratorCounts& counts() const { return counts_; }

 private:
  struct Event;  // one drawn event, before it is written

  uint64_t random();
  double uniform();  // [0, 1) with 53 random bits
  int64_t advance_clock();
  Event draw_event(int64_t nominal_ns, bool late);
  int64_t draw_customer();
  int64_t draw_cents();
  void emit_original(int64_t nominal_ns, std::string* line);
  void emit_bad(int64_t nominal_ns, std::string* line);
  void emit_duplicate(std::string* line);
  std::size_t write_event(const Event& e, std::optional<BadKind> bad, char* out);
  char* write_time(int64_t unix_seconds, char* out);
  void remember(const std::string& line);

  GeneratorOptions options_;
  double bad_threshold_;  // dup_rate + bad_rate: a draw in [dup_rate, this) is a bad line
  uint64_t state_[4];     // xoshiro256**
  int64_t produced_ = 0;
  int64_t next_id_ = 1;    // event_id sequence: "e<seed>-<n>"
  std::string id_prefix_;  // "e<seed>-"
  RecordKind last_kind_ = RecordKind::valid;
  GeneratorCounts counts_;
  // The clock: line k's nominal time is start + k * span / lines, kept exactly with an
  // integer step and a Bresenham-style remainder.
  int64_t clock_ns_;
  int64_t start_seconds_;  // in-order events are never earlier
  int64_t step_ns_;
  int64_t step_rem_;
  int64_t step_den_;
  int64_t rem_acc_ = 0;
  // Customer rank -> id: an affine bijection mod `customers`, so the busiest customers
  // are scattered over the id range instead of being C0000001, C0000002, ...
  uint64_t perm_mul_ = 1;
  uint64_t perm_add_ = 0;
  // Recent valid and late lines, the candidates for redelivery.
  std::vector<std::string> recent_;
  std::size_t recent_size_ = 0;
  std::size_t recent_next_ = 0;
  // The date part of the last printed event_time (most lines share the day).
  int64_t cached_day_;
  char cached_date_[10];
};

}  // namespace streamscore
