#include "model/training_set.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "io/event_parser.hpp"
#include "io/line_reader.hpp"
#include "state/event_clock.hpp"
#include "state/sequencer.hpp"
#include "state/shard_state.hpp"

namespace streamscore {

namespace {

constexpr int64_t kLabelHorizonWindows = kHorizonWindows;  // 30 days after the cut

struct Transaction {
  int64_t ns;
  int64_t cents;
};

class Builder {
 public:
  Builder(const TrainingSetOptions& options, TrainingSet* out)
      : options_(options),
        out_(out),
        shard_(ShardOptions{options.allowed_lateness_ns}),
        clock_(options.allowed_lateness_ns) {
    int64_t now = options.now_ns;
    if (now == 0)
      now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
    parse_options_.max_event_ns = future_limit(now, options.max_future_skew_ns);
  }

  Status feed(const std::string& path) {
    LineReader reader;
    reader.set_s3(options_.s3);
    Status s = reader.open(path);
    if (!s.is_ok()) return s;
    for (;;) {
      RawBatch batch;
      bool at_end = false;
      if (!(s = reader.next(options_.batch_lines, /*take_partial=*/true, &batch, &at_end)).is_ok()) return s;
      process(batch);
      if (at_end) return Status::ok();
    }
  }

  void finish() {
    TickMark mark;
    uint64_t ticks = 0;
    if (clock_.final_tick(&mark, &ticks)) apply(sequencer_.final_tick(mark).front());
    out_->end_tick = clock_.snapshot().tick;
    label();
  }

 private:
  // The router's sequence for one batch, with a single shard: parse, then the
  // sequencer (probe the dedup set, classify in arrival order), then apply the accepted
  // events with the in-band ticks.
  void process(const RawBatch& batch) {
    events_.clear();
    ParsedEvent event;
    ParseFailure failure;
    for (std::size_t i = 0; i < batch.lines.size(); ++i) {
      ++out_->read;
      if (parser_.parse(batch.line(i), parse_options_, &event, &failure))
        events_.push_back(event);
      else
        ++out_->dead_lettered;
    }
    auto probe = [this](std::size_t, const ProbeRequest& request) {
      ProbeReply reply;
      shard_.probe(request.keys, &reply.found, &reply.fingerprints, &reply.times);
      return reply;
    };
    SequencedBatch sequenced = sequencer_.sequence(events_, /*partitions=*/{}, probe, clock_);
    out_->duplicates += sequenced.duplicates;
    out_->dead_lettered += sequenced.expired.size();
    apply(sequenced.shards.front());
  }

  // As ShardState::apply, with a stop at every cut a tick passes.
  void apply(ShardBatch& batch) {
    std::size_t t = 0;
    for (std::size_t i = 0; i <= batch.events.size(); ++i) {
      for (; t < batch.ticks.size() && batch.ticks[t].position <= i; ++t) advance(batch.ticks[t].tick);
      if (i == batch.events.size()) break;
      accept(batch.events[i]);
    }
  }

  void accept(ParsedEvent& e) {
    ++out_->accepted;
    if (out_->accepted == 1 || e.time.ns < out_->first_event_ns) out_->first_event_ns = e.time.ns;
    if (out_->accepted == 1 || e.time.ns > out_->last_event_ns) out_->last_event_ns = e.time.ns;
    if (e.is_transaction) transactions_[e.customer_id].push_back(Transaction{e.time.ns, e.cents});
    shard_.apply_event(e);
  }

  // Advances the shard to `tick`, stopping at every cut on the way for a snapshot.
  void advance(int64_t tick) {
    if (!started_) {  // the clock's start mark: cuts begin strictly after it
      started_ = true;
      next_cut_ = (floor_div(tick, options_.cut_every_windows) + 1) * options_.cut_every_windows;
      shard_.advance_to(tick);
      return;
    }
    for (; next_cut_ <= tick; next_cut_ += options_.cut_every_windows) {
      shard_.advance_to(next_cut_);
      snapshot(next_cut_);
    }
    shard_.advance_to(tick);
  }

  void snapshot(int64_t cut) {
    const int64_t cut_ns = cut * kWindowNanos;
    const std::size_t before = out_->rows.size();
    for (const CustomerState& c : shard_.customers()) {
      if (c.version == 0 || c.written.last_event.ns < cut_ns - kHorizonNanos) continue;
      TrainingRow row;
      row.cut_tick = cut;
      row.customer_id = c.id;
      row.txn_count = c.written.txn_count;
      row.cents = c.written.cents;
      row.last_event_ns = c.written.last_event.ns;
      row.features = feature_row(row.txn_count, row.cents);
      out_->rows.push_back(std::move(row));
    }
    std::sort(out_->rows.begin() + before, out_->rows.end(),
              [](const TrainingRow& a, const TrainingRow& b) { return a.customer_id < b.customer_id; });
  }

  void label() {
    for (auto& [id, txns] : transactions_)
      std::sort(txns.begin(), txns.end(), [](const Transaction& a, const Transaction& b) { return a.ns < b.ns; });
    // Cuts whose label window is not fully inside the log are dropped.
    const int64_t last_cut = out_->end_tick - kLabelHorizonWindows;
    auto& rows = out_->rows;
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const TrainingRow& r) { return r.cut_tick > last_cut; }),
               rows.end());
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
  ShardState shard_;
  EventClock clock_;
  EventParser parser_;
  Sequencer sequencer_;  // one shard, no range
  ParseOptions parse_options_;
  bool started_ = false;
  int64_t next_cut_ = 0;
  std::unordered_map<std::string, std::vector<Transaction>> transactions_;
  std::vector<ParsedEvent> events_;
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
  builder.finish();
  return Status::ok();
}

}  // namespace streamscore
