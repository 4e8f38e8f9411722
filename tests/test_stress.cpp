// The stress harness: every scenario, short, on a real RocksDB store, must end with a
// passing invariant check; and the check itself must catch a lost or a double-counted
// event, naming the item.
#define BOOST_TEST_MODULE stress
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <numeric>

#include "io/generator.hpp"
#include "testkit/reference_model.hpp"
#include "testkit/stress.hpp"
#include "tests/engine_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

StressOptions short_run(const std::string& scenario) {
  StressOptions o;
  o.scenario = scenario;
  o.rate = 0;  // as fast as possible: the tests time nothing
  o.events = 30000;
  o.customers = 300;
  o.days = 40;  // longer than the horizon: transactions leave the window too
  o.batch_size = 2000;
  o.checkpoint_interval_ms = 20;
  o.threads = 2;
  o.shards = 3;
  o.binary = STREAMSCORE_BINARY;
  return o;
}

StressReport run(const StressOptions& o) {
  StressReport report;
  const Status s = run_stress(o, &report);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return report;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_in_process_scenario_passes_its_invariant_check) {
  for (const std::string scenario :
       {"steady", "hot-keys", "burst", "duplicate-storm", "late-storm", "malformed-flood"}) {
    BOOST_TEST_CONTEXT(scenario) {
      const StressReport r = run(short_run(scenario));
      BOOST_TEST(r.verified);
      BOOST_TEST(r.first_difference == "");
      BOOST_TEST(r.records == 30000u);
      BOOST_TEST(r.stats.read == 30000u);
      BOOST_TEST(r.stats.balanced());
      BOOST_TEST(r.latency.samples == 30000u);
      BOOST_TEST(r.latency.p50_ms <= r.latency.p99_ms);
      BOOST_TEST(r.checkpoints >= 1u);
      BOOST_TEST(r.peak_rss_kb > 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(scenarios_shape_the_stream_as_named) {
  auto counts = [](const std::string& scenario) {
    const StressReport r = run(short_run(scenario));
    return r.stats;
  };
  const RunStats steady = counts("steady");
  BOOST_TEST(counts("duplicate-storm").duplicates > 10 * steady.duplicates);
  BOOST_TEST(counts("malformed-flood").dead_lettered_total() > 30000u * 3 / 10 * 9 / 10);
  const StressReport late = run(short_run("late-storm"));
  BOOST_TEST(late.offered.late > 30000 * 2 / 10 * 9 / 10);
  BOOST_TEST(late.offered.late + late.offered.valid == static_cast<int64_t>(late.stats.accepted));
}

BOOST_AUTO_TEST_CASE(hot_keys_give_half_the_events_to_one_percent_of_the_customers) {
  GeneratorOptions g;
  g.customers = 10000;
  g.events = 100000;
  g.dup_rate = g.bad_rate = g.late_rate = 0;
  g.hot_customers = 0.01;
  g.hot_share = 0.5;
  EventGenerator gen(g);
  std::map<std::string, int> per_customer;
  std::string line;
  while (gen.next(&line)) {
    const auto at = line.find("\"customer_id\":\"") + 15;
    ++per_customer[line.substr(at, line.find('"', at) - at)];
  }
  std::vector<int> sizes;
  for (const auto& [c, n] : per_customer) sizes.push_back(n);
  std::sort(sizes.rbegin(), sizes.rend());
  const long top = std::accumulate(sizes.begin(), sizes.begin() + 100, 0L);
  BOOST_TEST(top >= 50000);
  BOOST_TEST(sizes.size() > 9000u);  // the other half still reaches nearly every customer
}

BOOST_AUTO_TEST_CASE(crash_restart_kills_the_daemon_and_still_matches_the_reference) {
  StressOptions o = short_run("crash-restart");
  o.events = 150000;
  o.customers = 2000;
  o.batch_size = 1000;
  o.kills = 3;
  const StressReport r = run(o);
  BOOST_TEST(r.kills == 3);
  BOOST_TEST(r.stats.read < r.records);  // the last daemon resumed from a checkpoint
  BOOST_TEST(r.verified);
  BOOST_TEST(r.first_difference == "");
}

BOOST_AUTO_TEST_CASE(model_swap_swaps_and_rolls_back_under_load_and_every_score_matches_its_model) {
  StressOptions o = short_run("model-swap");
  o.rate = 100000;  // 0.3 s of load, so that several checkpoints (and swaps) fall inside it
  const StressReport r = run(o);
  BOOST_TEST(r.swaps >= 2);  // a rollout and a rollback at least
  BOOST_TEST(r.verified);
  BOOST_TEST(r.first_difference == "");
  BOOST_TEST(r.scores_checked > 0u);
  BOOST_TEST(r.scores_checked <= r.stats.customers);
}

BOOST_AUTO_TEST_CASE(an_unknown_scenario_is_a_usage_error) {
  StressReport r;
  BOOST_TEST(run_stress(short_run("no-such-scenario"), &r).is_invalid_argument());
}

// The check must fail when the engine loses or double counts: run the engine on a
// stream with one transaction missing (or applied twice under a new id) and compare
// with the reference of the full stream.
namespace {

std::vector<std::string> generated(int64_t events) {
  GeneratorOptions g;
  g.customers = 50;
  g.events = events;
  g.days = 35;
  EventGenerator gen(g);
  std::vector<std::string> lines;
  std::string line;
  while (gen.next(&line)) lines.push_back(line);
  return lines;
}

std::string customer_of(const std::string& line) {
  const auto at = line.find("\"customer_id\":\"") + 15;
  return line.substr(at, line.find('"', at) - at);
}

std::string check(const std::vector<std::string>& engine_lines, const std::vector<std::string>& reference_lines) {
  EngineOptions options;
  options.threads = 2;
  auto store = make_memory_store();
  EngineRun run;
  Status s = run_lines(engine_lines, options, 500, *store, &run);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  ReferenceOptions ro;
  ro.max_event_ns = kTestNow + options.max_future_skew_ns;
  ReferenceModel ref(ro);
  for (const auto& l : reference_lines) ref.feed_line(l);
  ref.finish();
  return first_difference(run.stats, run.items, ref.stats(), ref.items());
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_invariant_check_names_a_lost_or_double_counted_item) {
  const auto lines = generated(20000);
  BOOST_TEST(check(lines, lines) == "");
  // A transaction in the middle of the stream.
  std::size_t victim = lines.size() / 2;
  // (a transaction that is not redelivered later: a redelivery would stand in for it)
  while (lines[victim].find("\"transaction\"") == std::string::npos ||
         lines[victim].find("\"amount\":0.00") != std::string::npos ||
         std::count(lines.begin(), lines.end(), lines[victim]) != 1)
    ++victim;
  const std::string pk = "CUSTOMER#" + customer_of(lines[victim]);

  auto lost = lines;
  lost.erase(lost.begin() + static_cast<long>(victim));
  const std::string d1 = check(lost, lines);
  BOOST_TEST(d1.find("item " + pk) == 0, d1);
  BOOST_TEST(d1.find("counter read") != std::string::npos, d1);

  auto doubled = lines;
  std::string copy = lines[victim];
  const auto id = copy.find("\"event_id\":\"") + 12;
  copy.insert(id, "again-");  // the same event under another id: counted twice
  doubled.insert(doubled.begin() + static_cast<long>(victim) + 1, copy);
  const std::string d2 = check(doubled, lines);
  BOOST_TEST(d2.find("item " + pk) == 0, d2);
}
