// The model module: point-in-time training set (no leakage), labels, deterministic
// artifacts, predictions equal to the xgboost command-line tool's, refused models,
// the registry (activate, rollback), and the train/model commands end to end.
#define BOOST_TEST_MODULE model
#include <boost/test/unit_test.hpp>

#include <future>

#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "actors/engine.hpp"
#include "actors/model_actor.hpp"
#include "app/model_support.hpp"
#include "engine_support.hpp"
#include "io/event_parser.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"
#include "model/registry.hpp"
#include "model/scorer.hpp"
#include "model/sha256.hpp"
#include "model/trainer.hpp"
#include "model/training_set.hpp"
#include "model/watcher.hpp"
#include "model_support.hpp"
#include "state/format.hpp"
#include "state/shard_state.hpp"
#include "state/store.hpp"

using namespace streamscore;
using streamscore::testing::slurp;
using streamscore::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSec = kNanosPerSecond;
constexpr int64_t kDay = kDayNanos;
constexpr int64_t kT0 = 1735689600LL * kSec;  // 2025-01-01T00:00:00Z
constexpr int64_t kLateness = 600 * kSec;

void spit(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

struct LogEvent {
  std::string id, customer;
  int64_t ns = 0;
  int64_t cents = 0;
  bool txn = true;
};

std::string line_of(const LogEvent& e) {
  std::string s = "{\"event_id\":\"" + e.id + "\",\"customer_id\":\"" + e.customer + "\",\"event_time\":\"";
  append_event_time(s, EventTime{e.ns, 0});
  s += "\",\"event_type\":\"" + std::string(e.txn ? "transaction" : "login") + "\",\"amount\":";
  append_cents(s, e.cents);
  return s + "}";
}

// A 45-day log in arrival order: 40 customers with their own spending levels, small
// disorder, exact redeliveries, late events (hours behind, arriving after their cut
// has passed), and big "poison" transactions exactly at midnight, the instant of a cut.
std::vector<LogEvent> synthetic_log(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<LogEvent> log;
  int next_id = 0;
  for (int64_t t = kT0; t < kT0 + 45 * kDay; t += 97 * kSec) {
    const int c = static_cast<int>(rng() % 40);
    LogEvent e{"e" + std::to_string(next_id++), "C" + std::to_string(c), t + static_cast<int64_t>(rng() % 60) * kSec,
               static_cast<int64_t>(rng() % (100 * (c + 1))) + 1, rng() % 10 != 0};
    if (rng() % 200 == 0) e.ns -= static_cast<int64_t>(1 + rng() % 40) * 3600 * kSec;  // late
    log.push_back(e);
    if (rng() % 50 == 0) log.push_back(e);  // redelivery
    if ((t - kT0) % kDay < 97 * kSec) {     // the first record of a day: poison at midnight
      const int64_t midnight = kT0 + (t - kT0) / kDay * kDay;
      log.push_back(
          LogEvent{"p" + std::to_string(next_id++), "C" + std::to_string(rng() % 40), midnight, 99999900, true});
    }
  }
  return log;
}

std::string write_log(const TempDir& dir, const std::vector<LogEvent>& log) {
  std::string text;
  for (const auto& e : log) text += line_of(e) + "\n";
  const std::string path = dir / "events.jsonl";
  spit(path, text);
  return path;
}

TrainingSetOptions set_options() {
  TrainingSetOptions o;
  o.replay.allowed_lateness_ns = kLateness;
  o.replay.now_ns = kT0 + 400 * kDay;  // fixed wall clock: nothing is `future`
  return o;
}

struct Fixture {
  TempDir dir;
  std::vector<LogEvent> log = synthetic_log(7);
  std::string path = write_log(dir, log);
  TrainingSet set;
  Fixture() { BOOST_REQUIRE(build_training_set({path}, set_options(), &set).is_ok()); }
};

TrainedModel train(const TrainingSet& set, int rounds = 20, std::vector<std::string> feature_names = {}) {
  TrainerOptions options;
  options.feature_names = std::move(feature_names);
  options.params.rounds = rounds;
  options.params.nthread = 2;
  TrainedModel m;
  Status s = train_model(set, set_options(), options, &m);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return m;
}

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sha256_matches_the_standard_test_vector) {
  BOOST_TEST(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// An independent model of "what the engine served at cut T": in arrival order, an
// event is in the row when it was received before the watermark reached T, its first
// occurrence was accepted, and its event_time is in [T - 30 days, T).
BOOST_FIXTURE_TEST_CASE(feature_rows_never_include_events_at_or_after_their_cut, Fixture) {
  BOOST_REQUIRE(set.cuts.size() >= 10);
  BOOST_REQUIRE(!set.rows.empty());
  std::map<std::pair<int64_t, std::string>, std::pair<int64_t, int64_t>> expected;  // count, cents
  std::set<std::string> seen;
  std::vector<const LogEvent*> received;
  int64_t max_ns = INT64_MIN;
  std::size_t next_cut = 0;
  auto snapshot = [&](int64_t cut) {
    const int64_t cut_ns = cut * kWindowNanos;
    for (const LogEvent* e : received) {
      auto& v = expected[{cut, e->customer}];
      if (e->txn && e->ns < cut_ns && e->ns >= cut_ns - kHorizonNanos) {
        ++v.first;
        v.second += e->cents;
      }
    }
  };
  for (const LogEvent& e : log) {
    const int64_t watermark = std::max(max_ns, e.ns) - kLateness;
    // The cuts the watermark passes with this event are taken before it is applied.
    while (next_cut < set.cuts.size() && set.cuts[next_cut] * kWindowNanos <= watermark) snapshot(set.cuts[next_cut++]);
    if (!seen.insert(e.customer + "/" + e.id).second) continue;
    received.push_back(&e);
    max_ns = std::max(max_ns, e.ns);
  }
  std::size_t poison_checked = 0;
  for (const TrainingRow& r : set.rows) {
    BOOST_TEST_CONTEXT("cut " << r.cut_tick << " customer " << r.customer_id) {
      BOOST_TEST(r.last_event_ns < r.cut_tick * kWindowNanos);
      const auto it = expected.find({r.cut_tick, r.customer_id});
      BOOST_REQUIRE(it != expected.end());
      BOOST_TEST(r.txn_count == it->second.first);
      BOOST_TEST(r.cents == it->second.second);
      BOOST_TEST(set.values_of(static_cast<std::size_t>(&r - set.rows.data()))[0].scaled == r.txn_count);
    }
    // The poison transaction at the cut instant is worth more than everything else.
    if (r.cents < 99999900) ++poison_checked;
  }
  BOOST_TEST(poison_checked > 0u);
}

BOOST_FIXTURE_TEST_CASE(labels_come_from_the_30_days_after_the_cut, Fixture) {
  std::set<std::string> seen;
  std::map<std::string, std::vector<const LogEvent*>> by_customer;
  for (const LogEvent& e : log)
    if (seen.insert(e.customer + "/" + e.id).second && e.txn) by_customer[e.customer].push_back(&e);
  std::map<int64_t, std::vector<const TrainingRow*>> by_cut;
  for (const TrainingRow& r : set.rows) {
    int64_t future = 0;
    const int64_t from = r.cut_tick * kWindowNanos;
    for (const LogEvent* e : by_customer[r.customer_id])
      if (e->ns >= from && e->ns < from + kHorizonNanos) future += e->cents;
    BOOST_TEST(r.future_cents == future);
    BOOST_TEST(r.cut_tick + kHorizonWindows <= set.end_tick);  // complete label window
    by_cut[r.cut_tick].push_back(&r);
  }
  for (const auto& [cut, rows] : by_cut) {
    std::size_t positives = 0;
    int64_t min_positive = INT64_MAX, max_negative = INT64_MIN;
    for (const TrainingRow* r : rows) {
      if (r->label == 1.f) {
        ++positives;
        min_positive = std::min(min_positive, r->future_cents);
      } else {
        max_negative = std::max(max_negative, r->future_cents);
      }
    }
    BOOST_TEST(positives >= static_cast<std::size_t>(std::ceil(rows.size() * 0.1)));
    BOOST_TEST(min_positive > max_negative);
  }
}

namespace {

// Every item in the store, by PK, as the engine serves it.
std::map<std::string, std::string> items_by_pk(StateStore& store) {
  std::map<std::string, std::string> out;
  const Status s = store.scan([&](const ItemRecord& r) {
    if (!r.item_json.empty()) out[r.pk] = r.item_json;
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return out;
}

// The part of a served item that a training row holds: its features and last event.
std::string served_part_of(const TrainingRow& r) {
  std::string s = "\"features\":{\"total_txn_30d\":" + std::to_string(r.txn_count) + ",\"total_amount_30d\":";
  append_cents(s, r.cents);
  s += ",\"avg_amount_30d\":";
  append_cents(s, average_cents(r.cents, r.txn_count));
  s += "},\"last_event_time\":\"";
  append_event_time(s, EventTime{r.last_event_ns, 0});
  return s + "\"";
}

}  // namespace

// Training and serving share one sequencer: the rows of a cut are the items the engine
// (the router, several shards) serves when its clock stands at that cut, fed the same
// log in batches that end where the clock reaches each cut.
BOOST_FIXTURE_TEST_CASE(training_rows_are_the_items_the_engine_serves_at_each_cut, Fixture) {
  std::vector<std::string> lines;
  for (const LogEvent& e : log) lines.push_back(line_of(e));
  EngineOptions options;
  options.shards = 3;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.now_ns = [] { return set_options().replay.now_ns; };
  auto store = make_memory_store();
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());
  std::size_t next_cut = 0, begin = 0, compared_cuts = 0, compared_rows = 0;
  int64_t max_ns = INT64_MIN;
  for (std::size_t i = 0; i < log.size() && next_cut < set.cuts.size(); ++i) {
    max_ns = std::max(max_ns, log[i].ns);  // redeliveries repeat their time: no effect
    const int64_t cut = set.cuts[next_cut];
    if (window_of(max_ns - kLateness) < cut) continue;
    BOOST_REQUIRE(engine->submit(streamscore::testing::make_batch(lines, begin, i + 1, "events.jsonl")).is_ok());
    begin = i + 1;
    RunStats stats;
    BOOST_REQUIRE(engine->checkpoint({}, &stats).is_ok());
    while (next_cut < set.cuts.size() && set.cuts[next_cut] <= stats.clock.tick) ++next_cut;
    if (stats.clock.tick != cut) continue;  // the clock jumped over the cut: no such instant served
    ++compared_cuts;
    const std::map<std::string, std::string> items = items_by_pk(*store);
    for (const TrainingRow& r : set.rows) {
      if (r.cut_tick != cut) continue;
      BOOST_TEST_CONTEXT("cut " << cut << " customer " << r.customer_id) {
        const auto it = items.find(customer_pk(r.customer_id));
        BOOST_REQUIRE(it != items.end());
        BOOST_TEST(it->second.find(served_part_of(r)) != std::string::npos, it->second);
        ++compared_rows;
      }
    }
  }
  BOOST_TEST(compared_cuts + 2 >= set.cuts.size());
  BOOST_TEST(compared_rows > 100u);
  // The rest of the log and the final tick: the same counts and the same last tick.
  BOOST_REQUIRE(engine->submit(streamscore::testing::make_batch(lines, begin, lines.size(), "events.jsonl")).is_ok());
  RunStats stats;
  BOOST_REQUIRE(engine->finish(/*final_tick=*/true, &stats).is_ok());
  uint64_t dead_lettered = 0;
  for (uint64_t n : stats.dead_lettered) dead_lettered += n;
  BOOST_TEST(stats.read == set.read);
  BOOST_TEST(stats.accepted == set.accepted);
  BOOST_TEST(stats.duplicates == set.duplicates);
  BOOST_TEST(dead_lettered == set.dead_lettered);
  BOOST_TEST(stats.clock.tick == set.end_tick);
}

BOOST_FIXTURE_TEST_CASE(training_twice_gives_byte_identical_artifacts, Fixture) {
  TrainingSet again;
  BOOST_REQUIRE(build_training_set({path}, set_options(), &again).is_ok());
  const TrainedModel a = train(set), b = train(again);
  BOOST_TEST(a.artifact == b.artifact);
  BOOST_TEST(a.meta.validation_auc == b.meta.validation_auc);
  BOOST_TEST(a.meta.validation_auc > 0.5);
  // Published twice: same artifact bytes and checksum under v1 and v2.
  ModelRegistry registry(dir / "models");
  ModelMeta m1 = a.meta, m2 = b.meta;
  BOOST_REQUIRE(registry.publish(a.artifact, &m1).is_ok());
  BOOST_REQUIRE(registry.publish(b.artifact, &m2).is_ok());
  BOOST_TEST(m1.version == 1);
  BOOST_TEST(m2.version == 2);
  BOOST_TEST(slurp(dir / "models/high_value_customer_model_v1.json") ==
             slurp(dir / "models/high_value_customer_model_v2.json"));
  BOOST_TEST(m1.sha256 == m2.sha256);
}

BOOST_FIXTURE_TEST_CASE(scores_equal_the_xgboost_command_line_tool, Fixture) {
  const TrainedModel trained = train(set);
  ModelRegistry registry(dir / "models");
  ModelMeta meta = trained.meta;
  BOOST_REQUIRE(registry.publish(trained.artifact, &meta).is_ok());
  LoadedModel model;
  BOOST_REQUIRE(load_model(dir / "models", meta.version, 1, FeatureSet::defaults(), &model).is_ok());
  // Every training row, plus edge rows: no transaction, one cent, huge amounts.
  std::vector<FeatureRow> rows;
  for (std::size_t i = 0; i < set.rows.size(); ++i) rows.push_back(feature_row(set.values_of(i), model.columns));
  for (auto [count, cents] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 1}, {3, 100}, {1000, 100000000000}, {7, 123456789}})
    rows.push_back(feature_row(default_item_values(count, cents).data(), model.columns));
  std::vector<float> ours;
  BOOST_REQUIRE(score_rows(model, rows, &ours).is_ok());
  BOOST_REQUIRE(ours.size() == rows.size());

  std::string libsvm;
  char buf[128];
  for (const FeatureRow& r : rows) {
    // %.9g round-trips a float32 exactly; explicit zeros are values, not missing.
    std::snprintf(buf, sizeof buf, "0 0:%.9g 1:%.9g 2:%.9g\n", r[0], r[1], r[2]);
    libsvm += buf;
  }
  spit(dir / "rows.libsvm", libsvm);
  spit(dir / "pred.conf", "task = pred\nmodel_in = \"" + dir / ("models/" + artifact_file_name(meta.version)) +
                              "\"\ntest:data = \"" + dir / "rows.libsvm?format=libsvm" + "\"\nname_pred = \"" +
                              dir / "pred.txt" + "\"\nnthread = 1\n");
  BOOST_REQUIRE(run("cd " + dir.path.string() + " && xgboost pred.conf > xgboost.log 2>&1") == 0);
  std::ifstream in(dir / "pred.txt");
  std::vector<double> theirs;
  for (double v; in >> v;) theirs.push_back(v);
  BOOST_REQUIRE(theirs.size() == ours.size());
  double worst = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(theirs[i] - ours[i]));
  BOOST_TEST_MESSAGE("largest difference to the xgboost CLI: " << worst);
  BOOST_TEST(worst <= 1e-6);
  // The scores do differ between rows: the comparison is not between constants.
  BOOST_TEST(*std::max_element(ours.begin(), ours.end()) - *std::min_element(ours.begin(), ours.end()) > 0.5f);
}

namespace {

struct RegistryFixture : Fixture {
  ModelRegistry registry{dir / "models"};
  std::string models = dir / "models";
  RegistryFixture() {
    const TrainedModel trained = train(set, 5);
    for (int i = 0; i < 3; ++i) {
      ModelMeta meta = trained.meta;
      BOOST_REQUIRE(registry.publish(trained.artifact, &meta).is_ok());
    }
  }
  std::string artifact(int v) const { return models + "/" + artifact_file_name(v); }
  std::string meta(int v) const { return models + "/" + meta_file_name(v); }
  std::string refusal(int v) {
    LoadedModel m;
    Status s = load_model(models, v, 1, FeatureSet::defaults(), &m);
    BOOST_TEST(!s.is_ok());
    return s.message();
  }
  static void replace(std::string& s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    BOOST_REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(refuses_a_checksum_mismatch, RegistryFixture) {
  std::string bytes = slurp(artifact(2));
  replace(bytes, "\"num_trees\":\"5\"", "\"num_trees\":\"4\"");
  spit(artifact(2), bytes);
  const std::string why = refusal(2);
  BOOST_TEST(why.find("model v2 refused: checksum mismatch") != std::string::npos, why);
  BOOST_TEST(why.find(sha256_hex(bytes)) != std::string::npos, why);
}

BOOST_FIXTURE_TEST_CASE(refuses_a_corrupt_artifact_even_with_a_matching_checksum, RegistryFixture) {
  const std::string bytes = slurp(artifact(2)).substr(0, 200);  // truncated JSON
  spit(artifact(2), bytes);
  std::string m = slurp(meta(2));
  ModelMeta parsed;
  BOOST_REQUIRE(parse_meta(m, &parsed).is_ok());
  replace(m, parsed.sha256, sha256_hex(bytes));
  spit(meta(2), m);
  const std::string why = refusal(2);
  BOOST_TEST(why.find("model v2 refused: corrupt artifact") != std::string::npos, why);
}

BOOST_FIXTURE_TEST_CASE(refuses_a_feature_schema_that_differs_from_the_boosters, RegistryFixture) {
  std::string m = slurp(meta(3));
  replace(m, R"(["total_txn_30d","total_amount_30d","avg_amount_30d"])",
          R"(["total_amount_30d","total_txn_30d","avg_amount_30d"])");
  spit(meta(3), m);
  const std::string why = refusal(3);
  BOOST_TEST(why.find("feature schema mismatch: the booster has 3 features [total_txn_30d, total_amount_30d, "
                      "avg_amount_30d], its metadata lists [total_amount_30d, total_txn_30d, "
                      "avg_amount_30d]") != std::string::npos,
             why);
}

namespace {

// The default set with `name` redefined over a 7-day window.
FeatureSet defaults_with_7d(const std::string& name) {
  std::vector<FeatureSpec> specs = FeatureSet::defaults().specs();
  for (FeatureSpec& spec : specs)
    if (spec.name == name) spec.window = 7 * 24 * 12;
  FeatureSet set;
  BOOST_REQUIRE(FeatureSet::make(specs, &set).is_ok());
  return set;
}

// The default set without `name`, the others in reverse order.
FeatureSet defaults_reversed_without(const std::string& name) {
  const FeatureSet defaults = FeatureSet::defaults();
  std::vector<FeatureSpec> specs;
  for (const FeatureSpec& spec : defaults.specs())
    if (spec.name != name) specs.insert(specs.begin(), spec);
  FeatureSet set;
  BOOST_REQUIRE(FeatureSet::make(specs, &set).is_ok());
  return set;
}

const char* const kAmount30d = "aggregation=sum event_types=[transaction] field=amount scale=2 window=30d";
const char* const kAmount7d = "aggregation=sum event_types=[transaction] field=amount scale=2 window=7d";

}  // namespace

BOOST_FIXTURE_TEST_CASE(activation_refuses_a_feature_the_engine_defines_otherwise_and_the_model_stays,
                        RegistryFixture) {
  ActiveRef ref;
  BOOST_REQUIRE(registry.activate(1, &ref).is_ok());
  // Every model of the fixture reads total_amount_30d: an engine that counts it over 7 days refuses them.
  ModelRegistry other(models, /*wait_for_lock=*/true, defaults_with_7d("total_amount_30d"));
  const Status s = other.activate(2, &ref);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("model v2 refused: feature schema mismatch: feature \"total_amount_30d\" is defined "
                              "differently (model: " +
                              std::string(kAmount30d) + "; engine: " + kAmount7d + ")") != std::string::npos,
             s.message());
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 1);
  BOOST_TEST(ref.history.empty());
  // A feature the engine does not compute at all.
  ModelRegistry without(models, /*wait_for_lock=*/true, defaults_reversed_without("avg_amount_30d"));
  const std::string why = without.activate(3, &ref).message();
  BOOST_TEST(why.find("feature \"avg_amount_30d\" (model: aggregation=avg event_types=[transaction] field=amount "
                      "scale=2 window=30d) is not defined in the engine (defined: total_amount_30d, total_txn_30d)") !=
                 std::string::npos,
             why);
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 1);
  // The daemon's watcher: a model that does not read the redefined feature is loaded; a
  // later reference to one that does is refused, and the model in use stays.
  const TrainedModel trained = train(set, 5, {"avg_amount_30d", "total_txn_30d"});
  ModelMeta subset = trained.meta;
  BOOST_REQUIRE(registry.publish(trained.artifact, &subset).is_ok());
  ActiveModelWatcher watcher(models, 1, defaults_with_7d("total_amount_30d"));
  BOOST_REQUIRE(other.activate(subset.version, &ref).is_ok());
  std::shared_ptr<const LoadedModel> model;
  std::string error;
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::loaded));
  BOOST_REQUIRE(registry.activate(2, &ref).is_ok());  // checked against the default set only
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::refused));
  BOOST_TEST(error.find("total_amount_30d\" is defined differently") != std::string::npos, error);
  BOOST_TEST(watcher.in_use() == subset.version);
  BOOST_TEST(model->meta.version == subset.version);
}

BOOST_FIXTURE_TEST_CASE(a_subset_model_reads_its_columns_by_name, Fixture) {
  const TrainedModel trained = train(set, 20, {"avg_amount_30d", "total_txn_30d"});
  BOOST_TEST(trained.meta.feature_schema.size() == 2u);
  ModelRegistry registry(dir / "models");
  ModelMeta meta = trained.meta;
  BOOST_REQUIRE(registry.publish(trained.artifact, &meta).is_ok());
  // An engine with the same features in another order, and one with only those two.
  for (const FeatureSet& engine : {FeatureSet::defaults(), defaults_reversed_without("total_amount_30d")}) {
    LoadedModel model;
    const Status s = load_model(dir / "models", meta.version, 1, engine, &model);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    std::vector<std::vector<FeatureValue>> items;
    std::vector<FeatureRow> by_hand;
    for (const TrainingRow& r : set.rows) {
      const int64_t avg = average_cents(r.cents, r.txn_count);
      std::vector<FeatureValue> values(engine.size());
      for (std::size_t i = 0; i < engine.size(); ++i) {
        const std::string& name = engine.specs()[i].name;
        values[i].scaled = name == "total_txn_30d" ? r.txn_count : name == "total_amount_30d" ? r.cents : avg;
      }
      items.push_back(values);
      by_hand.push_back({static_cast<float>(static_cast<double>(avg) / 100), static_cast<float>(r.txn_count)});
    }
    std::vector<float> scored, expected;
    BOOST_REQUIRE(score_items(model, items, &scored).is_ok());
    BOOST_REQUIRE(score_rows(model, by_hand, &expected).is_ok());
    BOOST_TEST(scored == expected);
    // Items of another set than the one the model was checked against are refused.
    BOOST_TEST(!score_items(model, {std::vector<FeatureValue>(engine.size() + 1)}, &scored).is_ok());
    BOOST_TEST(*std::max_element(scored.begin(), scored.end()) - *std::min_element(scored.begin(), scored.end()) >
               0.5f);
  }
}

BOOST_FIXTURE_TEST_CASE(names_alone_in_a_sidecar_mean_the_default_definitions, RegistryFixture) {
  // The sidecars of default models keep the form they had before declared features.
  const std::string m = slurp(meta(1));
  BOOST_TEST(
      m.find("\"feature_schema\": [\"total_txn_30d\",\"total_amount_30d\",\"avg_amount_30d\"]") != std::string::npos,
      m);
  ModelMeta parsed;
  BOOST_REQUIRE(parse_meta(m, &parsed).is_ok());
  BOOST_REQUIRE(parsed.feature_schema.size() == 3u);
  BOOST_TEST(parsed.feature_schema[1].definition == kAmount30d);
  LoadedModel model;
  BOOST_TEST(load_model(models, 1, 1, FeatureSet::defaults(), &model).is_ok());
  // Names alone are the default definitions: an engine defining one otherwise refuses.
  const Status s = load_model(models, 1, 1, defaults_with_7d("total_amount_30d"), &model);
  BOOST_TEST(s.message().find(std::string("model: ") + kAmount30d + "; engine: " + kAmount7d) != std::string::npos,
             s.message());
  // A name alone that no default feature has cannot be checked: refused.
  std::string unknown = m;
  replace(unknown, "\"avg_amount_30d\"]", "\"txn_count_1h\"]");
  BOOST_TEST(
      parse_meta(unknown, &parsed).message().find("names \"txn_count_1h\" without a definition") != std::string::npos,
      parse_meta(unknown, &parsed).message());
}

BOOST_AUTO_TEST_CASE(a_declared_schema_round_trips_through_the_sidecar) {
  ModelMeta meta;
  meta.version = 4;
  meta.label_kind = "top_fraction";
  meta.feature_schema = {{"txn_count_1h", "aggregation=count event_types=[transaction] window=1h"},
                         {"total_txn_30d", "aggregation=count event_types=[transaction] window=30d"}};
  const std::string text = render_meta(meta);
  BOOST_TEST(text.find(R"("feature_schema": [{"name":"txn_count_1h","definition":"aggregation=count )"
                       R"(event_types=[transaction] window=1h"},{"name":"total_txn_30d",)") != std::string::npos,
             text);
  ModelMeta parsed;
  BOOST_REQUIRE(parse_meta(text, &parsed).is_ok());
  BOOST_TEST((parsed.feature_schema == meta.feature_schema));
  std::string twice = text;
  twice.replace(twice.find("txn_count_1h"), 12, "total_txn_30d");
  BOOST_TEST(parse_meta(twice, &parsed).message().find("names \"total_txn_30d\" twice") != std::string::npos,
             parse_meta(twice, &parsed).message());
  for (const char* bad : {R"("feature_schema": [])", R"("feature_schema": [{"name":"a"}])",
                          R"("feature_schema": [{"name":"a","definition":1}])", R"("feature_schema": [7])",
                          R"("feature_schema": ["Total\n"])", R"("feature_schema": [{"name":"a b","definition":"x"}])",
                          R"("feature_schema": [{"name":"a","definition":"window=1h\u0007"}])"}) {
    std::string broken = text;
    broken.replace(broken.find("\"feature_schema\""),
                   broken.find('\n', broken.find("\"feature_schema\"")) - broken.find("\"feature_schema\"") - 1, bad);
    BOOST_TEST(parse_meta(broken, &parsed).message().find("key 'feature_schema'") != std::string::npos, broken);
  }
}

BOOST_FIXTURE_TEST_CASE(refuses_unreadable_metadata, RegistryFixture) {
  spit(meta(1), "{\"version\":");
  BOOST_TEST(refusal(1).find("metadata is not valid JSON") != std::string::npos);
  std::string m = slurp(meta(2));
  replace(m, "\"sha256\"", "\"sha_256\"");
  spit(meta(2), m);
  BOOST_TEST(refusal(2).find("key 'sha256' is missing") != std::string::npos, refusal(2));
  fs::remove(meta(3));
  BOOST_TEST(refusal(3).find("metadata") != std::string::npos);
  BOOST_TEST(refusal(4).find("no such file") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(activate_and_rollback_keep_a_history, RegistryFixture) {
  ActiveRef ref;
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 0);
  BOOST_TEST(!registry.rollback(&ref).is_ok());  // nothing to roll back to
  BOOST_REQUIRE(registry.activate(1, &ref).is_ok());
  BOOST_REQUIRE(registry.activate(3, &ref).is_ok());
  BOOST_REQUIRE(registry.activate(2, &ref).is_ok());
  BOOST_REQUIRE(registry.activate(2, &ref).is_ok());  // already active: no history entry
  BOOST_TEST(ref.active == 2);
  BOOST_TEST(ref.history == (std::vector<int>{1, 3}));
  BOOST_TEST(slurp(registry.active_path()) == "{\"active\":\"v2\",\"history\":[\"v1\",\"v3\"]}\n");
  // A refused model is not activated, and the reference does not move.
  spit(artifact(1), "{}");
  BOOST_TEST(registry.activate(1, &ref).message().find("checksum mismatch") != std::string::npos);
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 2);
  BOOST_REQUIRE(registry.rollback(&ref).is_ok());
  BOOST_TEST(ref.active == 3);
  BOOST_TEST(ref.history == (std::vector<int>{1}));
  // Rolling back to a model that is now refused fails and changes nothing.
  BOOST_TEST(!registry.rollback(&ref).is_ok());
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 3);
  // No temporary file is left behind by the atomic replacement.
  for (const auto& e : fs::directory_iterator(models))
    BOOST_TEST(e.path().filename().string().find(".tmp") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(version_names_and_active_files_are_validated) {
  int v = 0;
  BOOST_TEST(parse_version_name("v12", &v).is_ok());
  BOOST_TEST(v == 12);
  for (const char* bad : {"12", "v0", "v", "V1", "v1x", "v01"}) BOOST_TEST(!parse_version_name(bad, &v).is_ok());
  ActiveRef ref;
  BOOST_TEST(parse_active("{\"active\":null,\"history\":[]}", &ref).is_ok());
  BOOST_TEST(!parse_active("{\"active\":\"v1\"}", &ref).is_ok());
  BOOST_TEST(!parse_active("{\"active\":\"x\",\"history\":[]}", &ref).is_ok());
}

BOOST_AUTO_TEST_CASE(scores_are_written_as_the_shortest_exact_float) {
  std::string s;
  append_score(s, 0.8731f);
  BOOST_TEST(s == "0.8731");
  s.clear();
  append_score(s, 1.f / 3);
  BOOST_TEST(std::stof(s) == 1.f / 3);
}

BOOST_FIXTURE_TEST_CASE(train_and_model_commands_end_to_end, Fixture) {
  const std::string bin = STREAMSCORE_BINARY, models = dir / "m", out = dir / "out.txt";
  auto cli = [&](const std::string& args) { return run(bin + " " + args + " > " + out + " 2>&1"); };
  BOOST_TEST(cli("train --events " + path + " --models " + models + " --rounds 5 --set window.allowed_lateness=10m") ==
             0);
  BOOST_TEST(slurp(out).find("high_value_customer_model_v1.json written") != std::string::npos, slurp(out));
  BOOST_TEST(cli("train --events " + path + " --models " + models + " --rounds 5 --json") == 0);
  BOOST_TEST(slurp(out).find("\"version\":\"v2\"") != std::string::npos, slurp(out));
  BOOST_TEST(cli("model activate v2 --models " + models) == 0);
  BOOST_TEST(cli("model activate v1 --models " + models) == 0);
  BOOST_TEST(cli("model list --models " + models) == 0);
  BOOST_TEST(slurp(out).find("active: v1; rollback history: v2") != std::string::npos, slurp(out));
  BOOST_TEST(cli("model rollback --models " + models) == 0);
  BOOST_TEST(slurp(out).find("v2 is active again (was v1") != std::string::npos, slurp(out));
  BOOST_TEST(cli("model rollback --models " + models) == 1);  // nothing left
  BOOST_TEST(cli("model activate v9 --models " + models) == 2);
  BOOST_TEST(slurp(out).find("high_value_customer_model_v9.meta.json: no such file") != std::string::npos, slurp(out));
  BOOST_TEST(cli("model activate 2 --models " + models) == 2);
  BOOST_TEST(cli("train --events " + path + " --models " + models + " --cut-every 7m") == 2);
  BOOST_TEST(slurp(out).find("--cut-every") != std::string::npos);
  // Too little history for a label window: a clear failure, no model written.
  std::string head;
  std::istringstream lines(slurp(path));
  for (std::string l; std::getline(lines, l) && head.size() < 20000;) head += l + "\n";
  spit(dir / "short.jsonl", head);
  BOOST_TEST(cli("train --events " + dir / "short.jsonl" + " --models " + models) == 1);
  BOOST_TEST(slurp(out).find("not enough history") != std::string::npos, slurp(out));
  BOOST_TEST(!fs::exists(models + "/high_value_customer_model_v3.json"));
  BOOST_TEST(cli("model list --models " + dir / "nope") == 2);
}

BOOST_FIXTURE_TEST_CASE(train_features_choose_the_models_columns, Fixture) {
  const std::string bin = STREAMSCORE_BINARY, models = dir / "m", out = dir / "out.txt";
  auto cli = [&](const std::string& args) { return run(bin + " " + args + " > " + out + " 2>&1"); };
  const std::string train = "train --events " + path + " --models " + models + " --rounds 5 --features ";
  BOOST_TEST(cli(train + "total_txn_30d,txn_1h") == 2);
  BOOST_TEST(slurp(out).find("--features: feature \"txn_1h\" is not defined (defined: total_txn_30d, "
                             "total_amount_30d, avg_amount_30d)") != std::string::npos,
             slurp(out));
  BOOST_TEST(cli(train + "avg_amount_30d,total_txn_30d,avg_amount_30d") == 2);
  BOOST_TEST(slurp(out).find("feature \"avg_amount_30d\" is named twice") != std::string::npos, slurp(out));
  BOOST_TEST(!fs::exists(models));
  BOOST_TEST(cli(train + "avg_amount_30d,total_txn_30d") == 0);
  const std::string meta = slurp(models + "/" + meta_file_name(1));
  BOOST_TEST(
      meta.find(R"("feature_schema": [{"name":"avg_amount_30d","definition":"aggregation=avg )"
                R"(event_types=[transaction] field=amount scale=2 window=30d"},{"name":"total_txn_30d",)"
                R"("definition":"aggregation=count event_types=[transaction] window=30d"}],)") != std::string::npos,
      meta);
  BOOST_TEST(
      slurp(models + "/" + artifact_file_name(1)).find(R"("feature_names":["avg_amount_30d","total_txn_30d"])") !=
      std::string::npos);
  BOOST_TEST(cli("model activate v1 --models " + models + " --config " + dir / "none.toml") == 2);
  BOOST_TEST(slurp(out).find("none.toml") != std::string::npos, slurp(out));
  BOOST_TEST(cli("model activate v1 --models " + models) == 0);
}

BOOST_FIXTURE_TEST_CASE(the_watcher_loads_new_versions_and_reports_refused_ones_once, RegistryFixture) {
  ActiveModelWatcher watcher(models, 1);
  std::shared_ptr<const LoadedModel> model;
  std::string error;
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::none));  // no reference
  ActiveRef ref;
  BOOST_REQUIRE(registry.activate(1, &ref).is_ok());
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::loaded));
  BOOST_TEST(model->meta.version == 1);
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::none));
  // A reference to a model that became corrupt after its check: refused, reported once.
  BOOST_REQUIRE(registry.activate(2, &ref).is_ok());
  spit(artifact(2), "{}");
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::refused));
  BOOST_TEST(error.find("model v2 refused: checksum mismatch") != std::string::npos, error);
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::none));
  BOOST_TEST(watcher.in_use() == 1);
  BOOST_REQUIRE(registry.rollback(&ref).is_ok());  // back to v1: already in use
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::none));
  BOOST_REQUIRE(registry.activate(3, &ref).is_ok());
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::loaded));
  BOOST_TEST(model->meta.version == 3);
  spit(registry.active_path(), "{not json");
  BOOST_TEST((watcher.poll(&model, &error) == ActiveModelWatcher::Change::refused));
  BOOST_TEST(error.find("active.json: not valid JSON") != std::string::npos, error);
}

BOOST_FIXTURE_TEST_CASE(the_model_actor_scores_batches_and_swaps_versions, RegistryFixture) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system sys{cfg};
  auto metrics = std::make_shared<ModelProbe>(1);
  ModelActor actor = spawn_model_actor(sys, nullptr, metrics, false);
  caf::scoped_actor self{sys};
  const std::vector<std::vector<FeatureValue>> items = {default_item_values(0, 0), default_item_values(40, 400000),
                                                        default_item_values(3, 300)};
  auto score = [&] {
    ScoreReply reply;
    self->request(actor, caf::infinite, score_atom::value, ScoreRequest{items})
        .receive([&](ScoreReply& r) { reply = std::move(r); }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return reply;
  };
  ScoreReply none = score();  // no model: no scores
  BOOST_TEST(none.model_version == 0);
  BOOST_TEST(none.scores.empty());
  // The shards learn about a swap (here: the test's own actor stands for a shard).
  self->send(actor, shards_atom::value, std::vector<ShardActor>{caf::actor_cast<ShardActor>(self)});
  auto v2 = std::make_shared<LoadedModel>();
  BOOST_REQUIRE(load_model(models, 2, 1, FeatureSet::defaults(), v2.get()).is_ok());
  self->send(actor, swap_atom::value, ModelPtr(v2));
  self->receive([&](model_atom, int version) { BOOST_TEST(version == 2); });
  ScoreReply scored = score();
  BOOST_TEST(scored.model_version == 2);
  std::vector<float> direct;
  BOOST_REQUIRE(score_items(*v2, items, &direct).is_ok());
  BOOST_TEST(scored.scores == direct);
  BOOST_TEST(metrics->active_version.load() == 2);
  BOOST_TEST(metrics->rows_scored.load() == 3u);
  anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

namespace {

ParsedEvent txn(const std::string& customer, const std::string& id, int64_t ns, int64_t cents) {
  ParsedEvent e;
  e.customer_id = customer;
  e.time = EventTime{ns, 0};
  e.cents = cents;
  e.is_transaction = true;
  e.customer_hash = XXH3_64bits(customer.data(), customer.size());  // as the parser does
  e.key = dedup_key(customer, id);
  return e;
}

std::string rendered(const ShardState& shard, const std::string& id) {
  std::string s;
  ShardState::render_item(*shard.find_customer(id), &s);
  return s;
}

// C1's first transaction, ticked: C1 is at version 1, not scored yet.
void tick_one_transaction(ShardState& shard, int64_t tick0) {
  shard.advance_to(tick0 - 1);
  auto e1 = txn("C1", "a", kT0 + kSec, 1000);
  shard.apply_event(e1);
  shard.advance_to(tick0 + 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_rescore_is_a_new_version_a_score_of_new_features_is_not) {
  const int64_t tick0 = kT0 / kWindowNanos;
  ShardState shard(ShardOptions{});
  tick_one_transaction(shard, tick0);
  std::vector<uint32_t> slots;
  shard.items_to_write(&slots);
  BOOST_REQUIRE(slots.size() == 1u);
  shard.set_score(slots[0], 0.25f, 1);  // first score of version 1
  BOOST_TEST(rendered(shard, "C1").find(",\"score\":0.25,\"model_version\":\"v1\",\"version\":1}") != std::string::npos,
             rendered(shard, "C1"));
  shard.set_score(slots[0], 0.25f, 1);  // same model, same features: nothing new
  BOOST_TEST(shard.find_customer("C1")->version == 1);
  BOOST_TEST(shard.mark_stale(1, 10) == 0u);
  BOOST_TEST(shard.mark_stale(2, 10) == 1u);  // after a swap to v2: one stale item
  shard.set_score(slots[0], 0.5f, 2);
  BOOST_TEST(shard.find_customer("C1")->version == 2);  // re-score: a new version
  BOOST_TEST(shard.rescores() == 1u);
  auto e2 = txn("C1", "b", kT0 + 400 * kSec, 500);
  shard.apply_event(e2);
  shard.advance_to(tick0 + 2);  // new features: version 3
  shard.set_score(slots[0], 0.75f, 2);
  BOOST_TEST(shard.find_customer("C1")->version == 3);
  BOOST_TEST(shard.rescores() == 1u);
  // The score survives a write and a load (a restart).
  auto store = make_memory_store();
  FlushStats stats;
  BOOST_REQUIRE(shard.flush(*store, &stats).is_ok());
  ShardState loaded(ShardOptions{});
  loaded.set_current_tick(tick0 + 2);
  BOOST_REQUIRE(store->scan([&](const ItemRecord& r) { return loaded.load(r).is_ok(); }).is_ok());
  BOOST_TEST(rendered(loaded, "C1") == rendered(shard, "C1"));
  BOOST_TEST(loaded.mark_stale(2, 0) == 0u);
}

// Issue 16, class 3: new features drop the score of the old ones. Written while no model
// answers, the item carries neither score nor model_version (not the old features' score
// under the old model's name), and it counts as stale for the next model.
BOOST_AUTO_TEST_CASE(new_features_drop_the_score_of_the_old_ones) {
  const int64_t tick0 = kT0 / kWindowNanos;
  ShardState shard(ShardOptions{});
  tick_one_transaction(shard, tick0);
  std::vector<uint32_t> slots;
  shard.items_to_write(&slots);
  BOOST_REQUIRE(slots.size() == 1u);
  shard.set_score(slots[0], 0.25f, 1);
  auto store = make_memory_store();
  FlushStats stats;
  BOOST_REQUIRE(shard.flush(*store, &stats).is_ok());  // version 1, scored by v1
  auto e2 = txn("C1", "b", kT0 + 400 * kSec, 500);
  shard.apply_event(e2);
  shard.advance_to(tick0 + 2);  // new features: version 2, no model to score them
  BOOST_REQUIRE(shard.flush(*store, &stats).is_ok());
  ItemRecord item;
  BOOST_REQUIRE(store->get("CUSTOMER#C1", &item).is_ok());
  BOOST_TEST(item.version == 2);
  BOOST_TEST(item.item_json.find("score") == std::string::npos, item.item_json);
  BOOST_TEST(item.item_json.find("model_version") == std::string::npos, item.item_json);
  BOOST_TEST(shard.mark_stale(1, 10) == 1u);  // v1 active again: it scores the new features
}

// The contract's version rises on every write of the item: an item written before any
// model was active (no score) gets a new version with its first score.
BOOST_AUTO_TEST_CASE(the_first_score_of_an_item_written_without_one_is_a_new_version) {
  const int64_t tick0 = kT0 / kWindowNanos;
  ShardState shard(ShardOptions{});
  tick_one_transaction(shard, tick0);
  auto store = make_memory_store();
  FlushStats stats;
  BOOST_REQUIRE(shard.flush(*store, &stats).is_ok());  // version 1, no score
  ItemRecord unscored;
  BOOST_REQUIRE(store->get("CUSTOMER#C1", &unscored).is_ok());
  BOOST_TEST(unscored.version == 1);
  BOOST_TEST(unscored.item_json.find("score") == std::string::npos, unscored.item_json);
  BOOST_TEST(shard.mark_stale(1, 10) == 1u);  // a model is activated
  std::vector<uint32_t> slots;
  shard.items_to_write(&slots);
  BOOST_REQUIRE(slots.size() == 1u);
  shard.set_score(slots[0], 0.25f, 1);
  BOOST_TEST(shard.find_customer("C1")->version == 2);
  BOOST_TEST(shard.rescores() == 1u);
  shard.set_score(slots[0], 0.25f, 1);  // scored again before the write: nothing new
  BOOST_TEST(shard.find_customer("C1")->version == 2);
  BOOST_REQUIRE(shard.flush(*store, &stats).is_ok());
  ItemRecord scored;
  BOOST_REQUIRE(store->get("CUSTOMER#C1", &scored).is_ok());
  BOOST_TEST(scored.version == 2);
  BOOST_TEST(scored.item_json.find(",\"score\":0.25,\"model_version\":\"v1\",\"version\":2}") != std::string::npos,
             scored.item_json);
}

BOOST_AUTO_TEST_CASE(scores_read_back_from_items) {
  float score = 0;
  int32_t version = 0;
  BOOST_TEST(read_score(R"({"as_of":"x","score":0.48353255,"model_version":"v12","version":3})", &score, &version));
  BOOST_TEST(score == 0.48353255f);
  BOOST_TEST(version == 12);
  BOOST_TEST(read_score(R"({"as_of":"x","version":3})", &score, &version));
  BOOST_TEST(version == 0);
  BOOST_TEST(!read_score(R"({"as_of":"x","score":0.5,"version":3})", &score, &version));
  BOOST_TEST(!read_score(R"({"as_of":"x","score":0.5,"model_version":"vx","version":3})", &score, &version));
}

// The outcome of an asynchronous admin change (activate/rollback answer on the admin
// thread), waited for.
Status outcome_of(const std::function<void(ModelAdmin::Done)>& change, std::string* json) {
  std::promise<std::pair<Status, std::string>> answer;
  change([&](const Status& s, std::string body) { answer.set_value({s, std::move(body)}); });
  auto [status, body] = answer.get_future().get();
  *json = std::move(body);
  return status;
}

BOOST_FIXTURE_TEST_CASE(the_http_model_admin_uses_the_registry, RegistryFixture) {
  RegistryModelAdmin admin(models, FeatureSet::defaults(), 50);
  auto activate = [&](const std::string& v, std::string* json) {
    return outcome_of([&](ModelAdmin::Done done) { admin.activate(v, std::move(done)); }, json);
  };
  auto rollback = [&](std::string* json) {
    return outcome_of([&](ModelAdmin::Done done) { admin.rollback(std::move(done)); }, json);
  };
  std::string json;
  BOOST_REQUIRE(admin.describe(&json).is_ok());
  BOOST_TEST(json == "{\"active\":null,\"history\":[]}");
  BOOST_TEST(rollback(&json).is_conflict());  // nothing to roll back to: 409
  BOOST_REQUIRE(activate("v1", &json).is_ok());
  BOOST_REQUIRE(activate("v3", &json).is_ok());
  BOOST_TEST(json.find("\"active\":\"v3\",\"history\":[\"v1\"],\"metadata\":{") == 1u, json);
  BOOST_TEST(json.find("\"sha256\":") != std::string::npos);
  BOOST_TEST(activate("v9", &json).is_not_found());                             // 404
  BOOST_TEST((activate("3", &json).code() == Status::Code::invalid_argument));  // 400
  spit(artifact(2), "{}");
  Status refused = activate("v2", &json);
  BOOST_TEST(refused.is_conflict());  // 409, naming the mismatch
  BOOST_TEST(refused.message().find("checksum mismatch") != std::string::npos);
  BOOST_REQUIRE(rollback(&json).is_ok());
  BOOST_TEST(json.find("\"active\":\"v1\",\"history\":[]") == 1u, json);
}

BOOST_FIXTURE_TEST_CASE(the_http_model_admin_checks_against_the_engines_features, RegistryFixture) {
  RegistryModelAdmin admin(models, defaults_with_7d("total_amount_30d"), 50);
  std::string json;
  const Status refused = outcome_of([&](ModelAdmin::Done done) { admin.activate("v1", std::move(done)); }, &json);
  BOOST_TEST(refused.is_conflict());  // 409
  BOOST_TEST(refused.message().find("feature \"total_amount_30d\" is defined differently") != std::string::npos,
             refused.message());
  ActiveRef ref;
  BOOST_REQUIRE(registry.read_active(&ref).is_ok());
  BOOST_TEST(ref.active == 0);
}

BOOST_FIXTURE_TEST_CASE(training_refuses_rows_of_another_set_than_the_engines, Fixture) {
  TrainerOptions options;
  options.features = defaults_reversed_without("total_amount_30d");  // 2 features; the rows hold 3
  TrainedModel m;
  const Status s = train_model(set, set_options(), options, &m);
  BOOST_TEST(s.message().find("the training rows hold 3 features, the engine's set 2") != std::string::npos,
             s.message());
}
