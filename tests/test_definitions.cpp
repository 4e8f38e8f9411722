// The feature definitions are part of the state: every store keeps the definitions it was
// built with, and `run`, a backfill's resume and a DynamoDB table's other writers refuse
// other ones (exit 2, naming the feature); `replay` rebuilds under the new ones.
#define BOOST_TEST_MODULE definitions
#include <boost/test/unit_test.hpp>

#include "actors/engine.hpp"
#include "config/config.hpp"
#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"

using namespace streamscore::testing;
using streamscore::FeatureSet;
using streamscore::StateStore;
using streamscore::Status;

namespace {

// One feature, not today's: a config file declaring it.
constexpr const char* kOtherFeatures = R"([[feature]]
name = "txn_count_1h"
aggregation = "count"
event_types = ["transaction"]
window = "1h"
)";

FeatureSet other_features() {
  streamscore::Config config;
  TempDir tmp("streamscore-definitions-config-");
  const std::string path = tmp / "other.toml";
  std::ofstream(path) << kOtherFeatures;
  const Status s = streamscore::load_config(path, {}, &config);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return config.features;
}

bool contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return true;
  BOOST_TEST_MESSAGE("'" << haystack << "' does not contain '" << needle << "'");
  return false;
}

struct Fixture {
  TempDir dir{"streamscore-definitions-"};
  std::string log = dir / "events.jsonl";
  std::string other = dir / "other.toml";
  Fixture() {
    Result g = run_cli(dir, "generate --customers 1000 --events 100000 --days 40 --seed 5 --out " + log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    std::ofstream(other) << kOtherFeatures;
  }
  Result run(const std::string& state, const std::string& more = "") {
    return run_cli(dir, "run --set source.path=" + log + " --set state.path=" + (dir / state) +
                            " --set http.enabled=false --set dead_letter.path=" + (dir / (state + "-dl.jsonl")) + more);
  }
  Result replay(const std::string& state, const std::string& more = "") {
    return run_cli(dir, "replay --events " + log + " --state " + (dir / state) + more);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_new_state_stores_its_definitions_and_refuses_others) {
  std::unique_ptr<StateStore> store = streamscore::make_memory_store();
  const FeatureSet other = other_features();
  BOOST_TEST_REQUIRE(streamscore::check_features(store.get(), other).is_ok());
  std::string stored;
  BOOST_TEST_REQUIRE(store->get_meta(streamscore::kMetaFeatures, &stored).is_ok());
  BOOST_TEST(stored == other.canonical());
  BOOST_TEST(streamscore::check_features(store.get(), other).is_ok());
  const Status refused = streamscore::check_features(store.get(), FeatureSet::defaults());
  BOOST_TEST(refused.is_invalid_argument());
  BOOST_TEST(contains(refused.message(), "feature total_txn_30d (stored in its place: txn_count_1h)"));
  BOOST_TEST(contains(refused.message(), "`streamscore replay` or `streamscore backfill` into a new state"));
  BOOST_TEST_REQUIRE(store->get_meta(streamscore::kMetaFeatures, &stored).is_ok());
  BOOST_TEST(stored == other.canonical());  // a refusal changes nothing
}

BOOST_AUTO_TEST_CASE(a_state_written_before_definitions_were_stored_has_the_defaults) {
  for (const bool defaults : {true, false}) {
    std::unique_ptr<StateStore> store = streamscore::make_memory_store();
    BOOST_TEST_REQUIRE(store->put_meta(streamscore::kMetaSettings, "window.allowed_lateness_ns=600000000000").is_ok());
    const Status s = streamscore::check_features(store.get(), defaults ? FeatureSet::defaults() : other_features());
    BOOST_TEST(s.is_ok() == defaults, s.to_string());
    std::string stored;
    if (!defaults) {
      BOOST_TEST(contains(s.message(), "feature txn_count_1h (stored in its place: total_txn_30d)"));
      BOOST_TEST(store->get_meta(streamscore::kMetaFeatures, &stored).is_not_found());
      continue;
    }
    BOOST_TEST_REQUIRE(store->get_meta(streamscore::kMetaFeatures, &stored).is_ok());
    BOOST_TEST(stored == FeatureSet::defaults().canonical());
  }
}

BOOST_FIXTURE_TEST_CASE(run_refuses_a_state_built_with_other_definitions_and_replay_rebuilds_it, Fixture) {
  BOOST_TEST_REQUIRE(replay("state").exit_code == 0);
  const std::string before = export_of(dir, dir / "state");
  Result refused = run("state", " --config " + other);
  BOOST_TEST(refused.exit_code == 2);
  BOOST_TEST(contains(refused.err, "feature txn_count_1h (stored in its place: total_txn_30d)"));
  BOOST_TEST(contains(refused.err, "replay"));
  BOOST_TEST((export_of(dir, dir / "state") == before));  // untouched

  // The way forward: a replay under the new definitions, which the state then keeps.
  Result rebuilt = replay("state", " --config " + other);
  BOOST_TEST_REQUIRE(rebuilt.exit_code == 0, rebuilt.err);
  Result resumed = run("state", " --config " + other);
  BOOST_TEST(resumed.exit_code == 0, resumed.err);
  Result defaults = run("state");
  BOOST_TEST(defaults.exit_code == 2);
  BOOST_TEST(contains(defaults.err, "feature total_txn_30d (stored in its place: txn_count_1h)"));
}

BOOST_FIXTURE_TEST_CASE(a_changed_window_is_named_with_both_definitions, Fixture) {
  Result built = run("state");
  BOOST_TEST_REQUIRE(built.exit_code == 0, built.err);
  const std::string changed = dir / "changed.toml";
  std::ofstream(changed) << "[[feature]]\nname = \"total_txn_30d\"\naggregation = \"count\"\n"
                            "event_types = [\"transaction\"]\nwindow = \"7d\"\n";
  Result refused = run("state", " --config " + changed);
  BOOST_TEST(refused.exit_code == 2);
  BOOST_TEST(contains(refused.err,
                      "feature total_txn_30d (stored: aggregation=count event_types=[transaction] window=30d; "
                      "configured: aggregation=count event_types=[transaction] window=7d)"));
}

BOOST_FIXTURE_TEST_CASE(a_backfill_with_other_definitions_is_refused_at_resume_and_when_complete, Fixture) {
  const std::vector<std::string> args = {"backfill", "--events", log, "--state", dir / "bf", "--slice", "6h"};
  // Throttled to last about 40 s; killed after 3 s, when slices are committed even on a
  // loaded machine.
  kill_throttled_backfill(args, dir / "bf-out.txt", dir / "bf-err.txt", "2000", std::chrono::seconds(3));
  std::string line;
  for (const auto& a : args) line += a + " ";
  Result refused = run_cli(dir, line + "--config " + other);
  BOOST_TEST(refused.exit_code == 2);
  BOOST_TEST(contains(refused.err, "feature txn_count_1h (stored in its place: total_txn_30d)"));
  Result resumed = run_cli(dir, line);
  BOOST_TEST_REQUIRE(resumed.exit_code == 0, resumed.err);
  BOOST_TEST(contains(resumed.err, "resuming from the last committed slice"));

  // Complete: the same arguments under other definitions are not "nothing to do".
  Result complete = run_cli(dir, line + "--config " + other);
  BOOST_TEST(complete.exit_code == 2);
  BOOST_TEST(contains(complete.err, "feature txn_count_1h"));
  BOOST_TEST(!contains(complete.out, "already complete"));
}

BOOST_FIXTURE_TEST_CASE(a_dynamodb_table_keeps_its_definitions_for_every_writer, Fixture) {
  Dynalite dynalite;
  const streamscore::DynamoDbOptions table = dynalite.fresh_table();
  const std::string sets = table_sets(table);
  Result replayed = run_cli(dir, "replay --events " + log + " --dead-letter " + (dir / "dl.jsonl") + sets);
  BOOST_TEST_REQUIRE(replayed.exit_code == 0, replayed.err);
  const std::string daemon = "run --set source.path=" + log +
                             " --set http.enabled=false --set dead_letter.path=" + (dir / "run-dl.jsonl") + sets;
  for (const std::string writer : {"streamscore", "another-writer"}) {
    Result refused = run_cli(dir, daemon + " --set state.writer=" + writer + " --config " + other);
    BOOST_TEST(refused.exit_code == 2, writer);
    BOOST_TEST(contains(refused.err, "feature txn_count_1h (stored in its place: total_txn_30d)"), writer);
  }
  Result same = run_cli(dir, daemon + " --set state.writer=another-writer");
  BOOST_TEST(same.exit_code == 0, same.err);
}
