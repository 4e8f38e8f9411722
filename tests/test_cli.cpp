// The `streamscore` binary end to end: help, errors and exit codes, generate ->
// replay -> export, determinism across shards, and the daemon (`run`) with a file
// source giving the same export as `replay`, also across a SIGTERM and a restart.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "tests/cli_support.hpp"

namespace fs = std::filesystem;
using namespace streamscore::testing;

namespace {

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

struct Fixture {
  TempDir dir;
  std::string log = dir / "events.jsonl";
  Fixture() {
    Result g = run_cli(dir,
                       "generate --customers 300 --events 40000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 7 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  }
  std::string replay_export(const std::string& name, const std::string& extra = "") {
    Result r = run_cli(dir, "replay --events " + log + " --state " + (dir / name) + " " + extra);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    Result e = run_cli(dir, "export --state " + (dir / name));
    BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    return e.out;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(help_and_version_answer_for_every_command) {
  TempDir dir;
  Result top = run_cli(dir, "--help");
  BOOST_TEST(top.exit_code == 0);
  for (const char* cmd : {"generate", "replay", "export", "run", "backfill", "status"}) {
    BOOST_TEST(top.out.find(cmd) != std::string::npos, cmd);
    Result h = run_cli(dir, std::string(cmd) + " --help");
    BOOST_TEST(h.exit_code == 0, cmd);
    BOOST_TEST(h.out.find("Example") != std::string::npos, cmd << " help has an example");
  }
  Result v = run_cli(dir, "--version");
  BOOST_TEST(v.exit_code == 0);
  BOOST_TEST(v.out.find("streamscore") != std::string::npos);
}

// The daemon links no test code: `stress` hands its arguments, --help included, to the
// streamscore-stress program built beside it.
BOOST_AUTO_TEST_CASE(stress_runs_the_test_kits_program_with_the_same_arguments) {
  TempDir dir;
  Result help = run_cli(dir, "stress --help");
  BOOST_TEST(help.exit_code == 0, help.err);
  BOOST_TEST(help.out.find("streamscore-stress") != std::string::npos, help.out);
  BOOST_TEST(help.out.find("--scenario") != std::string::npos, help.out);
  Result bad = run_cli(dir, "stress --scenario no-such-scenario");
  BOOST_TEST(bad.exit_code == 2);
  BOOST_TEST(bad.err.find("no-such-scenario") != std::string::npos, bad.err);
  Result run = run_cli(dir, "stress --scenario steady --rate 20000 --duration 0.5 --customers 500 --json");
  BOOST_TEST(run.exit_code == 0, run.err);
  BOOST_TEST(run.out.find("\"scenario\":\"steady\"") != std::string::npos, run.out);
}

BOOST_AUTO_TEST_CASE(usage_and_config_errors_exit_2_and_name_the_culprit) {
  TempDir dir;
  Result none = run_cli(dir, "");
  BOOST_TEST(none.exit_code == 2);
  Result unknown = run_cli(dir, "frobnicate");
  BOOST_TEST(unknown.exit_code == 2);
  Result missing = run_cli(dir, "replay --events " + (dir / "nope.jsonl") + " --state " + (dir / "s"));
  BOOST_TEST(missing.exit_code == 2);
  BOOST_TEST(missing.err.find("nope.jsonl") != std::string::npos);
  Result bad_key = run_cli(dir, "run --set window.alowed_lateness=5m");
  BOOST_TEST(bad_key.exit_code == 2);
  BOOST_TEST(bad_key.err.find("window.alowed_lateness") != std::string::npos, bad_key.err);
  std::ofstream(dir / "bad.toml") << "[engine]\nshards = 0\n";
  Result bad_value = run_cli(dir, "run --config " + (dir / "bad.toml"));
  BOOST_TEST(bad_value.exit_code == 2);
  BOOST_TEST(bad_value.err.find("engine.shards") != std::string::npos, bad_value.err);
  Result no_state = run_cli(dir, "export --state " + (dir / "absent"));
  BOOST_TEST(no_state.exit_code == 2);
}

BOOST_FIXTURE_TEST_CASE(replay_prints_balanced_counters_and_dead_letters_every_bad_record, Fixture) {
  const std::string dl = dir / "dl.jsonl";
  Result r = run_cli(dir, "replay --json --events " + log + " --state " + (dir / "s") + " --dead-letter " + dl);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("\"balanced\":true") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("\"read\":40000") != std::string::npos, r.out);
  const auto at = r.out.find("\"dead_lettered\":");
  BOOST_REQUIRE(at != std::string::npos);
  const std::size_t dead = std::stoul(r.out.substr(at + 16));
  BOOST_TEST(dead > 0u);
  BOOST_TEST(count_lines(slurp(dl)) == dead);
}

// With many shards a replay ingests more files into RocksDB's level 0 than its write
// limits allow, and RocksDB logs a warning while it compacts them: the `--json` summary
// stays the only line on stdout (logs go to stderr), and the items are those of one shard.
BOOST_FIXTURE_TEST_CASE(replay_json_stays_one_line_on_stdout_with_many_shards, Fixture) {
  Result r = run_cli(dir, "replay --json --shards 40 --events " + log + " --state " + (dir / "s40"));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(count_lines(r.out) == 1u, r.out);
  BOOST_TEST(r.out.rfind("{\"command\":\"replay\"", 0) == 0u, r.out);
  Result e = run_cli(dir, "export --state " + (dir / "s40"));
  BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.err);
  BOOST_TEST(e.out == replay_export("s1", "--shards 1"));
}

BOOST_FIXTURE_TEST_CASE(replay_is_byte_identical_across_runs_and_shard_counts, Fixture) {
  const std::string a = replay_export("s1", "--shards 1");
  const std::string b = replay_export("s8", "--shards 8 --batch-size 100");
  const std::string c = replay_export("s8", "--shards 8");  // replay clears the old state
  BOOST_TEST(count_lines(a) > 250u);
  BOOST_TEST(a == b);
  BOOST_TEST(a == c);
}

BOOST_FIXTURE_TEST_CASE(daemon_with_a_file_source_exports_what_replay_exports, Fixture) {
  const std::string replayed = replay_export("replayed");
  Result run = run_cli(dir, "run --set source.kind=file --set source.path=" + log +
                                " --set source.exit_at_end=true --set state.path=" + (dir / "daemon") +
                                " --set dead_letter.path=" + (dir / "daemon-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  BOOST_TEST(run.out.find("top 5 customers") != std::string::npos);
  Result e = run_cli(dir, "export --state " + (dir / "daemon"));
  BOOST_TEST(e.out == replayed);
}

BOOST_FIXTURE_TEST_CASE(sigterm_drains_and_a_restart_continues_to_the_same_export, Fixture) {
  const std::string replayed = replay_export("replayed");
  // Half of the log first; the daemon follows the file and is stopped with SIGTERM.
  const std::string all = slurp(log);
  std::size_t half = all.find('\n', all.size() / 2) + 1;
  const std::string live = dir / "live.jsonl";
  std::ofstream(live, std::ios::binary) << all.substr(0, half);
  const std::string state = dir / "live-state";
  const pid_t pid = spawn_streamscore(
      {"run", "--set", "source.path=" + live, "--set", "source.exit_at_end=false", "--set", "state.path=" + state,
       "--set", "dead_letter.path=" + (dir / "live-dl.jsonl"), "--set", "checkpoint.interval=50ms"},
      dir / "live-out.txt");
  BOOST_REQUIRE(pid > 0);
  // Append the rest while it runs, then stop it.
  wait_until_open(state);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(half, (all.size() - half) / 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ::kill(pid, SIGTERM);
  BOOST_TEST(streamscore::wait_for_exit(pid) == 0);
  // The rest of the file, then a bounded restart on the same state.
  std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(half + (all.size() - half) / 2);
  Result rest = run_cli(dir, "run --set source.path=" + live + " --set source.exit_at_end=true" +
                                 " --set state.path=" + state + " --set dead_letter.path=" + (dir / "live-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  Result e = run_cli(dir, "export --state " + state);
  BOOST_TEST(e.out == replayed);
}

BOOST_FIXTURE_TEST_CASE(an_interrupted_replay_is_refused_not_misread, Fixture) {
  // A replay writes without checkpoints (bulk load): killed half-way, its state is
  // neither complete nor a checkpoint, and must not be resumed.
  const std::string big = dir / "big.jsonl";
  Result g = run_cli(dir, "generate --customers 20000 --events 1500000 --seed 3 --out " + big);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  const std::string state = dir / "killed";
  const pid_t pid = spawn_streamscore({"replay", "--events", big, "--state", state}, "/dev/null");
  BOOST_REQUIRE(pid > 0);
  // The replay marks the state "rebuilding" and flushes that mark (an .sst file) before
  // it reads anything: kill it once the mark is on disk, however slow the machine.
  auto marked = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state, ec))
      if (e.path().extension() == ".sst") return true;
    return false;
  };
  for (int i = 0; i < 3000 && !marked(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "the replay finished before it was killed");
  Result again = run_cli(dir, "run --set source.path=" + log + " --set state.path=" + state);
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(again.err.find("interrupted rebuild") != std::string::npos, again.err);
  BOOST_TEST(again.err.find("replay") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_generator_source_holds_its_rate_and_balances) {
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  Result r = run_cli(dir,
                     "run --json --set source.kind=generator --set source.events=3000"
                     " --set source.rate=5000 --set state.path=" +
                         (dir / "gen") + " --set dead_letter.path=" + (dir / "gen-dl.jsonl"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("\"read\":3000,") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("\"balanced\":true") != std::string::npos);
  // 3000 records at 5000/s cannot take less than 0.6 s; only a lower bound is checked.
  BOOST_TEST(seconds >= 0.5);
}
