// The data contract (spec sections 1-3, docs/semantics.md 6-8), computed the slow and
// obvious way, for checking the engine: the property test in tests/test_engine.cpp and
// the invariant check that ends every `streamscore stress` run.
//
// It shares nothing with the engine's window clock, dedup table, buckets or shards.
// Validation and field extraction reuse the real parser (feed_line), which has its own
// tests against the spec; everything after it (duplicates, watermark, expiry, ticks,
// features, versions) is recomputed here from first principles.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "io/event_parser.hpp"
#include "messages/run_stats.hpp"
#include "state/event.hpp"

namespace streamscore {

struct ReferenceOptions {
  int64_t allowed_lateness_ns = 10LL * 60 * kNanosPerSecond;
  int64_t max_event_ns = INT64_MAX;  // events later than this are `future` (now + max skew)
  bool keep_history = false;         // every version of every item, for item_at()
};

// One record in arrival order, as the contract sees it.
struct ReferenceRecord {
  bool valid = true;
  Reason reason = Reason::not_json;  // when !valid
  std::string customer;
  // Identity (customer_id, event_id) and what tells conflicting duplicates apart
  // (event_time as written, event_type, cents); any encoding that is equal exactly when
  // those are equal will do.
  std::string event_id;
  std::tuple<int64_t, int, std::string, int64_t> conflict_key;
  EventTime time;
  int64_t cents = 0;
  bool is_transaction = false;
};

class ReferenceModel {
 public:
  explicit ReferenceModel(const ReferenceOptions& options = {});

  void feed(const ReferenceRecord& record);
  // Parses with the real parser, then feeds. Blank lines are not records (skipped).
  void feed_line(std::string_view line);
  // The end of a finite input: the final tick, then every customer's versions.
  void finish();

  // After finish(): the counters an engine run must report (items_written and
  // dedup_ids are left 0: they depend on checkpoint timing and on forgetting).
  const RunStats& stats() const { return stats_; }
  // After finish(): export lines, sorted by PK.
  std::vector<std::string> items() const;
  // After finish(), with keep_history: the customer's item as of tick `tick` (its latest version with
  // as_of <= tick, as export prints it), or "" when it had none by then.
  std::string item_at(const std::string& customer, int64_t tick) const;

 private:
  struct Applied {
    EventTime time;
    int64_t cents;
    bool is_transaction;
    int64_t arrival_tick;  // the clock's tick when it was applied: it shows from the next one
  };
  struct Seen {
    std::tuple<int64_t, int, std::string, int64_t> conflict_key;
    int64_t time_ns;
  };

  ReferenceOptions options_;
  EventParser parser_;
  RunStats stats_;
  std::map<std::pair<std::string, std::string>, Seen> seen_;
  std::map<std::string, std::vector<Applied>> applied_;
  std::vector<std::string> items_;
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> history_;  // (as_of tick, item) by customer
  bool started_ = false;
  int64_t max_ns_ = 0;
  int64_t first_tick_ = 0;  // the clock's tick when the first event arrived (not emitted)
  int64_t tick_ = 0;        // the last tick emitted
};

// The first item that differs between two exports sorted by PK, named by its PK, or "".
std::string first_item_difference(const std::vector<std::string>& engine_items,
                                  const std::vector<std::string>& reference_items);

// The first difference between an engine run and the reference, or "" when they agree:
// the first differing item (named by its PK), then the first differing counter.
std::string first_difference(const RunStats& engine_stats, const std::vector<std::string>& engine_items,
                             const RunStats& reference_stats, const std::vector<std::string>& reference_items);

}  // namespace streamscore
