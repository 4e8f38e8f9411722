// Declared features (issue 20): the engine computes any FeatureSet exactly. A brute-force
// reference recomputes every feature of every customer at every tick from the list of
// events the engine accepted (dedup, lateness and expiry are the engine's, tested
// elsewhere), with field values rounded from the generated numbers by its own integer
// arithmetic; random logs with random definitions. Then the engine end to end: 1 vs 8
// shards, a restart mid-log, and the default set declared explicitly.
#define BOOST_TEST_MODULE declared_features
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "engine_support.hpp"
#include "io/event_parser.hpp"
#include "model/log_replay.hpp"
#include "state/format.hpp"
#include "state/store.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr int64_t kMinute = 60 * kNanosPerSecond;
constexpr int64_t kLateness = 10 * kMinute;
constexpr int64_t kDay = 24 * 60 * kMinute;
constexpr int64_t kBase = 1735689600LL * kNanosPerSecond;  // 2025-01-01T00:00:00Z
const std::vector<std::string> kTypes = {"transaction", "login", "refund", "Transaction"};
const std::vector<std::string> kFields = {"amount", "items", "risk"};

// A field's value in a record: a decimal number m * 10^-decimals, or something that is not one.
struct FieldValue {
  enum Kind { absent, number, huge, string, null, object, twice } kind = absent;
  int64_t mantissa = 0;
  int decimals = 0;
  bool exponent_form = false;
};

struct Record {
  std::string customer, id, type;
  int64_t ns = 0;
  int frac_digits = 0;
  std::map<std::string, FieldValue> fields;
};

std::string number_text(const FieldValue& v) {
  const bool negative = v.mantissa < 0;
  const std::string digits = std::to_string(negative ? -v.mantissa : v.mantissa);
  std::string text = negative ? "-" : "";
  if (v.exponent_form) return text + digits + "e-" + std::to_string(v.decimals);
  if (v.decimals == 0) return text + digits;
  const int zeros = std::max(0, v.decimals + 1 - static_cast<int>(digits.size()));
  const std::string padded = std::string(static_cast<std::size_t>(zeros), '0') + digits;
  return text + padded.substr(0, padded.size() - v.decimals) + "." + padded.substr(padded.size() - v.decimals);
}

std::string value_text(const std::string& name, const FieldValue& v) {
  const std::string key = "\"" + name + "\":";
  switch (v.kind) {
    case FieldValue::number:
      return key + number_text(v);
    case FieldValue::huge:
      return key + "1e30";
    case FieldValue::string:
      return key + "\"" + number_text(v) + "\"";
    case FieldValue::null:
      return key + "null";
    case FieldValue::object:
      return key + "{\"v\":1}";
    case FieldValue::twice:
      return key + "1," + key + "2";
    case FieldValue::absent:
      break;
  }
  return "";
}

std::string line_of(const Record& r) {
  std::string time;
  append_event_time(time, EventTime{r.ns, static_cast<uint8_t>(r.frac_digits)});
  std::string line = "{\"event_id\":\"" + r.id + "\",\"customer_id\":\"" + r.customer + "\",\"event_time\":\"" + time +
                     "\",\"event_type\":\"" + r.type + "\"";
  for (const auto& [name, v] : r.fields)
    if (v.kind != FieldValue::absent) line += "," + value_text(name, v);
  return line + "}";
}

// The value rounded half away from zero to `scale` decimals, or none (not a number, out of bounds).
std::optional<int64_t> scaled(const FieldValue& v, int scale) {
  if (v.kind != FieldValue::number) return std::nullopt;
  const __int128 magnitude = v.mantissa < 0 ? -static_cast<__int128>(v.mantissa) : v.mantissa;
  __int128 q = magnitude;
  if (scale >= v.decimals) {
    for (int i = v.decimals; i < scale; ++i) q *= 10;
  } else {
    __int128 unit = 1;
    for (int i = scale; i < v.decimals; ++i) unit *= 10;
    q = magnitude / unit + (magnitude % unit * 2 >= unit ? 1 : 0);
  }
  if (q > kMaxScaledValue) return std::nullopt;
  return static_cast<int64_t>(v.mantissa < 0 ? -q : q);
}

class LogMaker {
 public:
  explicit LogMaker(uint64_t seed) : rng_(seed) {}

  FeatureSet features() {
    const std::vector<int64_t> windows = {1, 2, 3, 12, 36, 288, 2016, 8640, 25920};
    std::vector<FeatureSpec> specs;
    const int n = 1 + static_cast<int>(rng_() % 6);
    for (int i = 0; i < n; ++i) {
      FeatureSpec spec;
      spec.name = "f" + std::to_string(i);
      spec.aggregation = static_cast<Aggregation>(rng_() % 5);
      for (const std::string& type : kTypes)
        if (rng_() % 3 == 0) spec.event_types.push_back(type);
      spec.field = kFields[rng_() % kFields.size()];
      spec.window = rng_() % 4 == 0 ? 1 + static_cast<int64_t>(rng_() % kMaxFeatureWindows) : windows[rng_() % 9];
      spec.scale = static_cast<int>(rng_() % (kMaxFeatureScale + 1));
      specs.push_back(spec);
    }
    FeatureSet set;
    const Status s = FeatureSet::make(specs, &set);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    return set;
  }

  // Three bursts (days 0-3, day 35, day 100), so that every window length decays to empty;
  // arrival order jittered (late events), exact duplicates repeated later.
  std::vector<Record> records(int customers, int events) {
    std::vector<std::pair<int64_t, Record>> arrivals;
    for (int i = 0; i < events; ++i) {
      Record r;
      r.customer = "c" + std::to_string(rng_() % customers);
      r.id = "e" + std::to_string(i);
      r.type = kTypes[rng_() % kTypes.size()];
      const int64_t burst = i < events * 9 / 10 ? 0 : (i < events * 19 / 20 ? 35 * kDay : 100 * kDay);
      const int64_t spread = burst == 0 ? 3 * kDay : 2 * 3600 * kNanosPerSecond;
      r.frac_digits = static_cast<int>(rng_() % 4);
      int64_t unit = kNanosPerSecond;
      for (int d = 0; d < r.frac_digits; ++d) unit /= 10;
      r.ns = kBase + burst + static_cast<int64_t>(rng_() % static_cast<uint64_t>(spread / unit)) * unit;
      r.fields["amount"] = amount();
      r.fields["items"] = other_field();
      r.fields["risk"] = other_field();
      const int64_t arrival = r.ns + (rng_() % 8 == 0 ? -static_cast<int64_t>(rng_() % (40 * kMinute)) : 0);
      arrivals.emplace_back(arrival, r);
      if (rng_() % 20 == 0) arrivals.emplace_back(arrival + static_cast<int64_t>(rng_() % (60 * kMinute)), r);
    }
    std::stable_sort(arrivals.begin(), arrivals.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Record> out;
    for (auto& a : arrivals) out.push_back(std::move(a.second));
    return out;
  }

 private:
  FieldValue amount() {
    FieldValue v;
    v.kind = FieldValue::number;
    v.decimals = static_cast<int>(rng_() % 4);
    v.mantissa = static_cast<int64_t>(rng_() % 10'000'000);
    v.exponent_form = rng_() % 5 == 0;
    return v;
  }

  FieldValue other_field() {
    FieldValue v;
    v.decimals = static_cast<int>(rng_() % 9);
    v.mantissa = static_cast<int64_t>(rng_() % 2'000'000) - 1'000'000;
    v.exponent_form = rng_() % 5 == 0;
    switch (rng_() % 12) {
      case 0:
        v.kind = FieldValue::absent;
        break;
      case 1:
        v.kind = FieldValue::huge;
        break;
      case 2:
        v.kind = FieldValue::string;
        break;
      case 3:
        v.kind = rng_() % 2 ? FieldValue::null : FieldValue::object;
        break;
      case 4:
        v.kind = FieldValue::twice;
        break;
      case 5:  // about the bound: 10^11 units at scale 0, beyond it at higher scales
        v.kind = FieldValue::number;
        v.decimals = 0;
        v.mantissa = 100'000'000'000 - static_cast<int64_t>(rng_() % 3);
        break;
      default:
        v.kind = FieldValue::number;
    }
    return v;
  }

  std::mt19937_64 rng_;
};

std::vector<std::string> lines_of(const std::vector<Record>& records) {
  std::vector<std::string> lines;
  for (const Record& r : records) lines.push_back(line_of(r));
  return lines;
}

bool passes(const FeatureSpec& spec, const std::string& type) {
  return spec.event_types.empty() ||
         std::find(spec.event_types.begin(), spec.event_types.end(), type) != spec.event_types.end();
}

// The features of one customer at tick T from its accepted events, the obvious way.
struct Content {
  bool entered = false;
  std::string features;
  EventTime last_event;
  bool operator==(const Content& o) const { return features == o.features && last_event == o.last_event; }
};

Content content_at(const FeatureSet& set, const std::vector<const Record*>& events, int64_t tick) {
  Content out;
  for (const Record* e : events) {
    if (window_of(e->ns) >= tick) continue;
    const EventTime t{e->ns, static_cast<uint8_t>(e->frac_digits)};
    if (!out.entered || out.last_event < t) out.last_event = t;
    out.entered = true;
  }
  out.features = "{";
  for (const FeatureSpec& spec : set.specs()) {
    int64_t n = 0, sum = 0, lo = 0, hi = 0;
    for (const Record* e : events) {
      if (!passes(spec, e->type) || e->ns < (tick - spec.window) * kWindowNanos || e->ns >= tick * kWindowNanos)
        continue;
      int64_t v = 0;
      if (spec.uses_field()) {
        const auto value = scaled(e->fields.at(spec.field), spec.scale);
        if (!value) continue;
        v = *value;
      }
      lo = n == 0 ? v : std::min(lo, v);
      hi = n == 0 ? v : std::max(hi, v);
      sum += v;
      ++n;
    }
    FeatureValue value;
    switch (spec.aggregation) {
      case Aggregation::count:
        value = {n, true};
        break;
      case Aggregation::sum:
        value = {sum, true};
        break;
      case Aggregation::avg: {
        const int64_t mag = sum < 0 ? -sum : sum;
        const int64_t q = n == 0 ? 0 : (2 * mag + n) / (2 * n);
        value = {sum < 0 ? -q : q, true};
        break;
      }
      case Aggregation::min:
        value = {lo, n > 0};
        break;
      case Aggregation::max:
        value = {hi, n > 0};
        break;
    }
    if (out.features.size() > 1) out.features += ",";
    out.features += "\"" + spec.name + "\":";
    append_feature_value(out.features, value, spec.scale);
  }
  out.features += "}";
  return out;
}

// One shard's replay, checked against the reference after every tick mark.
class CheckedReplay final : public LogReplay {
 public:
  CheckedReplay(const LogReplayOptions& options, const std::vector<Record>& records)
      : LogReplay(options), set_(options.features) {
    for (const Record& r : records) by_key_.emplace(key_of(r), &r);
  }

  uint64_t checks() const { return checks_; }
  // Accepted events feature f skipped (its field absent or not a number in bounds).
  uint64_t skipped(std::size_t f) const {
    uint64_t n = 0;
    const FeatureSpec& spec = set_.specs()[f];
    for (const auto& [customer, events] : accepted_)
      for (const Record* e : events)
        if (spec.uses_field() && passes(spec, e->type) && !scaled(e->fields.at(spec.field), spec.scale)) ++n;
    return n;
  }

 private:
  struct Item {
    int64_t version = 0, as_of = kNoTick;
    Content written;
  };

  static std::pair<uint64_t, uint64_t> key_of(const Record& r) {
    const DedupKey k = dedup_key(r.customer, r.id);
    return {k.lo, k.hi};
  }

  void accept(std::size_t shard, ParsedEvent& e) override {
    const auto it = by_key_.find({e.key.lo, e.key.hi});
    BOOST_REQUIRE(it != by_key_.end());
    accepted_[e.customer_id].push_back(it->second);
    LogReplay::accept(shard, e);
  }

  void advance(std::size_t shard, int64_t tick) override {
    LogReplay::advance(shard, tick);
    if (tick_ != kNoTick) evaluate_until(tick);
    tick_ = tick;
    compare();
  }

  // The ticks in (tick_, tick] where a customer's content may change: the next one (a late
  // event), and where an event's window enters and leaves each feature.
  void evaluate_until(int64_t tick) {
    for (const auto& [customer, events] : accepted_) {
      std::set<int64_t> due = {tick_ + 1};
      for (const Record* e : events) {
        due.insert(window_of(e->ns) + 1);
        for (const FeatureSpec& spec : set_.specs()) due.insert(window_of(e->ns) + 1 + spec.window);
      }
      Item& item = items_[customer];
      for (auto it = due.upper_bound(tick_); it != due.end() && *it <= tick; ++it) {
        const Content now = content_at(set_, events, *it);
        if (!now.entered || (item.version > 0 && now == item.written)) continue;
        item.written = now;
        item.as_of = *it;
        ++item.version;
      }
    }
  }

  void compare() {
    for (const auto& [customer, item] : items_) {
      const CustomerState* c = shard().find_customer(customer);
      BOOST_REQUIRE(c != nullptr);
      std::string features;
      ShardState::render_features(*c, &features);
      BOOST_TEST_CONTEXT("customer " << customer << " at tick " << tick_) {
        BOOST_TEST(c->version == item.version);
        if (item.version == 0) continue;
        BOOST_TEST(c->as_of_tick == item.as_of);
        BOOST_TEST(features == item.written.features);
        BOOST_TEST((c->written.last_event == item.written.last_event));
      }
      ++checks_;
    }
  }

  FeatureSet set_;
  std::map<std::pair<uint64_t, uint64_t>, const Record*> by_key_;
  std::map<std::string, std::vector<const Record*>> accepted_;
  std::map<std::string, Item> items_;
  int64_t tick_ = kNoTick;
  uint64_t checks_ = 0;
};

LogReplayOptions replay_options(const FeatureSet& set) {
  LogReplayOptions o;
  o.allowed_lateness_ns = kLateness;
  o.now_ns = kTestNow;
  o.batch_lines = 97;
  o.features = set;
  return o;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  BOOST_REQUIRE(f != nullptr);
  for (const std::string& l : lines) std::fprintf(f, "%s\n", l.c_str());
  std::fclose(f);
}

std::string temp_log(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".jsonl")).string();
}

EngineRun run_engine(const std::vector<std::string>& lines, const FeatureSet& set, int shards) {
  EngineOptions options;
  options.shards = shards;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.features = set;
  auto store = make_memory_store();
  EngineRun run;
  const Status s = run_lines(lines, options, 61, *store, &run);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return run;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_feature_at_every_tick_matches_a_brute_force_reference) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    LogMaker maker(seed);
    const FeatureSet set = maker.features();
    const std::vector<Record> records = maker.records(12, 700);
    const std::string path = temp_log("declared-reference");
    write_lines(path, lines_of(records));
    BOOST_TEST_CONTEXT("seed " << seed << "\n" << set.canonical()) {
      CheckedReplay replay(replay_options(set), records);
      const Status s = replay.feed(path);
      BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
      replay.finish();
      BOOST_TEST(replay.checks() > 1000u);
      for (std::size_t f = 0; f < set.size(); ++f) BOOST_TEST(replay.shard().skipped_values(f) == replay.skipped(f));
    }
    std::filesystem::remove(path);
  }
}

BOOST_AUTO_TEST_CASE(one_and_eight_shards_export_the_same_bytes) {
  for (uint64_t seed = 20; seed < 24; ++seed) {
    LogMaker maker(seed);
    const FeatureSet set = maker.features();
    const std::vector<std::string> lines = lines_of(maker.records(40, 1500));
    const EngineRun one = run_engine(lines, set, 1), eight = run_engine(lines, set, 8);
    BOOST_TEST_CONTEXT("seed " << seed << "\n" << set.canonical()) {
      BOOST_TEST(one.items.size() > 30u);
      BOOST_TEST(one.items == eight.items);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_restart_mid_log_continues_as_the_uninterrupted_run) {
  for (uint64_t seed = 30; seed < 34; ++seed) {
    LogMaker maker(seed);
    const FeatureSet set = maker.features();
    const std::vector<std::string> lines = lines_of(maker.records(30, 1200));
    const EngineRun whole = run_engine(lines, set, 3);
    auto store = make_memory_store();
    EngineOptions options;
    options.shards = 3;
    options.threads = 2;
    options.allowed_lateness_ns = kLateness;
    options.features = set;
    EngineRun first, second;
    const std::size_t cut = lines.size() * (2 + seed % 5) / 8;
    const std::vector<std::string> before(lines.begin(), lines.begin() + cut), after(lines.begin() + cut, lines.end());
    Status s = run_lines(before, options, 50, *store, &first, /*final_tick=*/false);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    s = run_lines(after, options, 50, *store, &second);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    BOOST_TEST_CONTEXT("seed " << seed << "\n" << set.canonical()) {
      BOOST_TEST(second.items == whole.items);
      BOOST_TEST(first.stats.logical_writes + second.stats.logical_writes == whole.stats.logical_writes);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_default_set_declared_explicitly_exports_what_the_implicit_one_does) {
  const std::vector<std::string> txn = {"transaction"};
  FeatureSet declared;
  const Status made = FeatureSet::make({FeatureSpec{"total_txn_30d", Aggregation::count, txn, "amount", 8640, 2},
                                        FeatureSpec{"total_amount_30d", Aggregation::sum, txn, "amount", 8640, 2},
                                        FeatureSpec{"avg_amount_30d", Aggregation::avg, txn, "amount", 8640, 2}},
                                       &declared);
  BOOST_REQUIRE(made.is_ok());
  LogMaker maker(41);
  const std::vector<std::string> lines = lines_of(maker.records(40, 1500));
  const EngineRun implicit = run_engine(lines, FeatureSet::defaults(), 4);
  const EngineRun explicit_set = run_engine(lines, declared, 4);
  BOOST_TEST(implicit.items.size() > 30u);
  BOOST_TEST(explicit_set.items == implicit.items);
}

BOOST_AUTO_TEST_CASE(skipped_values_are_a_metric_per_feature) {
  FeatureSet set;
  const Status made = FeatureSet::make({FeatureSpec{"risk_max_1h", Aggregation::max, {}, "risk", 12, 3},
                                        FeatureSpec{"events_5m", Aggregation::count, {}, "amount", 1, 2},
                                        FeatureSpec{"items_avg_1d", Aggregation::avg, {"login"}, "items", 288, 0}},
                                       &set);
  BOOST_REQUIRE(made.is_ok());
  LogMaker maker(50);
  const std::vector<Record> records = maker.records(20, 800);
  const std::vector<std::string> lines = lines_of(records);
  const std::string path = temp_log("declared-metric");
  write_lines(path, lines);
  CheckedReplay replay(replay_options(set), records);
  BOOST_REQUIRE(replay.feed(path).is_ok());
  replay.finish();
  std::filesystem::remove(path);

  EngineOptions options;
  options.shards = 3;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.features = set;
  options.now_ns = [] { return kTestNow; };
  auto store = make_memory_store();
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());
  for (std::size_t i = 0; i < lines.size(); i += 64)
    BOOST_REQUIRE(engine->submit(make_batch(lines, i, std::min(lines.size(), i + 64), "test.jsonl")).is_ok());
  RunStats stats;
  BOOST_REQUIRE(engine->finish(true, &stats).is_ok());
  std::string metrics;
  engine->shard_probe().render(metrics, 0);
  BOOST_TEST(replay.skipped(0) > 0u);
  BOOST_TEST(replay.skipped(1) == 0u);
  for (std::size_t f = 0; f < set.size(); ++f) {
    const std::string line = "streamscore_feature_values_skipped_total{feature=\"" + set.specs()[f].name + "\"} " +
                             std::to_string(replay.skipped(f)) + "\n";
    BOOST_TEST(metrics.find(line) != std::string::npos, line << " in\n" << metrics);
  }
}
