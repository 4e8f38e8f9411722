// Model rollout under load: the daemon (`run`, generator source) scores items with the
// active model while several swaps, a rollback and a refused model happen as events
// flow. Counters balance, no event is lost or applied twice (features equal a replay
// of the same events), and every item ends with the active version's score.
#define BOOST_TEST_MODULE rollout
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/spawn.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"
#include "model/scorer.hpp"
#include "model_support.hpp"

using namespace streamscore;
using streamscore::testing::slurp;
using streamscore::testing::TempDir;
namespace fs = std::filesystem;

namespace {

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Waits until `file` contains `needle` (at most 60 s: sanitizer builds are slow); true when it does.
bool wait_for(const std::string& file, const std::string& needle, std::size_t from = 0) {
  for (int i = 0; i < 6000; ++i) {
    const std::string text = slurp(file);
    if (text.size() > from && text.find(needle, from) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_TEST_MESSAGE("timed out waiting for '" << needle << "' in:\n" << slurp(file));
  return false;
}

// The item without score, model_version and version: what must equal the replay.
std::string without_model(const std::string& item) {
  static const std::regex kModel(R"(,"score":[^,]*,"model_version":"v[0-9]+")");
  static const std::regex kVersion(R"(,"version":[0-9]+\})");
  return std::regex_replace(std::regex_replace(item, kModel, ""), kVersion, "}");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(swaps_and_a_rollback_under_load_converge_to_the_active_version) {
  TempDir dir;
  const std::string bin = STREAMSCORE_BINARY, models = dir / "models";
  const std::string gen = "--customers 2000 --events 150000 --days 45 --seed 42";
  // The same events as the daemon's generator source, for training and for the replay.
  BOOST_REQUIRE(run(bin + " generate " + gen + " --out " + dir / "events.jsonl > /dev/null 2>&1") == 0);
  for (const char* options : {"--rounds 5", "--rounds 10", "--rounds 5 --max-depth 2", "--rounds 3"})
    BOOST_REQUIRE(run(bin + " train --events " + dir / "events.jsonl" + " --models " + models + " " + options +
                      " > /dev/null") == 0);
  // v4 reads avg_amount_30d over another window than the engine's: the daemon must refuse it.
  std::string meta4 = slurp(models + "/" + meta_file_name(4));
  meta4.replace(meta4.find("\"avg_amount_30d\"]"), 17,
                R"({"name":"avg_amount_30d","definition":"aggregation=avg event_types=[transaction] field=amount )"
                R"(scale=2 window=7d"}])");
  std::ofstream(models + "/" + meta_file_name(4)) << meta4;
  BOOST_REQUIRE(run(bin + " model activate v1 --models " + models + " > /dev/null") == 0);

  const std::string log = dir / "run.err", summary = dir / "run.json";
  int daemon_exit = -1;
  std::thread daemon([&] {
    daemon_exit = run(bin + " run --json --top 0 --set source.kind=generator " +
                      "--set source.customers=2000 --set source.events=150000 --set source.days=45 " +
                      "--set source.seed=42 --set source.rate=30000 --set state.path=" + dir / "state" +
                      " --set dead_letter.path=" + dir / "dead.jsonl" + " --set model.dir=" + models +
                      " --set model.poll_interval_ms=100 --set http.port=0 --set checkpoint.interval=200ms > " +
                      summary + " 2> " + log);
  });
  auto activate = [&](const std::string& args) {
    BOOST_TEST(run(bin + " model " + args + " --models " + models + " > /dev/null") == 0, args);
  };
  BOOST_TEST(wait_for(log, "model: v1 active; watching"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  activate("activate v2");
  BOOST_TEST(wait_for(log, "model: v2 loaded and checked; swapping (was v1)"));
  activate("activate v3");
  BOOST_TEST(wait_for(log, "model: v3 loaded and checked; swapping (was v2)"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  activate("rollback");  // back to v2
  BOOST_TEST(wait_for(log, "model: v2 loaded and checked; swapping (was v3)"));
  // A reference to a refused model (written directly: `model activate` would refuse it).
  const std::string active = slurp(models + "/active.json");
  std::ofstream(models + "/active.json.tmp") << "{\"active\":\"v4\",\"history\":[\"v1\",\"v2\"]}\n";
  fs::rename(models + "/active.json.tmp", models + "/active.json");
  BOOST_TEST(wait_for(log,
                      "model v4 refused: feature schema mismatch: feature \"avg_amount_30d\" is defined "
                      "differently (model: aggregation=avg event_types=[transaction] field=amount scale=2 "
                      "window=7d; engine: aggregation=avg event_types=[transaction] field=amount scale=2 "
                      "window=30d)"));
  BOOST_TEST(wait_for(log, "; v2 stays active"));
  BOOST_TEST(slurp(summary).empty());  // still running: the swaps happened while events flowed
  std::ofstream(models + "/active.json.tmp") << active;
  fs::rename(models + "/active.json.tmp", models + "/active.json");
  const std::size_t after_swaps = slurp(log).size();
  BOOST_TEST(wait_for(log, "model: re-score to v2 complete", after_swaps - 200));
  daemon.join();
  BOOST_TEST(daemon_exit == 0, slurp(log));
  const std::string stats = slurp(summary);
  BOOST_TEST(stats.find("\"read\":150000") != std::string::npos, stats);
  BOOST_TEST(stats.find("\"balanced\":true") != std::string::npos, stats);

  BOOST_REQUIRE(run(bin + " export --state " + dir / "state" + " --out " + dir / "daemon.jsonl") == 0);
  BOOST_REQUIRE(run(bin + " replay --events " + dir / "events.jsonl" + " --state " + dir / "replay" + " > /dev/null") ==
                0);
  BOOST_REQUIRE(run(bin + " export --state " + dir / "replay" + " --out " + dir / "replay.jsonl") == 0);
  const auto daemon_items = lines_of(slurp(dir / "daemon.jsonl"));
  const auto replay_items = lines_of(slurp(dir / "replay.jsonl"));
  BOOST_REQUIRE(daemon_items.size() == replay_items.size());
  BOOST_REQUIRE(daemon_items.size() > 1000u);
  LoadedModel v2;
  BOOST_REQUIRE(load_model(models, 2, 1, FeatureSet::defaults(), &v2).is_ok());
  static const std::regex kFeatures(
      R"re("total_txn_30d":([0-9]+),"total_amount_30d":([0-9.]+),.*"score":([^,]+),"model_version":"(v[0-9]+)")re");
  std::size_t mismatched = 0, not_v2 = 0;
  for (std::size_t i = 0; i < daemon_items.size(); ++i) {
    if (without_model(daemon_items[i]) != without_model(replay_items[i])) ++mismatched;
    std::smatch m;
    if (!std::regex_search(daemon_items[i], m, kFeatures) || m[4] != "v2") {
      ++not_v2;
      continue;
    }
    const int64_t cents = std::llround(std::stod(m[2].str()) * 100);
    std::vector<float> score;
    BOOST_REQUIRE(score_items(v2, {default_item_values(std::stoll(m[1].str()), cents)}, &score).is_ok());
    std::string expected;
    append_score(expected, score[0]);
    BOOST_TEST(m[3].str() == expected, daemon_items[i]);
  }
  BOOST_TEST(mismatched == 0u);  // no event lost or applied twice
  BOOST_TEST(not_v2 == 0u);      // every item carries the active version's score
}

// A restart on items scored by another version: the daemon re-scores them to the active
// model in the background (each re-score is a new version of the item), and reports it.
BOOST_AUTO_TEST_CASE(a_restart_re_scores_stored_items_to_the_active_version) {
  TempDir dir;
  const std::string bin = STREAMSCORE_BINARY, models = dir / "models", log = dir / "events.jsonl";
  BOOST_REQUIRE(run(bin + " generate --customers 1000 --events 60000 --days 40 --seed 3 --out " + log +
                    " > /dev/null 2>&1") == 0);
  for (const char* options : {"--rounds 4", "--rounds 8"})
    BOOST_REQUIRE(run(bin + " train --events " + log + " --models " + models + " " + options + " > /dev/null") == 0);
  BOOST_REQUIRE(run(bin + " model activate v1 --models " + models + " > /dev/null") == 0);
  BOOST_REQUIRE(
      run(bin + " replay --events " + log + " --state " + dir / "state" + " --models " + models + " > /dev/null") == 0);
  BOOST_REQUIRE(run(bin + " export --state " + dir / "state" + " --out " + dir / "before.jsonl") == 0);
  BOOST_REQUIRE(run(bin + " model activate v2 --models " + models + " > /dev/null") == 0);

  // The daemon follows the same log (all duplicates now) on the replayed state.
  std::vector<std::string> args = {bin,     "run",
                                   "--set", "source.path=" + log,
                                   "--set", "source.exit_at_end=false",
                                   "--set", "state.path=" + dir / "state",
                                   "--set", "dead_letter.path=" + dir / "dead.jsonl",
                                   "--set", "model.dir=" + models,
                                   "--set", "model.rescore_rate=2000",
                                   "--set", "checkpoint.interval=200ms",
                                   "--set", "http.port=0"};
  const pid_t pid = spawn_process(args, dir / "run.out", dir / "run.err");
  BOOST_REQUIRE(pid > 0);
  // Throttled to 2000 items/s: 1000 items take about half a second; progress is reported.
  const bool converged = wait_for(dir / "run.err", "model: re-score to v2 complete");
  ::kill(pid, SIGTERM);
  const int code = wait_for_exit(pid);
  BOOST_REQUIRE(converged);
  BOOST_TEST(code == 0, slurp(dir / "run.err"));
  BOOST_REQUIRE(run(bin + " export --state " + dir / "state" + " --out " + dir / "after.jsonl") == 0);
  const auto before = lines_of(slurp(dir / "before.jsonl")), after = lines_of(slurp(dir / "after.jsonl"));
  BOOST_REQUIRE(before.size() == after.size());
  BOOST_REQUIRE(!before.empty());
  static const std::regex kVersion(R"re("model_version":"(v[0-9]+)","version":([0-9]+)\})re");
  std::size_t checked = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    std::smatch b, a;
    BOOST_REQUIRE(std::regex_search(before[i], b, kVersion));
    BOOST_REQUIRE(std::regex_search(after[i], a, kVersion));
    BOOST_TEST(b[1] == "v1");
    BOOST_TEST(a[1] == "v2");
    BOOST_TEST(std::stoll(a[2].str()) == std::stoll(b[2].str()) + 1);  // the re-score is one write
    BOOST_TEST(without_model(after[i]) == without_model(before[i]));
    ++checked;
  }
  BOOST_TEST(checked == before.size());
}

// Scores are committed with the checkpoints: a daemon killed with SIGKILL and restarted
// ends with exactly the items (scores and versions included) of an uninterrupted run.
BOOST_AUTO_TEST_CASE(a_killed_scoring_daemon_resumes_to_the_same_items) {
  TempDir dir;
  const std::string bin = STREAMSCORE_BINARY, models = dir / "models", log = dir / "events.jsonl";
  BOOST_REQUIRE(run(bin + " generate --customers 1000 --events 80000 --days 40 --seed 5 --out " + log +
                    " > /dev/null 2>&1") == 0);
  BOOST_REQUIRE(run(bin + " train --events " + log + " --models " + models + " --rounds 6 > /dev/null") == 0);
  BOOST_REQUIRE(run(bin + " model activate v1 --models " + models + " > /dev/null") == 0);
  auto daemon = [&](const std::string& state) {
    return std::vector<std::string>{bin,     "run",
                                    "--top", "0",
                                    "--set", "source.path=" + log,
                                    "--set", "state.path=" + state,
                                    "--set", "dead_letter.path=" + state + ".dead",
                                    "--set", "model.dir=" + models,
                                    "--set", "checkpoint.interval=20ms",
                                    "--set", "engine.batch_size=2000",
                                    "--set", "http.port=0"};
  };
  std::string cmd;
  for (const auto& a : daemon(dir / "whole")) cmd += a + " ";
  BOOST_REQUIRE(run(cmd + "> /dev/null 2>&1") == 0);
  // The same run, killed while it reads (a shorter wait each time the run ends first: a
  // fast machine reads the log in well under a second), then run again to the end.
  std::vector<std::string> args = daemon(dir / "killed");
  bool killed = false;
  for (int wait_ms : {150, 50, 20, 5, 1}) {
    std::filesystem::remove_all(dir / "killed");
    std::filesystem::remove(dir / "killed.dead");
    const pid_t pid = spawn_process(args, "/dev/null", "/dev/null");
    BOOST_REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if ((killed = WIFSIGNALED(status))) break;  // killed, not finished
  }
  BOOST_TEST_REQUIRE(killed, "every run ended before its kill");
  cmd.clear();
  for (const auto& a : daemon(dir / "killed")) cmd += a + " ";
  BOOST_REQUIRE(run(cmd + "> /dev/null 2>&1") == 0);
  BOOST_REQUIRE(run(bin + " export --state " + dir / "whole" + " --out " + dir / "whole.jsonl") == 0);
  BOOST_REQUIRE(run(bin + " export --state " + dir / "killed" + " --out " + dir / "killed.jsonl") == 0);
  const std::string whole = slurp(dir / "whole.jsonl");
  BOOST_TEST(whole.find("\"model_version\":\"v1\"") != std::string::npos);
  BOOST_TEST(lines_of(whole).size() > 900u);
  BOOST_TEST((whole == slurp(dir / "killed.jsonl")));
}
