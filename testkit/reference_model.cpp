#include "testkit/reference_model.hpp"

#include <algorithm>

#include "state/shard_state.hpp"

namespace streamscore {

ReferenceModel::ReferenceModel(const ReferenceOptions& options) : options_(options) {}

void ReferenceModel::feed_line(std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // not a record
  ParsedEvent event;
  ParseFailure failure;
  ReferenceRecord r;
  if (!parser_.parse(line, ParseOptions{}, &event, &failure)) {  // `future` is decided in feed
    r.valid = false;
    r.reason = failure.reason;
    feed(r);
    return;
  }
  r.customer = std::move(event.customer_id);
  // The parser keeps (customer_id, event_id) as its 128-bit hash and the conflict fields
  // as a 32-bit fingerprint; both are equal exactly when their inputs are (up to the
  // collision odds in docs/semantics.md 4).
  r.event_id = std::to_string(event.key.hi) + ":" + std::to_string(event.key.lo);
  r.conflict_key = {event.fingerprint, 0, std::string(), 0};
  r.time = event.time;
  r.cents = event.cents;
  r.is_transaction = event.is_transaction;
  feed(r);
}

void ReferenceModel::feed(const ReferenceRecord& r) {
  ++stats_.read;
  if (!r.valid) {
    ++stats_.dead_lettered[static_cast<int>(r.reason)];
    return;
  }
  if (r.time.ns > options_.max_event_ns) {
    ++stats_.dead_lettered[static_cast<int>(Reason::future)];
    return;
  }
  if (started_ && r.time.ns < tick_ * kWindowNanos - kHorizonNanos) {
    ++stats_.dead_lettered[static_cast<int>(Reason::expired)];
    return;
  }
  // An id is remembered while its event is inside the horizon plus the lateness
  // behind the current tick (spec section 2).
  const auto key = std::make_pair(r.customer, r.event_id);
  auto it = seen_.find(key);
  if (it != seen_.end() &&
      (!started_ || it->second.time_ns >= tick_ * kWindowNanos - kHorizonNanos - options_.allowed_lateness_ns)) {
    ++stats_.duplicates;
    if (it->second.conflict_key != r.conflict_key) ++stats_.conflicting_duplicates;
    return;
  }
  seen_[key] = Seen{r.conflict_key, r.time.ns};
  ++stats_.accepted;
  if (!started_) {
    started_ = true;
    max_ns_ = r.time.ns;
    first_tick_ = tick_ = floor_div(max_ns_ - options_.allowed_lateness_ns, kWindowNanos);
  }
  applied_[r.customer].push_back(Applied{r.time, r.cents, r.is_transaction, tick_});
  if (r.time.ns > max_ns_) {  // the watermark moves: every 5-minute boundary it passes ticks
    max_ns_ = r.time.ns;
    tick_ = std::max(tick_, floor_div(max_ns_ - options_.allowed_lateness_ns, kWindowNanos));
  }
}

void ReferenceModel::finish() {
  if (!started_) return;
  const int64_t last_tick = std::max(tick_, floor_div(max_ns_, kWindowNanos) + 1);  // final tick
  stats_.ticks = static_cast<uint64_t>(last_tick - first_tick_);
  // Every tick in (first_tick_, last_tick] is evaluated for every customer, except that
  // ticks at which nothing of the customer can change are skipped: its content at tick k
  // (events applied before k with event_time < k, transactions among them in [k - 30 d, k))
  // only changes where an event starts to count (max(arrival + 1, own window + 1)) or a
  // transaction leaves the horizon (own window + 1 + 30 days).
  for (const auto& [customer, events] : applied_) {
    std::vector<int64_t> candidates;
    for (const Applied& e : events) {
      const int64_t w = window_of(e.time.ns);
      candidates.push_back(std::max(e.arrival_tick + 1, w + 1));
      if (e.is_transaction) candidates.push_back(w + 1 + kHorizonWindows);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    CustomerState c;
    c.id = customer;
    for (int64_t k : candidates) {
      if (k <= first_tick_ || k > last_tick) continue;
      const int64_t T = k * kWindowNanos;
      ItemContent content;
      bool any = false;
      for (const Applied& e : events) {  // brute force: the whole history at every tick
        if (e.arrival_tick >= k || e.time.ns >= T) continue;
        if (!any || content.last_event < e.time) content.last_event = e.time;
        any = true;
        if (e.is_transaction && e.time.ns >= T - kHorizonNanos) {
          ++content.txn_count;
          content.cents += e.cents;
        }
      }
      if (!any || (c.version > 0 && content == c.written)) continue;
      c.written = content;
      c.as_of_tick = k;
      ++c.version;
      ++stats_.logical_writes;
      if (options_.keep_history) {
        std::string version;
        ShardState::render_item(c, &version);
        history_[customer].emplace_back(k, std::move(version));
      }
    }
    if (c.version == 0) continue;
    ++stats_.customers;
    std::string line;
    ShardState::render_item(c, &line);
    items_.push_back(std::move(line));
  }
  // applied_ is sorted by customer id, so items_ by PK ("CUSTOMER#" + id).
}

std::vector<std::string> ReferenceModel::items() const {
  return items_;
}

std::string ReferenceModel::item_at(const std::string& customer, int64_t tick) const {
  const auto it = history_.find(customer);
  if (it == history_.end()) return "";
  std::string item;
  for (const auto& [as_of, version] : it->second)
    if (as_of <= tick) item = version;
  return item;
}

namespace {

std::string pk_of(const std::string& item) {
  const auto begin = item.find("\"PK\":\"");
  if (begin == std::string::npos) return item.substr(0, 40);
  const auto end = item.find('"', begin + 6);
  return item.substr(begin + 6, end - begin - 6);
}

}  // namespace

std::string first_item_difference(const std::vector<std::string>& got_items,
                                  const std::vector<std::string>& want_items) {
  for (std::size_t i = 0, j = 0; i < got_items.size() || j < want_items.size();) {
    if (i < got_items.size() && j < want_items.size() && got_items[i] == want_items[j]) {
      ++i, ++j;
    } else if (j == want_items.size() || (i < got_items.size() && pk_of(got_items[i]) < pk_of(want_items[j]))) {
      return "item " + pk_of(got_items[i]) + ": exported but not in the reference: " + got_items[i];
    } else if (i == got_items.size() || pk_of(want_items[j]) < pk_of(got_items[i])) {
      return "item " + pk_of(want_items[j]) + ": missing from the export; reference: " + want_items[j];
    } else {
      return "item " + pk_of(got_items[i]) + ": engine " + got_items[i] + " != reference " + want_items[j];
    }
  }
  return "";
}

std::string first_difference(const RunStats& got, const std::vector<std::string>& got_items, const RunStats& want,
                             const std::vector<std::string>& want_items) {
  // The first differing item first (it names what was lost or double counted), then the
  // first differing counter (a lost malformed record shows only there).
  const std::string item = first_item_difference(got_items, want_items);
  std::string counter;
  auto differ = [&](const std::string& name, uint64_t g, uint64_t w) {
    if (counter.empty() && g != w)
      counter = "counter " + name + ": engine " + std::to_string(g) + ", reference " + std::to_string(w);
  };
  if (!got.balanced())
    counter = "counters do not balance: read " + std::to_string(got.read) + " != accepted " +
              std::to_string(got.accepted) + " + duplicates " + std::to_string(got.duplicates) + " + dead-lettered " +
              std::to_string(got.dead_lettered_total()) + " + out-of-range " + std::to_string(got.out_of_range);
  differ("read", got.read, want.read);
  differ("accepted", got.accepted, want.accepted);
  differ("duplicates", got.duplicates, want.duplicates);
  differ("conflicting_duplicates", got.conflicting_duplicates, want.conflicting_duplicates);
  for (int r = 0; r < kReasonCount; ++r)
    differ(std::string("dead_lettered.").append(reason_name(static_cast<Reason>(r))), got.dead_lettered[r],
           want.dead_lettered[r]);
  differ("ticks", got.ticks, want.ticks);
  differ("customers", got.customers, want.customers);
  differ("item versions", got.logical_writes, want.logical_writes);
  if (item.empty()) return counter;
  return counter.empty() ? item : item + "; " + counter;
}

}  // namespace streamscore
