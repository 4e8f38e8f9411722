#include "state/shard_state.hpp"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "common/codec.hpp"
#include "state/format.hpp"
#include "state/score_encoding.hpp"

namespace streamscore {

namespace {

// 3: a bucket's latest event in units of its own precision (see put_latest). 2 kept it in
// nanoseconds and is still read; the dedup ids live in dedup records (format 1 carried
// them inline).
constexpr uint8_t kInternalFormat = 3;
constexpr uint8_t kPreviousInternalFormat = 2;
// 4: declared features other than the default set (encode_declared); the default set
// keeps format 3, byte for byte.
constexpr uint8_t kDeclaredInternalFormat = 4;

int64_t day_of(int64_t ns) {
  return floor_div(ns, kDayNanos);
}
constexpr std::size_t kPutChunk = 4096;

EventTime bucket_time(const Bucket& b) {
  return EventTime{b.max_ns, b.max_digits};
}

// The latest event's offset in its window counted in units of its precision (10^(9 -
// digits) ns), with the digits in the low 4 bits: whole seconds take 2 bytes instead of
// the 6 of nanoseconds, and DynamoDB bills an item by the KB. A time finer than its
// digits (never parsed, but kept exactly) is written in nanoseconds, marked 15, then its
// digits.
constexpr uint8_t kNanosMark = 15;

int64_t precision_unit(uint8_t digits) {
  int64_t unit = 1;
  for (int i = digits; i < 9; ++i) unit *= 10;
  return unit;
}

template <class Out>
void put_latest(Out& out, uint64_t offset_ns, uint8_t digits) {
  const uint64_t unit = static_cast<uint64_t>(precision_unit(digits));
  if (digits <= 9 && offset_ns % unit == 0) {
    put_varint(out, (offset_ns / unit) << 4 | digits);
    return;
  }
  put_varint(out, offset_ns << 4 | kNanosMark);
  out.push_back(static_cast<char>(digits));
}

bool read_latest(Decoder& d, uint64_t* offset_ns, uint8_t* digits) {
  uint64_t v = 0;
  if (!d.varint(&v)) return false;
  *digits = static_cast<uint8_t>(v & 0xf);
  if (*digits == kNanosMark) {
    *offset_ns = v >> 4;
    return d.byte(digits);
  }
  *offset_ns = (v >> 4) * static_cast<uint64_t>(precision_unit(*digits));
  return *digits <= 9;
}

void fold_time(CustomerState& c, EventTime t) {
  if (!c.has_entered || c.last_entered < t) c.last_entered = t;
  c.has_entered = true;
}

// The index slot of a customer hash. Not its low bits: the shard is picked by
// `hash % shards`, so inside one shard the low bits are all alike and would pile every
// customer onto a few slots.
std::size_t index_home(uint64_t hash, std::size_t mask) {
  return (hash >> 24) & mask;
}

}  // namespace

// In 128 bits: 2 * cents would overflow int64 long before cents itself does.
int64_t average_cents(int64_t cents, int64_t count) {
  if (count == 0) return 0;
  const __int128 twice = static_cast<__int128>(cents) * 2 + count;
  return static_cast<int64_t>(twice / (static_cast<__int128>(count) * 2));
}

ShardState::ShardState(ShardOptions options)
    : options_(std::move(options)),
      horizon_windows_(options_.features.horizon_windows()),
      plan_(FeaturePlan::make(options_.features)),
      leave_windows_(plan_ ? plan_->windows : std::vector<int64_t>{horizon_windows_}),
      skipped_(plan_ ? plan_->inputs.size() : 0, 0) {}

uint64_t ShardState::skipped_values(std::size_t feature) const {
  if (!plan_ || feature >= plan_->outputs.size()) return 0;
  return skipped_[plan_->tracks[plan_->outputs[feature].track].input];
}

std::size_t ShardState::index_position(const std::string& id, uint64_t hash) const {
  const std::size_t mask = index_.size() - 1;
  std::size_t i = index_home(hash, mask);
  for (; index_[i] != 0; i = (i + 1) & mask) {
    const CustomerState& c = customers_[index_[i] - 1];
    if (c.hash == hash && c.id == id) break;
  }
  return i;
}

const CustomerState* ShardState::find_customer(const std::string& id) const {
  const uint32_t entry = index_[index_position(id, XXH3_64bits(id.data(), id.size()))];
  return entry == 0 ? nullptr : &customers_[entry - 1];
}

void ShardState::grow_index() {
  index_.assign(index_.size() * 2, 0);
  const std::size_t mask = index_.size() - 1;
  for (uint32_t slot = 0; slot < customers_.size(); ++slot) {
    std::size_t i = index_home(customers_[slot].hash, mask);
    while (index_[i] != 0) i = (i + 1) & mask;
    index_[i] = slot + 1;
  }
}

uint32_t ShardState::customer_slot(const std::string& id, uint64_t hash) {
  const std::size_t i = index_position(id, hash);
  if (index_[i] != 0) return index_[i] - 1;
  const auto slot = static_cast<uint32_t>(customers_.size());
  customers_.emplace_back();
  customers_.back().id = id;
  customers_.back().hash = hash;
  if (plan_) {
    customers_.back().declared.plan = plan_.get();
    customers_.back().declared.words.assign(plan_->layout.fixed_words, 0);
    for (std::size_t k = 0; k < plan_->windows.size(); ++k)
      customers_.back().declared.cursor_window(k) = kNoCursorWindow;
  }
  index_[i] = slot + 1;
  if (customers_.size() * 2 > index_.size()) grow_index();
  return slot;
}

void ShardState::probe(const std::vector<DedupKey>& keys, std::vector<uint8_t>* found,
                       std::vector<uint32_t>* fingerprints, std::vector<int64_t>* times) const {
  found->assign(keys.size(), 0);
  fingerprints->assign(keys.size(), 0);
  times->assign(keys.size(), 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i + 8 < keys.size()) dedup_.prefetch(keys[i + 8]);
    if (const DedupEntry* e = dedup_.find(keys[i])) {
      (*found)[i] = 1;
      (*fingerprints)[i] = e->fingerprint;
      (*times)[i] = e->time_ns;
    }
  }
}

void ShardState::apply(std::vector<ParsedEvent>& events, const std::vector<TickMark>& ticks) {
  finish_loading();
  // Most of an event's cost is waiting for memory (its customer, its dedup slot, its
  // last bucket), so those are fetched ahead: the index slot 16 events ahead, then the
  // customer and the dedup slot 8 events ahead, once the index slot is in cache, then
  // the customer's last bucket 4 ahead, once the customer is.
  constexpr std::size_t kIndexAhead = 16, kCustomerAhead = 8, kBucketAhead = 4;
  const std::size_t n = events.size();
  std::size_t t = 0;
  // The ticks before event `i` (all that are left at the end), timed together: with a clock
  // per partition they come in runs, and reading the clock per tick cost as much as most ticks.
  auto timed_advance = [&](std::size_t i) {
    if (t == ticks.size() || ticks[t].position > i) return;
    const auto begin = std::chrono::steady_clock::now();
    for (; t < ticks.size() && ticks[t].position <= i; ++t) advance_to(ticks[t].tick, ticks[t].clock);
    tick_nanos_ += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - begin).count());
  };
  for (std::size_t i = 0; i < n; ++i) {
    timed_advance(i);
    if (i + kIndexAhead < n) prefetch_index(events[i + kIndexAhead]);
    if (i + kCustomerAhead < n) prefetch_customer(events[i + kCustomerAhead]);
    if (i + kBucketAhead < n) prefetch_last_bucket(events[i + kBucketAhead]);
    apply_event(events[i]);
  }
  timed_advance(std::numeric_limits<std::size_t>::max());
}

void ShardState::prefetch_index(const ParsedEvent& e) const {
  __builtin_prefetch(&index_[index_home(e.customer_hash, index_.size() - 1)]);
}

void ShardState::prefetch_customer(const ParsedEvent& e) const {
  const uint32_t entry = index_[index_home(e.customer_hash, index_.size() - 1)];
  if (entry != 0) {
    // Every cache line of it: the event reads its id and buckets and writes its flags.
    const char* c = reinterpret_cast<const char*>(&customers_[entry - 1]);
    for (std::size_t offset = 0; offset < sizeof(CustomerState); offset += 64) __builtin_prefetch(c + offset);
    __builtin_prefetch(c + sizeof(CustomerState) - 1);
  }
  dedup_.prefetch(e.key);
}

// A hint only: the slot may hold another customer (a collision), and then nothing is lost.
void ShardState::prefetch_last_bucket(const ParsedEvent& e) const {
  const uint32_t entry = index_[index_home(e.customer_hash, index_.size() - 1)];
  if (entry == 0) return;
  const CustomerState& c = customers_[entry - 1];
  if (!c.buckets.empty()) __builtin_prefetch(&c.buckets.back(), 1);
  if (c.declared.plan == nullptr) return;
  // Declared features: the cursors (a new bucket moves them) and the last bucket's row.
  const int64_t* words = c.declared.words.data();
  const std::size_t size = c.declared.words.size();
  __builtin_prefetch(words, 1);
  __builtin_prefetch(words + size - 1, 1);
  __builtin_prefetch(words + size - plan_->layout.row_words, 1);
}

// The windows asked for (the features' upper end at a tick, a late event's window) are
// almost always among a customer's last few buckets: a step back from the end touches
// the cache lines the caller reads next, where a binary search over a month of buckets
// missed the cache at each probe. Beyond a few steps back, the binary search.
std::vector<Bucket>::iterator ShardState::first_bucket_at_or_after(CustomerState& c, int64_t window) {
  constexpr int kStepsBack = 4;
  const auto begin = c.buckets.begin() + c.head;
  auto it = c.buckets.end();
  for (int step = 0; step < kStepsBack; ++step) {
    if (it == begin || (it - 1)->window < window) return it;
    --it;
  }
  return std::lower_bound(begin, it, window, [](const Bucket& b, int64_t w) { return b.window < w; });
}

// Loading a million customers schedules millions of ticks: sorted once and appended
// in order, instead of one map lookup each.
void ShardState::finish_loading() {
  if (loaded_schedule_.empty()) return;
  std::sort(loaded_schedule_.begin(), loaded_schedule_.end());
  // Each clock's entries come in tick order: appended after the last one of that clock.
  std::map<TickClock*, decltype(TickClock::calendar)::iterator> hints;
  for (auto [tick, slot] : loaded_schedule_) {
    TickClock& clock = clock_of(customers_[slot].clock);
    if (clock.current_tick != kNoTick) tick = std::max(tick, clock.current_tick + 1);
    auto [at, fresh] = hints.try_emplace(&clock, clock.calendar.end());
    auto& hint = at->second;
    if (fresh || hint->first != tick) hint = clock.calendar.try_emplace(hint, tick);
    hint->second.push_back(slot);
  }
  loaded_schedule_.clear();
  loaded_schedule_.shrink_to_fit();
}

ShardState::TickClock& ShardState::clock_of(int32_t clock) {
  constexpr int64_t kIndexedClocks = 1 << 16;  // partitions of a topic: a few thousand at most
  const int64_t at = static_cast<int64_t>(clock) + 1;
  const bool indexed = at >= 0 && at < kIndexedClocks;
  if (indexed && static_cast<std::size_t>(at) < clock_index_.size() && clock_index_[at] != nullptr)
    return *clock_index_[at];
  auto [it, added] = clocks_.try_emplace(clock);
  if (added) oldest_known_ = false;
  if (indexed) {
    if (static_cast<std::size_t>(at) >= clock_index_.size()) clock_index_.resize(at + 1, nullptr);
    clock_index_[at] = &it->second;
  }
  return it->second;
}

int64_t ShardState::current_tick(int32_t clock) const {
  const auto it = clocks_.find(clock);
  return it == clocks_.end() ? kNoTick : it->second.current_tick;
}

void ShardState::move_customers(ShardState& from, ShardState& to,
                                const std::function<bool(std::string_view customer_id)>& picked) {
  from.finish_loading();
  std::vector<uint32_t> slot_in_to(from.customers_.size(), kNoSlot);
  for (uint32_t slot = 0; slot < from.customers_.size(); ++slot) {
    CustomerState& c = from.customers_[slot];
    if (!picked(c.id)) continue;
    const uint32_t moved = to.customer_slot(c.id, c.hash);
    slot_in_to[slot] = moved;
    to.customers_[moved] = std::move(c);
    if (to.customers_[moved].declared.plan) to.customers_[moved].declared.plan = to.plan_.get();
    if (to.customers_[moved].dirty) to.dirty_.push_back(moved);
  }
  // Each customer's due ticks go to its own clock's calendar in `to`.
  for (const auto& [id, clock] : from.clocks_)
    for (const auto& [tick, slots] : clock.calendar)
      for (uint32_t slot : slots)
        if (slot < slot_in_to.size() && slot_in_to[slot] != kNoSlot) to.schedule(tick, slot_in_to[slot]);
  from.dedup_.for_each([&](const DedupEntry& e) {
    if (slot_in_to[e.slot()] == kNoSlot) return;
    DedupEntry moved = e;
    moved.customer = slot_in_to[e.slot()] | (e.customer & DedupEntry::kUnsaved);
    to.dedup_.upsert(moved);
  });
}

void ShardState::absorb(ShardState& loaded) {
  // The added partitions' clocks come with their customers (as restored from the table).
  for (const auto& [id, clock] : loaded.clocks_)
    if (clock.current_tick != kNoTick) set_current_tick(clock.current_tick, id);
  move_customers(loaded, *this, [](std::string_view) { return true; });
  update_forget_bound();
}

void ShardState::drop_customers(const std::function<bool(std::string_view customer_id)>& dropped,
                                const std::vector<int32_t>& dropped_clocks) {
  finish_loading();
  ShardState kept(options_);
  for (const auto& [id, clock] : clocks_)
    if (std::find(dropped_clocks.begin(), dropped_clocks.end(), id) == dropped_clocks.end())
      kept.set_current_tick(clock.current_tick, id);
  kept.update_forget_bound();
  move_customers(*this, kept, [&](std::string_view id) { return !dropped(id); });
  customers_ = std::move(kept.customers_);
  index_ = std::move(kept.index_);
  clocks_ = std::move(kept.clocks_);
  clock_index_ = std::move(kept.clock_index_);
  dirty_ = std::move(kept.dirty_);
  dedup_ = std::move(kept.dedup_);
  // The customers came through `kept`, whose plan dies with it: they take this one's.
  for (CustomerState& c : customers_)
    if (c.declared.plan) c.declared.plan = plan_.get();
  last_loaded_slot_ = kNoSlot;
  update_forget_bound();
}

void ShardState::schedule(int64_t tick, uint32_t slot) {
  TickClock& clock = clock_of(customers_[slot].clock);
  if (clock.current_tick != kNoTick) tick = std::max(tick, clock.current_tick + 1);
  TickClock::Recent& recent = clock.recent[TickClock::recent_slot(tick)];
  // kNoTick also marks an empty entry: never trusted (a clock that has not ticked).
  if (recent.tick != tick || tick == kNoTick) recent = TickClock::Recent{tick, clock.calendar.try_emplace(tick).first};
  recent.at->second.push_back(slot);
}

// When its bucket windows enter the features and leave each window length, and the next
// tick when a late event changed the sums since its last evaluation.
void ShardState::schedule_buckets(const CustomerState& c, const std::function<void(int64_t tick)>& at) {
  for (std::size_t i = c.head; i < c.buckets.size(); ++i) {
    const int64_t window = c.buckets[i].window;
    if (c.hi == kNoTick || window >= c.hi) at(window + 1);
    if (plan_) {
      for_each_window(windows_held(c, i), [&](std::size_t k) { at(window + 1 + plan_->windows[k]); });
      continue;
    }
    for (int64_t length : leave_windows_) at(window + 1 + length);
  }
  const int64_t now = current_tick(c.clock);
  if (c.has_entered && content_changed(c) && now != kNoTick) at(now + 1);
}

bool ShardState::content_changed(const CustomerState& c) const {
  if (!plan_) return ItemContent{c.sum_count, c.sum_cents, c.last_entered} != c.written;
  const DeclaredState& d = c.declared;
  for (std::size_t f = 0; f < plan_->outputs.size(); ++f)
    if (feature_value(plan_->outputs[f].aggregation, d.track(plan_->outputs[f].track)) != d.written(f)) return true;
  return c.last_entered != c.written.last_event;
}

// A record of the customer from another partition than its clock's (a producer that does
// not partition by customer_id, or a customer stored before per-partition clocks): it
// moves to that partition's clock, its pending ticks with it. Entries left in the old
// calendar evaluate it at most once more there (evaluate skips a tick it has passed).
void ShardState::move_to_clock(CustomerState& c, uint32_t slot, int32_t clock) {
  c.clock = clock;
  c.next_tick_scheduled = kNoTick;
  schedule_buckets(c, [&](int64_t tick) { schedule(tick, slot); });
}

void ShardState::apply_event(ParsedEvent& event) {
  const std::size_t known = customers_.size();
  const uint32_t slot = customer_slot(event.customer_id, event.customer_hash);
  CustomerState& c = customers_[slot];
  if (customers_.size() > known) {
    c.clock = event.clock;
  } else if (c.clock != event.clock) {
    move_to_clock(c, slot, event.clock);
  }
  mark_dirty(c, slot);  // its internal data changes even when its item does not (yet)
  dedup_.upsert(DedupEntry{event.key, event.time.ns, event.fingerprint, slot | DedupEntry::kUnsaved});

  const int64_t window = window_of(event.time.ns);
  auto begin = c.buckets.begin() + c.head;
  auto it = c.buckets.end();
  bool created = false;
  if (begin == c.buckets.end() || c.buckets.back().window < window) {
    c.buckets.push_back(Bucket{window});
    it = c.buckets.end() - 1;
    created = true;
  } else if (c.buckets.back().window != window) {
    it = first_bucket_at_or_after(c, window);
    if (it->window != window) {
      it = c.buckets.insert(it, Bucket{window});
      created = true;
    }
  } else {
    it = c.buckets.end() - 1;
  }

  Bucket& b = *it;
  if (plan_) {
    add_declared(c, slot, static_cast<std::size_t>(it - c.buckets.begin()), created, event);
  } else if (event.is_transaction) {
    ++b.count;
    b.cents += event.cents;
  }
  if (created || bucket_time(b) < event.time) {
    b.max_ns = event.time.ns;
    b.max_digits = event.time.frac_digits;
  }

  const int64_t now = clock_of(c.clock).current_tick;
  const int64_t next_tick = now == kNoTick ? kNoTick : now + 1;
  if (c.hi != kNoTick && window < c.hi) {
    // The window is already part of the features: a late event corrects them now
    // (add_declared did for declared features) and the customer is re-evaluated at the next tick.
    if (!plan_ && event.is_transaction) {
      ++c.sum_count;
      c.sum_cents += event.cents;
    }
    fold_time(c, event.time);
    if (c.next_tick_scheduled != next_tick) {
      schedule(next_tick, slot);
      c.next_tick_scheduled = next_tick;
    }
  } else if (created) {
    schedule(window + 1, slot);  // when the window enters the features
  }
  if (created && !plan_)  // when it leaves each feature's window (add_declared does for declared features)
    for (int64_t length : leave_windows_) schedule(window + 1 + length, slot);
}

void ShardState::advance_to(int64_t tick, int32_t clock) {
  finish_loading();
  if (clock == kEveryClock) {
    for (auto& [id, c] : clocks_) advance_clock(c, tick);
    update_forget_bound();
    return;
  }
  TickClock& advanced = clock_of(clock);
  const int64_t before = advanced.current_tick;
  advance_clock(advanced, tick);
  clock_advanced(before, advanced.current_tick);
}

void ShardState::advance_clock(TickClock& clock, int64_t tick) {
  if (clock.current_tick != kNoTick && tick <= clock.current_tick) return;
  while (!clock.calendar.empty() && clock.calendar.begin()->first <= tick) {
    auto node = clock.calendar.extract(clock.calendar.begin());
    TickClock::Recent& recent = clock.recent[TickClock::recent_slot(node.key())];
    if (recent.tick == node.key()) recent.tick = kNoTick;  // its node is gone
    if (plan_) {
      evaluate_declared_due(node.mapped(), node.key());
      continue;
    }
    for (uint32_t slot : node.mapped()) evaluate(slot, node.key());
  }
  clock.current_tick = tick;
}

// Ids are swept only once every clock forgets them: each is judged by its own
// partition's clock (EventClock), and a clock that has not ticked forgets nothing.
void ShardState::update_forget_bound() {
  oldest_tick_ = std::numeric_limits<int64_t>::max();
  clocks_at_oldest_ = 0;
  for (const auto& [id, c] : clocks_) {
    if (c.current_tick < oldest_tick_) {
      oldest_tick_ = c.current_tick;
      clocks_at_oldest_ = 0;
    }
    if (c.current_tick == oldest_tick_) ++clocks_at_oldest_;
  }
  oldest_known_ = true;
  // kNoTick is the smallest tick: a clock that has not ticked keeps every id.
  if (!clocks_.empty())
    dedup_.set_forget_before(oldest_tick_ == kNoTick
                                 ? std::numeric_limits<int64_t>::min()
                                 : forget_before_ns(oldest_tick_, horizon_windows_, options_.allowed_lateness_ns));
}

// One clock moved from `before` to `after`: the oldest tick only moves when the last
// clock at it leaves it.
void ShardState::clock_advanced(int64_t before, int64_t after) {
  if (oldest_known_ && (before != oldest_tick_ || after == before || --clocks_at_oldest_ > 0)) return;
  update_forget_bound();
}

void ShardState::enter_and_leave(CustomerState& c, int64_t tick) {
  const int64_t old_hi = c.hi;
  const int64_t new_lo = tick - horizon_windows_;
  // Windows from the old `hi` up to the tick enter the features now.
  auto it = old_hi == kNoTick ? c.buckets.begin() + c.head : first_bucket_at_or_after(c, old_hi);
  for (; it != c.buckets.end() && it->window < tick; ++it) {
    fold_time(c, bucket_time(*it));
    if (it->window >= new_lo) {
      c.sum_count += it->count;
      c.sum_cents += it->cents;
    }
  }
  while (c.head < c.buckets.size() && c.buckets[c.head].window < new_lo) {
    const Bucket& b = c.buckets[c.head];
    if (old_hi != kNoTick && b.window < old_hi) {  // it had entered: take it out again
      c.sum_count -= b.count;
      c.sum_cents -= b.cents;
    }
    ++c.head;
  }
  if (c.head > 16 && c.head * 2 > c.buckets.size()) {
    c.buckets.erase(c.buckets.begin(), c.buckets.begin() + c.head);
    c.head = 0;
  }
  c.hi = tick;
}

void ShardState::evaluate(uint32_t slot, int64_t tick) {
  CustomerState& c = customers_[slot];
  if (c.hi != kNoTick && c.hi >= tick) return;  // already evaluated at this tick
  ++evaluations_;
  if (plan_)
    enter_and_leave_declared(c, tick);
  else
    enter_and_leave(c, tick);
  mark_dirty(c, slot);
  if (!c.has_entered) return;
  if (!(plan_ ? take_declared_content(c) : take_content(c))) return;
  c.as_of_tick = tick;
  ++c.version;
  ++logical_writes_;
  // The score belongs to the features it was computed for: new features carry none
  // until a model scores them (with no model active, the item is written without one).
  c.score = 0;
  c.model_version = 0;
}

// The item's new content, unless it is the one written.
bool ShardState::take_content(CustomerState& c) {
  const ItemContent now{c.sum_count, c.sum_cents, c.last_entered};
  if (c.version > 0 && now == c.written) return false;
  c.written = now;
  return true;
}

void ShardState::mark_dirty(CustomerState& c, uint32_t slot) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(slot);
}

void ShardState::render_features(const CustomerState& c, std::string* out) {
  if (c.declared.plan) {
    const FeaturePlan& plan = *c.declared.plan;
    out->push_back('{');
    for (std::size_t f = 0; f < plan.outputs.size(); ++f) {
      if (f > 0) out->push_back(',');
      out->push_back('"');
      out->append(plan.outputs[f].name);  // [a-z][a-z0-9_]*: nothing to escape
      out->append("\":");
      append_feature_value(*out, c.declared.written(f), plan.outputs[f].scale);
    }
    out->push_back('}');
    return;
  }
  const ItemContent& content = c.written;
  out->append("{\"total_txn_30d\":");
  out->append(std::to_string(content.txn_count));
  out->append(",\"total_amount_30d\":");
  append_cents(*out, content.cents);
  out->append(",\"avg_amount_30d\":");
  append_cents(*out, average_cents(content.cents, content.txn_count));
  out->push_back('}');
}

void ShardState::render_item(const CustomerState& c, std::string* out) {
  out->clear();
  // Enough for most items at once (a name is at most 64 bytes, a value 22): one allocation.
  out->reserve(192 + (c.declared.plan ? c.declared.plan->outputs.size() * 90 : 0));
  out->append("{\"PK\":");
  append_json_string(*out, customer_pk(c.id));
  out->append(",\"SK\":\"STATE\",\"features\":");
  render_features(c, out);
  out->append(",\"last_event_time\":\"");
  append_event_time(*out, c.written.last_event);
  out->append("\",\"as_of\":\"");
  append_instant_seconds(*out, c.as_of_tick * kWindowSeconds);
  out->push_back('"');
  if (c.model_version > 0) {
    out->append(",\"score\":");
    append_score(*out, c.score);
    out->append(",\"model_version\":\"v");
    out->append(std::to_string(c.model_version));
    out->push_back('"');
  }
  out->append(",\"version\":");
  out->append(std::to_string(c.version));
  out->push_back('}');
}

void ShardState::encode_internal(const CustomerState& c, std::string* out) const {
  out->clear();
  if (plan_) {
    encode_declared(c, out);
    return;
  }
  // Upper bound of the encoding below, so that appending never reallocates.
  out->reserve(64 + (c.buckets.size() - c.head) * 40);
  out->push_back(static_cast<char>(kInternalFormat));
  put_signed(*out, c.hi);
  put_signed(*out, c.hi);  // format 1 had a separate last-evaluation tick, always equal to hi
  put_signed(*out, c.as_of_tick);
  put_varint(*out, static_cast<uint64_t>(c.written.txn_count));
  put_varint(*out, static_cast<uint64_t>(c.written.cents));
  put_signed(*out, c.written.last_event.ns);
  out->push_back(static_cast<char>(c.written.last_event.frac_digits));
  out->push_back(static_cast<char>(c.has_entered ? 1 : 0));
  put_signed(*out, c.last_entered.ns);
  out->push_back(static_cast<char>(c.last_entered.frac_digits));
  put_varint(*out, c.buckets.size() - c.head);
  int64_t previous = 0;
  for (std::size_t i = c.head; i < c.buckets.size(); ++i) {
    const Bucket& b = c.buckets[i];
    ByteBuffer<40> bucket;  // varints of 64, 32 and 64 bits, then put_latest's: at most 36 bytes
    put_signed(bucket, b.window - previous);
    previous = b.window;
    put_varint(bucket, b.count);
    put_varint(bucket, static_cast<uint64_t>(b.cents));
    put_latest(bucket, static_cast<uint64_t>(b.max_ns - b.window * kWindowNanos), b.max_digits);
    out->append(bucket.view());
  }
  // The partition whose clock it ticks with, so that a takeover or a restart keeps it
  // there. A file's customers store none (their data stays as it always was).
  if (c.clock != kSingleClock) put_signed(*out, c.clock);
}

namespace {

// One id of a dedup record: the customer named unless the id before it was the same one's.
void append_dedup_id(std::string* data, std::string_view customer, bool same_customer, const DedupEntry& e) {
  if (same_customer) {
    put_varint(*data, 0);
  } else {
    put_varint(*data, customer.size() + 1);
    data->append(customer);
  }
  ByteBuffer<32> id;  // 16 bytes of key, a 32-bit and a 64-bit varint: at most 31
  put_fixed64(id, e.key.lo);
  put_fixed64(id, e.key.hi);
  put_varint(id, e.fingerprint);
  put_signed(id, e.time_ns);
  data->append(id.view());
}

}  // namespace

// Record layout, per id: varint(0) when it belongs to the same customer as the id
// before it in the record, else varint(length + 1) and the customer id; then the key
// (2 x fixed64), varint fingerprint, signed varint event time. Ids are grouped by
// customer, so that a load looks each customer up once; their order inside a customer's
// group means nothing (an id is in one place only).
void ShardState::take_unsaved_ids(uint64_t sequence, uint32_t part, std::vector<DedupRecord>* out, int64_t first_day) {
  // Grouped by customer slot with a counting sort, then stably by day with a second one
  // (linear: comparison sorts of the ids were the largest cost of a replay's final flush).
  std::vector<uint32_t> begin(customers_.size() + 1, 0);
  int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
  dedup_.for_each([&](const DedupEntry& e) {
    if (!(e.customer & DedupEntry::kUnsaved)) return;
    const int64_t day = day_of(e.time_ns);
    if (day < first_day) return;
    ++begin[e.slot() + 1];
    first = std::min(first, day);
    last = std::max(last, day);
  });
  for (std::size_t i = 1; i < begin.size(); ++i) begin[i] += begin[i - 1];
  std::vector<DedupEntry> ids(begin.back());
  std::vector<uint32_t> next(begin.begin(), begin.end() - 1);
  dedup_.take_unsaved([&](const DedupEntry& e) {
    if (day_of(e.time_ns) >= first_day) ids[next[e.customer]++] = e;
  });
  if (ids.empty()) return;
  std::vector<uint32_t> day_begin(static_cast<std::size_t>(last - first) + 2, 0);
  for (const DedupEntry& e : ids) ++day_begin[day_of(e.time_ns) - first + 1];
  for (std::size_t i = 1; i < day_begin.size(); ++i) day_begin[i] += day_begin[i - 1];
  std::vector<DedupEntry> by_day(ids.size());
  next.assign(day_begin.begin(), day_begin.end() - 1);
  for (const DedupEntry& e : ids) by_day[next[day_of(e.time_ns) - first]++] = e;
  for (std::size_t d = 0; d + 1 < day_begin.size(); ++d) {
    if (day_begin[d] == day_begin[d + 1]) continue;
    std::string data;
    data.reserve((day_begin[d + 1] - day_begin[d]) * 48);  // an id takes at most ~40 bytes, its customer's aside
    uint32_t last_customer = kNoSlot;
    for (uint32_t i = day_begin[d]; i < day_begin[d + 1]; ++i) {
      const DedupEntry& e = by_day[i];
      append_dedup_id(&data, customers_[e.customer].id, last_customer == e.customer, e);
      last_customer = e.customer;
    }
    out->push_back(DedupRecord{first + static_cast<int64_t>(d), sequence, part, std::move(data)});
  }
}

int64_t ShardState::first_day_kept() const {
  if (clocks_.empty()) return kNoDay;
  int64_t first = std::numeric_limits<int64_t>::max();
  for (const auto& [id, c] : clocks_) {
    if (c.current_tick == kNoTick) return kNoDay;
    first = std::min(first, day_of(forget_before_ns(c.current_tick, horizon_windows_, options_.allowed_lateness_ns)));
  }
  return first;
}

Status split_dedup_record(const DedupRecord& record,
                          const std::function<int32_t(std::string_view customer_id)>& group_of,
                          std::map<int32_t, DedupRecord>* out) {
  std::map<int32_t, std::string> last_customer;  // per group: whose ids its data ends with
  return for_each_dedup_id(record, [&](std::string_view id, const DedupEntry& e) {
    const int32_t group = group_of(id);
    auto [it, fresh] = out->try_emplace(group, DedupRecord{record.day, record.sequence, record.part, std::string()});
    std::string& last = last_customer[group];
    append_dedup_id(&it->second.data, id, !fresh && last == id, e);
    last = std::string(id);
  });
}

Status for_each_dedup_id(const DedupRecord& record,
                         const std::function<void(std::string_view id, const DedupEntry&)>& fn) {
  Decoder d(record.data);
  std::string_view id;
  while (!d.at_end()) {
    uint64_t length = 0, fingerprint = 0;
    DedupEntry e;
    const bool ok_id = d.varint(&length) && (length == 0 ? !id.empty() : d.bytes(length - 1, &id));
    if (!(ok_id && d.fixed64(&e.key.lo) && d.fixed64(&e.key.hi) && d.varint(&fingerprint) &&
          d.signed_varint(&e.time_ns)))
      return Status::corruption("dedup record of day " + std::to_string(record.day) + " is truncated");
    e.fingerprint = static_cast<uint32_t>(fingerprint);
    fn(id, e);
  }
  return Status::ok();
}

void ShardState::load_id(std::string_view id, DedupEntry entry) {
  // Records hold a customer's ids next to each other: look the customer up once.
  if (last_loaded_slot_ == kNoSlot || customers_[last_loaded_slot_].id != id) {
    const std::string key(id);
    last_loaded_slot_ = customer_slot(key, XXH3_64bits(id.data(), id.size()));
  }
  entry.customer = last_loaded_slot_;
  dedup_.upsert(entry);  // a later record of the same id (forgotten, then seen anew) wins
}

Status ShardState::take_changes(const ChangeSink& sink) {
  if (dirty_.empty()) return Status::ok();
  // Sorted so that the store sees the same write sequence on every run.
  std::sort(dirty_.begin(), dirty_.end(),
            [this](uint32_t a, uint32_t b) { return customers_[a].id < customers_[b].id; });
  std::vector<ConditionalPut> puts;
  for (std::size_t start = 0; start < dirty_.size(); start += kPutChunk) {
    const std::size_t end = std::min(dirty_.size(), start + kPutChunk);
    puts.clear();
    puts.reserve(end - start);
    for (std::size_t i = start; i < end; ++i) {
      const CustomerState& c = customers_[dirty_[i]];
      ConditionalPut put;  // version unchanged when only the internal data moved on
      put.record.pk = customer_pk(c.id);
      put.record.version = c.version;
      if (c.version > 0) render_item(c, &put.record.item_json);
      encode_internal(c, &put.record.internal);
      put.expected_version = c.stored_version;
      puts.push_back(std::move(put));
    }
    Status s = sink(puts);
    if (!s.is_ok()) return s;  // the customers stay dirty
    for (std::size_t i = start; i < end; ++i) {
      CustomerState& c = customers_[dirty_[i]];
      c.stored_version = c.version;
      c.dirty = false;
    }
  }
  dirty_.clear();
  return Status::ok();
}

Status ShardState::flush(StateStore& store, FlushStats* stats) {
  return take_changes([&](std::vector<ConditionalPut>& puts) {
    std::vector<VersionShift> shifts;
    uint64_t conflicts = 0;
    WriteSet writes;
    writes.puts = std::move(puts);
    Status s = commit_with_retry(store, &writes, &shifts, &conflicts);
    for (const VersionShift& shift : shifts) rebase(shift);
    if (stats) stats->conflicts += conflicts;
    if (s.is_ok() && stats) stats->items_written += writes.puts.size();
    return s;
  });
}

void ShardState::rebase(const VersionShift& shift) {
  const std::string id(customer_id_of_pk(shift.pk));
  const uint32_t entry = index_[index_position(id, XXH3_64bits(id.data(), id.size()))];
  if (entry == 0) return;
  CustomerState& c = customers_[entry - 1];
  if (c.scored_version == c.version) c.scored_version += shift.delta;  // still the same features
  c.version += shift.delta;
  c.stored_version += shift.delta;
}

void ShardState::items_to_write(std::vector<uint32_t>* slots) const {
  slots->clear();
  for (uint32_t slot : dirty_)
    if (customers_[slot].version > 0) slots->push_back(slot);
  std::sort(slots->begin(), slots->end());
}

void ShardState::set_score(uint32_t slot, float score, int32_t model_version) {
  CustomerState& c = customers_[slot];
  // Every write of a changed item is a new version (contract, section 4). A score
  // changes the item unless it is the first score of features not written yet: a
  // re-score (same features, another model), or the first score of an item already
  // written without one (a model activated after it was written).
  const bool rescore = c.scored_version == c.version && c.model_version != model_version;
  const bool written_unscored = c.scored_version != c.version && c.stored_version == c.version;
  if (rescore || written_unscored) {
    ++c.version;
    ++logical_writes_;
    ++rescores_;
  }
  c.score = score;
  c.model_version = model_version;
  c.scored_version = c.version;
  mark_dirty(c, slot);
}

std::size_t ShardState::mark_stale(int32_t model_version, std::size_t limit) {
  std::size_t stale = 0;
  for (uint32_t slot = 0; slot < customers_.size(); ++slot) {
    CustomerState& c = customers_[slot];
    if (c.version == 0 || c.model_version == model_version) continue;
    ++stale;
    if (!c.dirty && limit > 0) {
      mark_dirty(c, slot);
      --limit;
    }
  }
  return stale;
}

// Formats 2 and 3: the default set's buckets and sums.
Status ShardState::load_default(Decoder& d, uint8_t format, CustomerState& c, const std::string& pk) {
  auto bad = [&](const char* what) { return Status::corruption("item " + pk + ": internal data " + what); };
  uint64_t u = 0, n = 0;
  uint8_t digits = 0, flag = 0;
  int64_t evaluated_at = 0;  // equal to hi (see encode_internal)
  bool ok = d.signed_varint(&c.hi) && d.signed_varint(&evaluated_at) && d.signed_varint(&c.as_of_tick) && d.varint(&u);
  c.written.txn_count = static_cast<int64_t>(u);
  ok = ok && d.varint(&u);
  c.written.cents = static_cast<int64_t>(u);
  ok = ok && d.signed_varint(&c.written.last_event.ns) && d.byte(&digits);
  c.written.last_event.frac_digits = digits;
  ok = ok && d.byte(&flag) && d.signed_varint(&c.last_entered.ns) && d.byte(&digits);
  c.has_entered = flag != 0;
  c.last_entered.frac_digits = digits;
  ok = ok && d.varint(&n);
  if (!ok) return bad("is truncated");
  auto read_bucket_latest = [&](uint64_t* offset, uint8_t* latest_digits) {
    return format == kPreviousInternalFormat ? d.varint(offset) && d.byte(latest_digits)
                                             : read_latest(d, offset, latest_digits);
  };
  int64_t window = 0;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t delta = 0;
    uint64_t count = 0, cents = 0, offset = 0;
    if (!(d.signed_varint(&delta) && d.varint(&count) && d.varint(&cents) && read_bucket_latest(&offset, &digits)))
      return bad("has a truncated bucket");
    window += delta;
    Bucket b{window, static_cast<int64_t>(cents), window * kWindowNanos + static_cast<int64_t>(offset),
             static_cast<uint32_t>(count), digits};
    c.buckets.push_back(b);
    if (c.hi != kNoTick && window < c.hi && window >= c.hi - horizon_windows_) {
      c.sum_count += b.count;
      c.sum_cents += b.cents;
    }
  }
  return Status::ok();
}

Status ShardState::load(const ItemRecord& record, int32_t clock_if_none) {
  const std::string_view kPrefix = kCustomerPrefix;
  auto bad = [&](const char* what) { return Status::corruption("item " + record.pk + ": internal data " + what); };
  if (record.pk.compare(0, kPrefix.size(), kPrefix) != 0) return bad("has a PK without CUSTOMER#");
  Decoder d(record.internal);
  uint8_t format = 0;
  if (!d.byte(&format) ||
      (format != kInternalFormat && format != kPreviousInternalFormat && format != kDeclaredInternalFormat))
    return Status::corruption("item " + record.pk + ": unknown internal format " + std::to_string(format) +
                              " (this build reads formats " + std::to_string(kPreviousInternalFormat) + " to " +
                              std::to_string(kDeclaredInternalFormat) + ")");
  if ((format == kDeclaredInternalFormat) != (plan_ != nullptr))
    return Status::invalid_argument("item " + record.pk + ": its internal data holds " +
                                    (plan_ ? "the default features" : "declared features") + " but " +
                                    (plan_ ? "other features are" : "the default features are") +
                                    " configured; rebuild the state with `streamscore replay`");
  const std::string id(customer_id_of_pk(record.pk));
  const uint32_t slot = customer_slot(id, XXH3_64bits(id.data(), id.size()));
  CustomerState& c = customers_[slot];
  Status s = plan_ ? load_declared(d, c, record.pk) : load_default(d, format, c, record.pk);
  if (!s.is_ok()) return s;
  int64_t clock = clock_if_none;  // absent: a file's customer, or stored before the clocks
  if (!d.at_end() && !d.signed_varint(&clock)) return bad("has a truncated clock");
  if (!d.at_end()) return bad("has trailing bytes");
  c.clock = static_cast<int32_t>(clock);
  c.version = c.stored_version = record.version;
  if (!read_score(record.item_json, &c.score, &c.model_version))
    return Status::corruption("item " + record.pk + ": unreadable score or model_version");
  c.scored_version = c.model_version > 0 ? c.version : 0;
  // A late event applied after the last evaluation shows as sums that differ from
  // the written content: evaluate at the next tick, as the uninterrupted run would.
  schedule_buckets(c, [&](int64_t tick) { loaded_schedule_.emplace_back(tick, slot); });
  return Status::ok();
}

// ---- Declared features other than the default set ----

void DeclaredState::set_written(std::size_t output, const FeatureValue& value) {
  words[plan->layout.written_at + output] = value.present ? value.scaled : 0;
  const uint64_t bit = uint64_t{1} << output;
  const auto present = static_cast<uint64_t>(words[plan->layout.present_at]);
  words[plan->layout.present_at] = static_cast<int64_t>(value.present ? present | bit : present & ~bit);
}

// A bucket is due when it leaves a window length only once it holds something a track of that
// length reads: an event that fills its first cell for a length schedules that leave.
void ShardState::add_declared(CustomerState& c, uint32_t slot, std::size_t bucket, bool created, const ParsedEvent& e) {
  DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  const int64_t window = c.buckets[bucket].window;
  if (created) {
    const std::size_t at = layout.fixed_words + bucket * layout.row_words;
    if (at == d.words.size())  // the newest bucket: most are
      d.words.resize(at + layout.row_words, 0);
    else
      d.words.insert(d.words.begin() + static_cast<std::ptrdiff_t>(at), layout.row_words, 0);
    d.words[at] = window;
    bucket_inserted(c, bucket);
  }
  if (e.inputs.filters == 0) return;  // it counts in no input
  const uint64_t held_before = windows_held(c, bucket);
  add_inputs(c, bucket, e.inputs);
  for_each_window(windows_held(c, bucket) & ~held_before,
                  [&](std::size_t k) { schedule(window + 1 + plan_->windows[k], slot); });
}

// The `windows` entries (a bit each) with a track reading an input that bucket `bucket` holds.
uint64_t ShardState::windows_held(const CustomerState& c, std::size_t bucket) const {
  const int64_t* row = c.declared.row(bucket);
  uint64_t held = 0;
  for (std::size_t i = 0; i < plan_->inputs.size(); ++i)
    if (row[plan_->layout.input_at[i] + cell::n] > 0) held |= plan_->input_windows[i];
  return held;
}

void ShardState::add_inputs(CustomerState& c, std::size_t bucket, const FeatureInputs& in) {
  DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  int64_t* row = d.row(bucket);
  const int64_t window = row[0];
  const bool entered = c.hi != kNoTick && window < c.hi;
  for (std::size_t i = 0; i < plan_->inputs.size(); ++i) {
    const FeaturePlan::Input& input = plan_->inputs[i];
    if (!(in.filters >> input.filter & 1)) continue;
    int64_t value = 0;  // a count's
    if (input.value >= 0) {
      if (!(in.present >> input.value & 1)) {
        ++skipped_[i];
        continue;
      }
      value = in.values[static_cast<std::size_t>(input.value)];
    }
    cell::add(row + layout.input_at[i], layout.input_width[i], value);
    if (!entered) continue;
    // A late event in a window already entered: the tracks holding it are corrected now.
    for (int t : plan_->input_tracks[i])
      if (window >= c.hi - plan_->tracks[t].window) cell::add(d.track(t), layout.input_width[i], value);
  }
}

// As enter_and_leave, per track: windows from the old `hi` up to the tick enter the tracks
// whose window holds them at the tick; those that had entered and fall out of a track's
// window leave it. A track's min or max is taken again from its buckets when a bucket
// holding it leaves (rare for most data; a window's buckets at worst).
void ShardState::enter_and_leave_declared(CustomerState& c, int64_t tick) {
  DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  const int64_t old_hi = c.hi;
  auto bucket = old_hi == kNoTick ? c.buckets.begin() + c.head : first_bucket_at_or_after(c, old_hi);
  for (; bucket != c.buckets.end() && bucket->window < tick; ++bucket) {
    fold_time(c, bucket_time(*bucket));
    const int64_t* row = d.row(static_cast<std::size_t>(bucket - c.buckets.begin()));
    for (std::size_t t = 0; t < plan_->tracks.size(); ++t) {
      const FeaturePlan::Track& track = plan_->tracks[t];
      if (bucket->window >= tick - track.window)
        cell::add(d.track(t), layout.input_width[track.input], row + layout.input_at[track.input]);
    }
  }
  uint64_t stale = 0;  // tracks whose extreme left
  const auto rows = static_cast<int64_t>(c.buckets.size());
  for (std::size_t k = 0; k < plan_->windows.size(); ++k) {
    // Buckets from the cursor up to tick - length leave; those that had entered (before the
    // old hi) were in the tracks of this length. A row starts with its window.
    const int64_t lo = tick - plan_->windows[k];
    if (d.cursor_window(k) >= lo) continue;  // nothing leaves: no row read
    int64_t cursor = d.cursor(k);
    for (; cursor < rows && *d.row(static_cast<std::size_t>(cursor)) < lo; ++cursor) {
      const int64_t* row = d.row(static_cast<std::size_t>(cursor));
      if (old_hi == kNoTick || row[0] >= old_hi) continue;
      for (int t : plan_->window_tracks[k]) {
        const FeaturePlan::Track& track = plan_->tracks[t];
        const int64_t* gone = row + layout.input_at[track.input];
        if (gone[cell::n] == 0) continue;
        int64_t* held = d.track(t);
        held[cell::n] -= gone[cell::n];
        if (layout.input_width[track.input] >= 2) held[cell::sum] -= gone[cell::sum];
        if (track.extremes && held[cell::n] > 0 &&
            (gone[cell::min] == held[cell::min] || gone[cell::max] == held[cell::max]))
          stale |= uint64_t{1} << t;
      }
    }
    d.cursor(k) = cursor;
    d.cursor_window(k) = cursor < rows ? *d.row(static_cast<std::size_t>(cursor)) : kNoCursorWindow;
  }
  c.hi = tick;
  if (stale != 0) rebuild_tracks(c, stale);
  // Below every track's window: the longest window's cursor is where the horizon starts.
  c.head = static_cast<uint32_t>(d.cursor(plan_->windows.size() - 1));
  if (c.head > 16 && c.head * 2 > c.buckets.size()) {
    c.buckets.erase(c.buckets.begin(), c.buckets.begin() + c.head);
    const auto rows_begin = d.words.begin() + static_cast<std::ptrdiff_t>(layout.fixed_words);
    d.words.erase(rows_begin, rows_begin + static_cast<std::ptrdiff_t>(c.head * layout.row_words));
    // The horizon is the longest window: every cursor is at or after head.
    for (std::size_t k = 0; k < plan_->windows.size(); ++k) d.cursor(k) -= c.head;
    c.head = 0;
  }
}

// The customers due at a tick, their state fetched ahead: an evaluation of declared features
// reads a customer, the fixed part of its declared state and the rows of several windows,
// each a cache miss.
void ShardState::evaluate_declared_due(const boost::container::small_vector<uint32_t, 2>& slots, int64_t tick) {
  // Far enough ahead for a miss to be served before it is read (measured on the bench log).
  constexpr std::size_t kCustomerAhead = 16, kStateAhead = 8, kRowsAhead = 4;
  const std::size_t fixed_bytes = plan_->layout.fixed_words * sizeof(int64_t);
  auto prefetch_bytes = [](const void* at, std::size_t bytes) {
    const char* begin = static_cast<const char*>(at);
    for (std::size_t line = 0; line < bytes; line += 64) __builtin_prefetch(begin + line);
    __builtin_prefetch(begin + bytes - 1);
  };
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (i + kCustomerAhead < slots.size())
      prefetch_bytes(&customers_[slots[i + kCustomerAhead]], sizeof(CustomerState));
    if (i + kStateAhead < slots.size()) {
      const CustomerState& ahead = customers_[slots[i + kStateAhead]];
      prefetch_bytes(ahead.declared.words.data(), fixed_bytes);
      if (!ahead.buckets.empty()) __builtin_prefetch(&ahead.buckets.back());
    }
    if (i + kRowsAhead < slots.size()) prefetch_leaving(customers_[slots[i + kRowsAhead]], tick);
    evaluate(slots[i], tick);
  }
}

// The rows that leave a window length at `tick` (and the one after, read to stop) and the
// last bucket's row (the one that may enter): most of an evaluation's remaining cache misses.
void ShardState::prefetch_leaving(const CustomerState& c, int64_t tick) const {
  const DeclaredState& d = c.declared;
  const std::size_t row_bytes = plan_->layout.row_words * sizeof(int64_t);
  for (std::size_t k = 0; k < plan_->windows.size(); ++k) {
    if (d.cursor_window(k) >= tick - plan_->windows[k]) continue;
    const char* row = reinterpret_cast<const char*>(d.row(static_cast<std::size_t>(d.cursor(k))));
    __builtin_prefetch(row);
    __builtin_prefetch(row + row_bytes);
  }
  if (!c.buckets.empty()) __builtin_prefetch(d.row(c.buckets.size() - 1));
}

// The tracks in `tracks` (a bit per track) from their buckets in [hi - window, hi).
void ShardState::rebuild_tracks(CustomerState& c, uint64_t tracks) const {
  DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  for (std::size_t t = 0; t < plan_->tracks.size(); ++t) {
    if (!(tracks >> t & 1)) continue;
    const FeaturePlan::Track& track = plan_->tracks[t];
    const std::size_t width = layout.input_width[track.input];
    int64_t* held = d.track(t);
    std::fill(held, held + width, 0);
    for (auto i = static_cast<std::size_t>(d.cursor(plan_->track_window[t])); i < c.buckets.size(); ++i) {
      const int64_t* row = d.row(i);
      if (row[0] >= c.hi) break;
      cell::add(held, width, row + layout.input_at[track.input]);
    }
  }
}

// Keeps every cursor on the bucket it pointed to, unless the new one is the first inside
// that window now.
void ShardState::bucket_inserted(CustomerState& c, std::size_t at) const {
  DeclaredState& d = c.declared;
  const auto index = static_cast<int64_t>(at);
  for (std::size_t k = 0; k < plan_->windows.size(); ++k) {
    int64_t& cursor = d.cursor(k);
    const bool outside = c.hi != kNoTick && c.buckets[at].window < c.hi - plan_->windows[k];
    if (index < cursor || (index == cursor && outside)) ++cursor;
    if (index == cursor) d.cursor_window(k) = c.buckets[at].window;
  }
}

// Compared in place: most evaluations change one or two of the features.
bool ShardState::take_declared_content(CustomerState& c) {
  DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  int64_t* written = &d.words[layout.written_at];
  uint64_t present = 0;
  bool changed = c.version == 0 || c.last_entered != c.written.last_event;
  for (std::size_t f = 0; f < plan_->outputs.size(); ++f) {
    const FeaturePlan::Output& o = plan_->outputs[f];
    const FeatureValue now = feature_value(o.aggregation, d.track(static_cast<std::size_t>(o.track)));
    const int64_t value = now.present ? now.scaled : 0;
    present |= static_cast<uint64_t>(now.present) << f;
    changed = changed || value != written[f];
    written[f] = value;
  }
  int64_t& was_present = d.words[layout.present_at];
  changed = changed || static_cast<uint64_t>(was_present) != present;
  was_present = static_cast<int64_t>(present);
  c.written.last_event = c.last_entered;
  return changed;
}

// Format 4: the number of inputs a bucket holds (checked against the plan on load), the
// written item's content, then per bucket its window, latest event and each input's cell
// (n, then sum, min and max for an input with a value when n > 0; min and max are 0 when
// no min or max feature reads the input). The tracks are not stored: they follow from the
// buckets and `hi`.
void ShardState::encode_declared(const CustomerState& c, std::string* out) const {
  const DeclaredState& d = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  const std::size_t inputs = plan_->inputs.size();
  // Upper bound of the encoding below (a varint takes at most 10 bytes), so that
  // appending never reallocates.
  out->reserve(96 + plan_->outputs.size() * 11 + (c.buckets.size() - c.head) * (24 + inputs * 40));
  out->push_back(static_cast<char>(kDeclaredInternalFormat));
  put_varint(*out, inputs);
  put_signed(*out, c.hi);
  put_signed(*out, c.as_of_tick);
  put_signed(*out, c.written.last_event.ns);
  out->push_back(static_cast<char>(c.written.last_event.frac_digits));
  out->push_back(static_cast<char>(c.has_entered ? 1 : 0));
  put_signed(*out, c.last_entered.ns);
  out->push_back(static_cast<char>(c.last_entered.frac_digits));
  put_varint(*out, plan_->outputs.size());
  for (std::size_t f = 0; f < plan_->outputs.size(); ++f) {
    const FeatureValue v = d.written(f);
    out->push_back(static_cast<char>(v.present ? 1 : 0));
    if (v.present) put_signed(*out, v.scaled);
  }
  put_varint(*out, c.buckets.size() - c.head);
  int64_t previous = 0;
  for (std::size_t i = c.head; i < c.buckets.size(); ++i) {
    const Bucket& b = c.buckets[i];
    put_signed(*out, b.window - previous);
    previous = b.window;
    put_latest(*out, static_cast<uint64_t>(b.max_ns - b.window * kWindowNanos), b.max_digits);
    const int64_t* row = d.row(i);
    for (std::size_t k = 0; k < inputs; ++k) {
      const int64_t* cell = row + layout.input_at[k];
      put_varint(*out, static_cast<uint64_t>(cell[cell::n]));
      if (cell[cell::n] == 0 || layout.input_width[k] < 2) continue;
      const bool extremes = layout.input_width[k] == 4;
      put_signed(*out, cell[cell::sum]);
      put_signed(*out, extremes ? cell[cell::min] : 0);
      put_signed(*out, extremes ? cell[cell::max] : 0);
    }
  }
  if (c.clock != kSingleClock) put_signed(*out, c.clock);
}

Status ShardState::load_declared(Decoder& d, CustomerState& c, const std::string& pk) {
  auto bad = [&](const std::string& what) { return Status::corruption("item " + pk + ": internal data " + what); };
  DeclaredState& state = c.declared;
  const FeaturePlan::Layout& layout = plan_->layout;
  const std::size_t inputs = plan_->inputs.size();
  uint64_t stored_inputs = 0, features = 0, n = 0;
  uint8_t digits = 0, flag = 0;
  bool ok = d.varint(&stored_inputs) && d.signed_varint(&c.hi) && d.signed_varint(&c.as_of_tick) &&
            d.signed_varint(&c.written.last_event.ns) && d.byte(&digits);
  c.written.last_event.frac_digits = digits;
  ok = ok && d.byte(&flag) && d.signed_varint(&c.last_entered.ns) && d.byte(&digits) && d.varint(&features);
  c.has_entered = flag != 0;
  c.last_entered.frac_digits = digits;
  if (!ok) return bad("is truncated");
  if (stored_inputs != inputs || features != plan_->outputs.size())
    return Status::invalid_argument("item " + pk + ": its internal data was built with other declared features; " +
                                    "rebuild the state with `streamscore replay`");
  for (std::size_t f = 0; f < features; ++f) {
    FeatureValue v;
    if (!d.byte(&flag)) return bad("is truncated");
    v.present = flag != 0;
    if (v.present && !d.signed_varint(&v.scaled)) return bad("is truncated");
    state.set_written(f, v);
  }
  if (!d.varint(&n)) return bad("is truncated");
  int64_t window = 0;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t delta = 0;
    uint64_t offset = 0;
    if (!(d.signed_varint(&delta) && read_latest(d, &offset, &digits))) return bad("has a truncated bucket");
    window += delta;
    c.buckets.push_back(Bucket{window, 0, window * kWindowNanos + static_cast<int64_t>(offset), 0, digits});
    const std::size_t at = state.words.size();
    state.words.resize(at + layout.row_words, 0);
    state.words[at] = window;
    for (std::size_t k = 0; k < inputs; ++k) {
      int64_t* cell = &state.words[at + layout.input_at[k]];
      uint64_t count = 0;
      int64_t sum = 0, min = 0, max = 0;
      if (!d.varint(&count)) return bad("has a truncated bucket");
      cell[cell::n] = static_cast<int64_t>(count);
      if (count == 0 || layout.input_width[k] < 2) continue;
      if (!(d.signed_varint(&sum) && d.signed_varint(&min) && d.signed_varint(&max)))
        return bad("has a truncated bucket");
      cell[cell::sum] = sum;
      if (layout.input_width[k] < 4) continue;
      cell[cell::min] = min;
      cell[cell::max] = max;
    }
  }
  for (std::size_t k = 0; k < plan_->windows.size(); ++k) {
    const int64_t lo = c.hi == kNoTick ? std::numeric_limits<int64_t>::min() : c.hi - plan_->windows[k];
    const auto cursor = std::lower_bound(c.buckets.begin(), c.buckets.end(), lo,
                                         [](const Bucket& b, int64_t w) { return b.window < w; });
    state.cursor(k) = cursor - c.buckets.begin();
    state.cursor_window(k) = cursor == c.buckets.end() ? kNoCursorWindow : cursor->window;
  }
  if (c.hi != kNoTick) rebuild_tracks(c, ~uint64_t{0});
  return Status::ok();
}

}  // namespace streamscore
