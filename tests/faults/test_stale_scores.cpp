// Issue 16, class 3: an item carries the score of its own features by the model it
// names, or no score at all. A daemon follows a log with v1 active, stops, the log grows,
// and it restarts without a usable model (no model.dir; active.json naming a refused
// version, allowed to start unscored; a models directory with no active model). Every
// item of the export is then checked against v1's own score of its features.
#define BOOST_TEST_MODULE fault_stale_scores
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "daemon_support.hpp"
#include "faults/model_faults.hpp"
#include "model/features.hpp"
#include "model/scorer.hpp"

using namespace streamscore;
using namespace streamscore::testing;
namespace json = boost::json;

namespace {

int64_t cents_of(const json::value& amount) {
  return std::llround(amount.to_number<double>() * 100);
}

struct Tally {
  std::size_t items = 0, scored = 0, wrong = 0;
  std::string first_wrong;
};

// Every scored item's score must be v1's score of the item's features.
Tally check_scores(const std::string& export_text, const LoadedModel& v1) {
  Tally t;
  std::istringstream in(export_text);
  for (std::string line; std::getline(in, line);) {
    const json::object item = json::parse(line).as_object();
    ++t.items;
    if (!item.contains("score")) {
      BOOST_TEST(!item.contains("model_version"), line);
      continue;
    }
    ++t.scored;
    const json::object& f = item.at("features").as_object();
    std::vector<float> expected;
    BOOST_REQUIRE(
        score_items(
            v1, {default_item_values(f.at("total_txn_30d").to_number<int64_t>(), cents_of(f.at("total_amount_30d")))},
            &expected)
            .is_ok());
    std::string want;
    append_score(want, expected[0]);
    const bool ok = item.at("model_version").as_string() == "v1" && json::serialize(item.at("score")) == want;
    if (!ok && t.wrong++ == 0) t.first_wrong = line + " (v1 scores these features " + want + ")";
  }
  return t;
}

// Follows the first half of the log with v1 active, stops (SIGTERM), appends the rest,
// calls `before_restart`, then reads the log to its end with the models directory
// `restart_models` ("" = none) and `restart` extra settings; returns the export.
std::string follow_stop_and_restart(
    const ModelLab& lab, const std::string& name, const std::string& restart_models,
    const std::vector<std::string>& restart, const std::function<void()>& before_restart = [] {}) {
  const std::string all = slurp(lab.events);
  const std::size_t half = all.find('\n', all.size() / 2) + 1;
  const std::string log = lab.dir / (name + ".jsonl"), state = lab.dir / (name + "-state");
  std::ofstream(log, std::ios::binary) << all.substr(0, half);
  {
    BackgroundDaemon d(lab.dir, name + "-1", follow_args(lab.dir, log, state, lab.models));
    HttpClient c("127.0.0.1", d.port());
    const auto lines = static_cast<double>(std::count(all.begin(), all.begin() + half, '\n'));
    BOOST_REQUIRE(wait_for([&] { return metric(c, "streamscore_events_read_total") >= lines; }, 60));
    BOOST_REQUIRE_EQUAL(d.stop(), 0);
  }
  BOOST_REQUIRE(export_of(lab.dir, state).find("\"model_version\":\"v1\"") != std::string::npos);
  std::ofstream(log, std::ios::binary | std::ios::app) << all.substr(half);
  before_restart();
  std::vector<std::string> args = follow_args(lab.dir, log, state, restart_models);
  args.insert(args.end(), {"--set", "source.exit_at_end=true"});
  args.insert(args.end(), restart.begin(), restart.end());
  BackgroundDaemon d(lab.dir, name + "-2", args);
  BOOST_REQUIRE_EQUAL(d.wait_exit(120), 0);
  return export_of(lab.dir, state);
}

LoadedModel v1_of(const ModelLab& lab) {
  LoadedModel m;
  BOOST_REQUIRE(load_model(lab.models, 1, 1, FeatureSet::defaults(), &m).is_ok());
  return m;
}

void expect_own_scores_only(const Tally& t) {
  BOOST_TEST(t.items > 0);
  BOOST_TEST(t.wrong == 0u, t.wrong << " of " << t.items << " items carry a score that is not v1's for "
                                    << "their features, e.g. " << t.first_wrong);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_restart_without_model_dir_keeps_no_stale_score) {
  ModelLab lab("streamscore-fault-stale-nodir-");
  expect_own_scores_only(check_scores(follow_stop_and_restart(lab, "nodir", "", {}), v1_of(lab)));
}

// active.json names a refused version at the restart (edited by hand after the stop);
// the daemon is allowed to start without a model.
BOOST_AUTO_TEST_CASE(a_restart_on_a_refused_model_keeps_no_stale_score) {
  ModelLab lab("streamscore-fault-stale-refused-");
  lab.publish_edited(2, [](json::object& l) { first_tree(l).at("split_indices").as_array().at(0) = 9; });
  const std::string exported = follow_stop_and_restart(
      lab, "refused", lab.models, {"--set", "model.allow_unscored_start=true"}, [&] { lab.point_active_at(2); });
  expect_own_scores_only(check_scores(exported, v1_of(lab)));
}

// A models directory without active.json: scoring is on, no model answers.
BOOST_AUTO_TEST_CASE(a_restart_with_no_active_model_keeps_no_stale_score) {
  ModelLab lab("streamscore-fault-stale-inactive-");
  const std::string empty_models = lab.dir / "empty-models";
  fs::create_directories(empty_models);
  expect_own_scores_only(check_scores(follow_stop_and_restart(lab, "inactive", empty_models, {}), v1_of(lab)));
}
