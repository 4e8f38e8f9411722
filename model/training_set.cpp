#include "model/training_set.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "model/log_replay.hpp"

namespace streamscore {

namespace {

constexpr int64_t kLabelHorizonWindows = kHorizonWindows;  // 30 days after the cut

struct Transaction {
  int64_t ns;
  int64_t cents;
};

// The snapshots read every customer of the shard at a cut: one shard holds them all.
LogReplayOptions one_shard(LogReplayOptions options) {
  options.shards = 1;
  return options;
}

class Builder final : public LogReplay {
 public:
  Builder(const TrainingSetOptions& options, TrainingSet* out)
      : LogReplay(one_shard(options.replay)), options_(options), out_(out) {}

  void finish_log() {
    out_->end_tick = finish();
    const LogReplayCounts n = counts();
    out_->read = n.read;
    out_->accepted = n.accepted;
    out_->duplicates = n.duplicates;
    out_->dead_lettered = n.dead_lettered;
    out_->first_event_ns = n.first_event_ns;
    out_->last_event_ns = n.last_event_ns;
    label();
  }

 private:
  void accept(std::size_t shard, ParsedEvent& e) override {
    if (e.is_transaction) transactions_[e.customer_id].push_back(Transaction{e.time.ns, e.cents});
    LogReplay::accept(shard, e);
  }

  // Advances the shard to `tick`, stopping at every cut on the way for a snapshot.
  // One shard (the default), so its hooks run on one thread and see every customer.
  void advance(std::size_t, int64_t tick) override {
    if (!started_) {  // the clock's start mark: cuts begin strictly after it
      started_ = true;
      next_cut_ = (floor_div(tick, options_.cut_every_windows) + 1) * options_.cut_every_windows;
      shard().advance_to(tick);
      return;
    }
    for (; next_cut_ <= tick; next_cut_ += options_.cut_every_windows) {
      shard().advance_to(next_cut_);
      snapshot(next_cut_);
    }
    shard().advance_to(tick);
  }

  // The active customers' rows, by customer id.
  void snapshot(int64_t cut) {
    const int64_t horizon_start = horizon_start_ns(cut, options_.replay.features.horizon_windows());
    std::vector<const CustomerState*> active;
    for (const CustomerState& c : shard().customers())
      if (c.version != 0 && c.written.last_event.ns >= horizon_start) active.push_back(&c);
    std::sort(active.begin(), active.end(),
              [](const CustomerState* a, const CustomerState* b) { return a->id < b->id; });
    for (const CustomerState* c : active) {
      TrainingRow row;
      row.cut_tick = cut;
      row.customer_id = c->id;
      row.txn_count = c->written.txn_count;
      row.cents = c->written.cents;
      row.last_event_ns = c->written.last_event.ns;
      out_->rows.push_back(std::move(row));
      const std::vector<FeatureValue> values = item_feature_values(*c);
      out_->width = values.size();
      out_->values.insert(out_->values.end(), values.begin(), values.end());
    }
  }

  void label() {
    for (auto& [id, txns] : transactions_)
      std::sort(txns.begin(), txns.end(), [](const Transaction& a, const Transaction& b) { return a.ns < b.ns; });
    // Cuts whose label window is not fully inside the log are dropped.
    const int64_t last_cut = out_->end_tick - kLabelHorizonWindows;
    auto& rows = out_->rows;
    // The rows are in cut order: the dropped ones are the last.
    rows.erase(std::find_if(rows.begin(), rows.end(), [&](const TrainingRow& r) { return r.cut_tick > last_cut; }),
               rows.end());
    out_->values.resize(rows.size() * out_->width);
    for (TrainingRow& r : rows) {
      const auto it = transactions_.find(r.customer_id);
      if (it == transactions_.end()) continue;
      const int64_t from = r.cut_tick * kWindowNanos, to = from + kHorizonNanos;
      auto lo = std::lower_bound(it->second.begin(), it->second.end(), from,
                                 [](const Transaction& t, int64_t ns) { return t.ns < ns; });
      for (; lo != it->second.end() && lo->ns < to; ++lo) r.future_cents += lo->cents;
    }
    for (std::size_t begin = 0; begin < rows.size();) {
      std::size_t end = begin;
      while (end < rows.size() && rows[end].cut_tick == rows[begin].cut_tick) ++end;
      label_cut(begin, end);
      out_->cuts.push_back(rows[begin].cut_tick);
      begin = end;
    }
  }

  void label_cut(std::size_t begin, std::size_t end) {
    auto& rows = out_->rows;
    int64_t threshold = options_.min_amount_cents;
    if (threshold < 0) {
      // The amount of the ceil(n * top_fraction)-th row in descending order.
      std::vector<int64_t> amounts;
      for (std::size_t i = begin; i < end; ++i) amounts.push_back(rows[i].future_cents);
      const std::size_t n = amounts.size();
      std::size_t k = static_cast<std::size_t>(std::ceil(static_cast<double>(n) * options_.top_fraction));
      k = std::clamp<std::size_t>(k, 1, n);
      std::nth_element(amounts.begin(), amounts.begin() + (k - 1), amounts.end(), std::greater<>());
      threshold = std::max<int64_t>(amounts[k - 1], 1);  // a zero amount is never high value
    }
    for (std::size_t i = begin; i < end; ++i) rows[i].label = rows[i].future_cents >= threshold ? 1.f : 0.f;
  }

  const TrainingSetOptions& options_;
  TrainingSet* out_;
  bool started_ = false;
  int64_t next_cut_ = 0;
  std::unordered_map<std::string, std::vector<Transaction>> transactions_;
};

}  // namespace

Status build_training_set(const std::vector<std::string>& files, const TrainingSetOptions& options, TrainingSet* out) {
  if (options.cut_every_windows <= 0)
    return Status::invalid_argument("the cut interval must be a positive number of 5-minute windows");
  *out = TrainingSet{};
  Builder builder(options, out);
  for (const auto& f : files) {
    Status s = builder.feed(f);
    if (!s.is_ok()) return s;
  }
  builder.finish_log();
  return Status::ok();
}

}  // namespace streamscore
