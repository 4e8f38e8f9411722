// The state one shard owns: its customers' 5-minute buckets, running 30-day sums,
// last written items, a calendar of ticks at which some customer may change, and the
// dedup set. Pure logic, no actors: the shard actor drives it, tests use it directly.
//
// Per-tick work is proportional to the customers that change: a customer is only
// evaluated at ticks found in the calendar, which holds for every bucket the tick it
// enters the features (window end) and the tick it leaves them (window end + 30 days).
// A customer ticks with the clock of its source partition (TickMark::clock): each
// clock has its own calendar and current tick.
#pragma once

#include <boost/container/small_vector.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "state/dedup_table.hpp"
#include "state/event.hpp"
#include "state/feature_plan.hpp"
#include "state/feature_set.hpp"
#include "state/store.hpp"

namespace streamscore {

class Decoder;

constexpr int64_t kNoTick = std::numeric_limits<int64_t>::min();

// One customer's events in one 5-minute window.
struct Bucket {
  int64_t window = 0;
  int64_t cents = 0;   // sum over transactions
  int64_t max_ns = 0;  // latest event of any type
  uint32_t count = 0;  // transactions
  uint8_t max_digits = 0;
};

// What an item shows, apart from as_of and version.
struct ItemContent {
  int64_t txn_count = 0;
  int64_t cents = 0;
  EventTime last_event;
  friend bool operator==(const ItemContent& a, const ItemContent& b) {
    return a.txn_count == b.txn_count && a.cents == b.cents && a.last_event == b.last_event;
  }
  friend bool operator!=(const ItemContent& a, const ItemContent& b) { return !(a == b); }
};

// A customer's state for declared features other than the default set (the default set
// keeps it in Bucket and the sums below), laid out as plan->layout says: per window length
// a cursor, the index in `buckets` of the first bucket with window >= hi - length (a tick
// finds the buckets leaving each window without a search), and that bucket's window
// (kNoCursorWindow past the last bucket: a tick tells whether anything leaves without
// reading a row), the tracks' cells (the entered windows in [hi - window, hi)), the written
// features and a bit per written feature that is not null, then a row per bucket of
// `buckets` (head included): its window and its inputs' cells. `plan` is the owning
// ShardState's: a customer moved to another state takes that one's.
constexpr int64_t kNoCursorWindow = std::numeric_limits<int64_t>::max();

struct DeclaredState {
  const FeaturePlan* plan = nullptr;  // null: the default set
  std::vector<int64_t> words;

  int64_t* row(std::size_t bucket) { return &words[plan->layout.fixed_words + bucket * plan->layout.row_words]; }
  const int64_t* row(std::size_t bucket) const {
    return &words[plan->layout.fixed_words + bucket * plan->layout.row_words];
  }
  int64_t* track(std::size_t t) { return &words[plan->layout.track_at[t]]; }
  const int64_t* track(std::size_t t) const { return &words[plan->layout.track_at[t]]; }
  int64_t& cursor(std::size_t k) { return words[plan->layout.cursors_at + k]; }
  int64_t cursor(std::size_t k) const { return words[plan->layout.cursors_at + k]; }
  int64_t& cursor_window(std::size_t k) { return words[plan->layout.cursor_windows_at + k]; }
  int64_t cursor_window(std::size_t k) const { return words[plan->layout.cursor_windows_at + k]; }
  // The features of the last written version, by output.
  FeatureValue written(std::size_t output) const {
    return FeatureValue{words[plan->layout.written_at + output],
                        (static_cast<uint64_t>(words[plan->layout.present_at]) >> output & 1) != 0};
  }
  void set_written(std::size_t output, const FeatureValue& value);
};

struct CustomerState {
  std::string id;
  uint64_t hash = 0;            // XXH3-64 of id (also picks the shard)
  std::vector<Bucket> buckets;  // buckets[head..] sorted by window
  uint32_t head = 0;
  int64_t hi = kNoTick;   // windows < hi have entered the running sums
  int64_t sum_count = 0;  // over entered windows inside the 30-day horizon
  int64_t sum_cents = 0;
  EventTime last_entered;  // latest event among entered windows
  bool has_entered = false;
  ItemContent written;  // content of the last written version
  int64_t as_of_tick = kNoTick;
  int64_t version = 0;         // logical writes so far
  int64_t stored_version = 0;  // version the store holds (the optimistic-lock condition)
  int64_t next_tick_scheduled = kNoTick;
  int32_t clock = kSingleClock;  // the clock it ticks with: its source partition
  bool dirty = false;            // item or internal data changed since the last flush
  // The model's output for the item (model/): shown in the item when model_version > 0.
  // Always the score of the features `written` holds: a change of them drops it.
  float score = 0;
  int32_t model_version = 0;   // 0: no score
  int64_t scored_version = 0;  // the `version` whose features `score` belongs to
  DeclaredState declared;      // declared features only (not the default set)
};

struct ShardOptions {
  int64_t allowed_lateness_ns = 10LL * 60 * kNanosPerSecond;
  // The features computed; their longest window is the horizon of expiry and dedup.
  FeatureSet features = FeatureSet::defaults();
};

struct FlushStats {
  uint64_t items_written = 0;
  uint64_t conflicts = 0;  // conditional puts retried because another writer moved the version
};

// avg_amount_30d in cents: rounded to the nearest cent, halves away from zero; 0 when
// there is no transaction. The model's features use it too (model/features.hpp).
int64_t average_cents(int64_t cents, int64_t count);

// Receives the puts of changed customers, a chunk at a time, in PK order. It may move
// their versions (a conflict retry) after calling ShardState::rebase for each move.
using ChangeSink = std::function<Status(std::vector<ConditionalPut>& puts)>;

// Decodes the ids of a dedup record written by take_unsaved_ids.
Status for_each_dedup_id(const DedupRecord& record,
                         const std::function<void(std::string_view id, const DedupEntry&)>& fn);
// Splits a record into one per group of its customers (`group_of` a customer_id: a
// shared table's source partitions), each with the record's day, sequence and part.
Status split_dedup_record(const DedupRecord& record,
                          const std::function<int32_t(std::string_view customer_id)>& group_of,
                          std::map<int32_t, DedupRecord>* out);

class ShardState {
 public:
  explicit ShardState(ShardOptions options);
  // Not copyable: clock_index_ points into clocks_ (moving keeps the map's nodes).
  ShardState(const ShardState&) = delete;
  ShardState& operator=(const ShardState&) = delete;
  ShardState(ShardState&&) = default;
  ShardState& operator=(ShardState&&) = default;

  // For each key: whether this shard has seen it, and the fingerprint recorded.
  void probe(const std::vector<DedupKey>& keys, std::vector<uint8_t>* found, std::vector<uint32_t>* fingerprints,
             std::vector<int64_t>* times) const;

  // Applies accepted events and in-band ticks in order.
  void apply(std::vector<ParsedEvent>& events, const std::vector<TickMark>& ticks);
  void apply_event(ParsedEvent& event);
  // Moves the customers of clock `clock` (every clock: kEveryClock) to `tick`.
  void advance_to(int64_t tick, int32_t clock = kSingleClock);

  // Hands every changed customer's item (public JSON + internal data, as a put
  // conditional on the version the store holds) to `sink`, then counts those as
  // stored. On a sink error the remaining customers stay changed.
  Status take_changes(const ChangeSink& sink);
  // take_changes straight into `store`, retrying conflicts from the fresh version.
  Status flush(StateStore& store, FlushStats* stats);
  // Another writer wrote `shift.delta` versions of this customer in between.
  void rebase(const VersionShift& shift);
  bool has_dirty() const { return !dirty_.empty(); }

  // Scoring (the model actor computes the scores): the customers with an item among
  // those the next flush writes, in slot order.
  void items_to_write(std::vector<uint32_t>* slots) const;
  // Gives a customer's item the score of its current features by model `model_version`
  // (> 0). A score by another model for features that were already scored is a new
  // version of the item (a re-score, counted in rescores()).
  void set_score(uint32_t slot, float score, int32_t model_version);
  // Background re-scoring after a model swap: marks up to `limit` items whose score is
  // not by `model_version` for the next flush. Returns the number of such items.
  std::size_t mark_stale(int32_t model_version, std::size_t limit);
  uint64_t rescores() const { return rescores_; }

  // Rebuilds a customer from a stored item (state continuation after a restart).
  // Call finish_loading() after the last one (apply and advance_to do it otherwise).
  // `clock_if_none`: the clock of a customer stored without one (before the clocks
  // were per partition).
  Status load(const ItemRecord& record, int32_t clock_if_none = kSingleClock);
  void finish_loading();
  // The dedup ids seen since the last call, as records of one day each; those of days
  // before `first_day` are taken but left out (a bulk load's ids that left the horizon:
  // the commit that ends it would forget them).
  void take_unsaved_ids(uint64_t sequence, uint32_t part, std::vector<DedupRecord>* out, int64_t first_day = kNoDay);
  // The first day whose ids are inside the horizon (plus lateness) of every clock, as the
  // engine's commits forget them; kNoDay while a clock has not ticked.
  int64_t first_day_kept() const;
  // Restores one persisted id of customer `id` (after its item was loaded).
  void load_id(std::string_view id, DedupEntry entry);
  void set_current_tick(int64_t tick, int32_t clock = kSingleClock) {
    clock_of(clock).current_tick = tick;
    oldest_known_ = false;
  }

  // Cooperative rebalancing (semantics.md, section 21): the customers of the partitions
  // that stay are kept as they are. `absorb` takes every customer of `loaded` (fresh from
  // the store: added partitions) with its ids and due ticks, and the ticks of its clocks;
  // `drop_customers` forgets those `dropped` picks and the clocks `dropped_clocks` names
  // (revoked partitions, just checkpointed) and keeps the others, changes not yet written
  // included.
  void absorb(ShardState& loaded);
  void drop_customers(const std::function<bool(std::string_view customer_id)>& dropped,
                      const std::vector<int32_t>& dropped_clocks = {});

  std::size_t customer_count() const { return customers_.size(); }
  std::size_t dedup_size() const { return dedup_.size(); }
  uint64_t logical_writes() const { return logical_writes_; }
  // Wall time spent in the ticks of apply() (evaluating the customers due), in total.
  uint64_t tick_nanos() const { return tick_nanos_; }
  uint64_t evaluations() const { return evaluations_; }  // customer evaluations at ticks
  int64_t current_tick(int32_t clock = kSingleClock) const;
  // Accepted events feature `feature` skipped: its field absent or not a number within bounds.
  uint64_t skipped_values(std::size_t feature) const;
  const CustomerState* find_customer(const std::string& id) const;
  // Read-only view of every customer (training snapshots at cut ticks).
  const std::vector<CustomerState>& customers() const { return customers_; }

  // The item's "features" object, as render_item writes it.
  static void render_features(const CustomerState& c, std::string* out);
  // The public item of a customer exactly as export prints it. `"version":N` stays the
  // last field (commit_with_retry moves it in place).
  static void render_item(const CustomerState& c, std::string* out);

 private:
  // Index position of `id`, or of the empty slot where it would go.
  std::size_t index_position(const std::string& id, uint64_t hash) const;
  uint32_t customer_slot(const std::string& id, uint64_t hash);
  static std::vector<Bucket>::iterator first_bucket_at_or_after(CustomerState& c, int64_t window);
  void grow_index();
  struct TickClock {
    // The slots due at each tick. With a clock per partition most ticks of a calendar
    // hold one or two customers: kept in the map's node, not in an allocation of their own.
    std::map<int64_t, boost::container::small_vector<uint32_t, 2>> calendar;
    // The calendar entries of ticks scheduled lately, by tick modulo a prime: the events
    // of a few adjacent windows schedule the same ticks (each window's entry and leaves,
    // at offsets that differ modulo 61), a search each. An entry is dropped when its tick
    // is reached (its node leaves the calendar).
    struct Recent {
      int64_t tick = kNoTick;
      decltype(calendar)::iterator at;
    };
    static constexpr uint64_t kRecent = 61;
    static std::size_t recent_slot(int64_t tick) { return static_cast<uint64_t>(tick) % kRecent; }
    std::array<Recent, kRecent> recent;
    int64_t current_tick = kNoTick;
  };
  TickClock& clock_of(int32_t clock);
  void advance_clock(TickClock& clock, int64_t tick);
  void update_forget_bound();
  void clock_advanced(int64_t before, int64_t after);
  void schedule_buckets(const CustomerState& c, const std::function<void(int64_t tick)>& at);
  void move_to_clock(CustomerState& c, uint32_t slot, int32_t clock);
  void schedule(int64_t tick, uint32_t slot);
  void evaluate(uint32_t slot, int64_t tick);
  void mark_dirty(CustomerState& c, uint32_t slot);
  void prefetch_index(const ParsedEvent& e) const;
  void prefetch_customer(const ParsedEvent& e) const;
  void prefetch_last_bucket(const ParsedEvent& e) const;
  void enter_and_leave(CustomerState& c, int64_t tick);
  bool take_content(CustomerState& c);
  // Declared features other than the default set.
  void add_declared(CustomerState& c, uint32_t slot, std::size_t bucket, bool created, const ParsedEvent& e);
  void add_inputs(CustomerState& c, std::size_t bucket, const FeatureInputs& in);
  uint64_t windows_held(const CustomerState& c, std::size_t bucket) const;
  // Calls fn(k) for each bit k set in `windows`.
  template <class Fn>
  static void for_each_window(uint64_t windows, Fn fn) {
    for (; windows != 0; windows &= windows - 1) fn(static_cast<std::size_t>(__builtin_ctzll(windows)));
  }
  void enter_and_leave_declared(CustomerState& c, int64_t tick);
  void rebuild_tracks(CustomerState& c, uint64_t tracks) const;
  void evaluate_declared_due(const boost::container::small_vector<uint32_t, 2>& slots, int64_t tick);
  void prefetch_leaving(const CustomerState& c, int64_t tick) const;
  void bucket_inserted(CustomerState& c, std::size_t at) const;
  bool take_declared_content(CustomerState& c);
  bool content_changed(const CustomerState& c) const;
  void encode_declared(const CustomerState& c, std::string* out) const;
  Status load_declared(Decoder& d, CustomerState& c, const std::string& pk);
  Status load_default(Decoder& d, uint8_t format, CustomerState& c, const std::string& pk);
  void encode_internal(const CustomerState& c, std::string* out) const;
  // Moves the customers `picked` chooses from `from` into `to` (new slots there), with
  // their dedup ids, their due ticks and their unwritten changes.
  static void move_customers(ShardState& from, ShardState& to,
                             const std::function<bool(std::string_view customer_id)>& picked);

  ShardOptions options_;
  int64_t horizon_windows_;                  // options_.features.horizon_windows()
  std::shared_ptr<const FeaturePlan> plan_;  // null: the default set
  std::vector<int64_t> leave_windows_;       // a bucket leaves a feature this many ticks after it entered
  std::vector<uint64_t> skipped_;            // by plan input
  std::vector<CustomerState> customers_;
  // Open-addressing index by customer hash: slot + 1, 0 = empty. Cheaper than a
  // string-keyed map on the hottest path (one lookup per event).
  std::vector<uint32_t> index_ = std::vector<uint32_t>(1024, 0);
  std::map<int32_t, TickClock> clocks_;  // by partition (kSingleClock: one for a file)
  // clocks_ by partition + 1 (kSingleClock at 0), filled as they are looked up: a map
  // lookup per scheduled tick and per event cost more than the ticks themselves.
  std::vector<TickClock*> clock_index_;
  // The oldest tick of any clock and how many clocks are at it, kept as one clock
  // advances: with a clock per partition, scanning them all at every tick cost more than
  // the ticks. Not known after a clock is added or set (update_forget_bound scans then).
  int64_t oldest_tick_ = kNoTick;
  std::size_t clocks_at_oldest_ = 0;
  bool oldest_known_ = false;
  std::vector<std::pair<int64_t, uint32_t>> loaded_schedule_;  // (tick, slot) until finish_loading
  static constexpr uint32_t kNoSlot = std::numeric_limits<uint32_t>::max();
  uint32_t last_loaded_slot_ = kNoSlot;
  std::vector<uint32_t> dirty_;
  DedupTable dedup_;
  uint64_t logical_writes_ = 0;
  uint64_t tick_nanos_ = 0;
  uint64_t evaluations_ = 0;
  uint64_t rescores_ = 0;
};

}  // namespace streamscore
