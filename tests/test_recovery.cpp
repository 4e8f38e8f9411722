// Crash recovery end to end: a daemon killed with SIGKILL at random moments, again and
// again, resumes from its last checkpoint and ends with exactly the export (versions
// included) and the dead-letter file of an uninterrupted run. And states that are
// corrupted, foreign or built differently are refused at start, untouched.
#define BOOST_TEST_MODULE recovery
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include "state/store.hpp"
#include "tests/cli_support.hpp"

namespace fs = std::filesystem;
using namespace streamscore::testing;

namespace {

struct Fixture {
  TempDir dir{"streamscore-recovery-"};
  std::string log = dir / "events.jsonl";
  Fixture() {
    Result g = run_cli(dir,
                       "generate --customers 2000 --events 200000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 11 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  }

  std::vector<std::string> run_args(const std::string& name, const std::string& source, bool exit_at_end) const {
    return {"run",
            "--set",
            "source.path=" + source,
            "--set",
            std::string("source.exit_at_end=") + (exit_at_end ? "true" : "false"),
            "--set",
            "state.path=" + (dir / name),
            "--set",
            "dead_letter.path=" + (dir / (name + "-dl.jsonl")),
            "--set",
            "checkpoint.interval=20ms",
            "--set",
            "engine.batch_size=4096"};
  }

  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }

  // A state built by a complete replay, for the corruption cases.
  std::string replayed_state(const std::string& name) {
    Result r = run_cli(dir, "replay --events " + log + " --state " + (dir / name));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return dir / name;
  }
};

std::map<std::string, std::uintmax_t> listing(const std::string& dir) {
  std::map<std::string, std::uintmax_t> files;
  for (const auto& e : fs::directory_iterator(dir))
    files[e.path().filename().string()] = e.is_regular_file() ? e.file_size() : 0;
  return files;
}

}  // namespace

// The log grows in slices while a follower daemon runs on it; after each slice the
// daemon is killed with SIGKILL at a random moment (while loading, reading, applying,
// or committing a checkpoint). Then a bounded run finishes the log.
BOOST_FIXTURE_TEST_CASE(twenty_five_kills_give_the_export_of_an_uninterrupted_run, Fixture) {
  Result whole = run_cli(dir, words(run_args("whole", log, true)));
  BOOST_REQUIRE_MESSAGE(whole.exit_code == 0, whole.err);
  const std::string expected = export_of("whole");
  const std::string expected_dead_letters = slurp(dir / "whole-dl.jsonl");

  const std::string all = slurp(log);
  const std::string live = dir / "live.jsonl";
  std::ofstream(live, std::ios::binary).close();
  constexpr int kKills = 25;
  std::mt19937 rng(20261125);
  std::size_t written = 0;
  int killed = 0;
  for (int k = 0; k < kKills; ++k) {
    // Append the next slice, cut at a line end.
    std::size_t until = all.find('\n', all.size() * (k + 1) / (kKills + 1));
    until = until == std::string::npos ? all.size() : until + 1;
    std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(written, until - written);
    written = until;
    const pid_t pid = spawn_streamscore(run_args("killed", live, false), dir / "killed-out.txt");
    BOOST_REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed;
  }
  std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(written);
  Result rest = run_cli(dir, words(run_args("killed", live, true)));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST(killed == kKills);
  // The source positions in the dead letter name the file; make them comparable.
  std::string dead_letters = slurp(dir / "killed-dl.jsonl");
  for (std::size_t at; (at = dead_letters.find("live.jsonl:")) != std::string::npos;)
    dead_letters.replace(at, 10, "events.jsonl");
  const std::string got = export_of("killed");
  BOOST_TEST((got == expected), "the export after " << killed << " kills differs");
  BOOST_TEST((dead_letters == expected_dead_letters), "the dead letters after kills differ");
}

BOOST_FIXTURE_TEST_CASE(another_state_format_is_refused, Fixture) {
  const std::string state = replayed_state("old-format");
  {
    std::unique_ptr<streamscore::StateStore> store;
    BOOST_REQUIRE(streamscore::open_rocksdb_store(state, &store).is_ok());
    BOOST_REQUIRE(store->put_meta("format", "streamscore-state-1").is_ok());
    BOOST_REQUIRE(store->sync().is_ok());
  }
  Result r = run_cli(dir, "run --set source.path=" + log + " --set state.path=" + state);
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("state format 'streamscore-state-1'") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("replay") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_state_built_with_other_settings_is_refused, Fixture) {
  const std::string state = replayed_state("settings");
  Result r =
      run_cli(dir, "run --set source.path=" + log + " --set state.path=" + state + " --set window.allowed_lateness=5m");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("window.allowed_lateness") != std::string::npos, r.err);
}

BOOST_FIXTURE_TEST_CASE(a_truncated_database_is_refused_and_left_alone, Fixture) {
  const std::string state = replayed_state("truncated");
  fs::path biggest;
  for (const auto& e : fs::directory_iterator(state))
    if (e.path().extension() == ".sst" && (biggest.empty() || e.file_size() > fs::file_size(biggest)))
      biggest = e.path();
  BOOST_REQUIRE(!biggest.empty());
  fs::resize_file(biggest, fs::file_size(biggest) / 2);
  const auto before = listing(state);
  Result r = run_cli(dir, "run --set source.path=" + log + " --set state.path=" + state);
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("Corruption") != std::string::npos, r.err);
  Result e = run_cli(dir, "export --state " + state);
  BOOST_TEST(e.exit_code == 1);
  // LOG files aside, nothing in the directory changed.
  auto after = listing(state);
  for (auto* m : {&after, const_cast<std::map<std::string, std::uintmax_t>*>(&before)})
    for (auto it = m->begin(); it != m->end();) it = it->first.rfind("LOG", 0) == 0 ? m->erase(it) : std::next(it);
  BOOST_TEST((after == before));
}

BOOST_FIXTURE_TEST_CASE(a_directory_that_is_not_a_state_is_refused, Fixture) {
  const std::string foreign = dir / "foreign";
  fs::create_directories(foreign);
  std::ofstream(foreign + "/notes.txt") << "mine\n";
  Result r = run_cli(dir, "run --set source.path=" + log + " --set state.path=" + foreign);
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("no RocksDB database") != std::string::npos, r.err);
  BOOST_TEST(listing(foreign).size() == 1u);
  Result x = run_cli(dir, "replay --events " + log + " --state " + foreign);
  BOOST_TEST(x.exit_code == 1);
  BOOST_TEST(listing(foreign).size() == 1u);
}

// The generator source resumes by the number of records it had produced: killed with
// SIGKILL mid-stream, the same command continues to the export of an uninterrupted run.
BOOST_FIXTURE_TEST_CASE(the_generator_source_resumes_after_a_kill, Fixture) {
  auto args = [&](const std::string& name, bool rated) {
    std::vector<std::string> a = {"run",
                                  "--set",
                                  "source.kind=generator",
                                  "--set",
                                  "source.events=12000",
                                  "--set",
                                  "source.customers=300",
                                  "--set",
                                  "state.path=" + (dir / name),
                                  "--set",
                                  "dead_letter.path=" + (dir / (name + "-dl.jsonl")),
                                  "--set",
                                  "checkpoint.interval=20ms"};
    if (rated) a.insert(a.end(), {"--set", "source.rate=6000"});
    return a;
  };
  Result whole = run_cli(dir, words(args("gen-whole", false)));
  BOOST_REQUIRE_MESSAGE(whole.exit_code == 0, whole.err);
  const pid_t pid = spawn_streamscore(args("gen-killed", true), dir / "gen-out.txt");
  BOOST_REQUIRE(pid > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "the generator run finished before it was killed");
  Result rest = run_cli(dir, words(args("gen-killed", false)));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST(rest.out.find("12000 records") == std::string::npos, "the restart began again from 0");
  BOOST_TEST((export_of("gen-killed") == export_of("gen-whole")));
  BOOST_TEST((slurp(dir / "gen-killed-dl.jsonl") == slurp(dir / "gen-whole-dl.jsonl")));
}

// A bounded run's last commit is one ingestion of SST files (docs/semantics.md, section
// 12): nothing of it stays in the write-ahead log for the next start to replay, and that
// start goes on from it exactly.
BOOST_FIXTURE_TEST_CASE(a_bounded_runs_last_commit_leaves_no_log_to_replay, Fixture) {
  Result first = run_cli(dir, words(run_args("bounded", log, true)));
  BOOST_REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  std::uintmax_t log_bytes = 0, table_bytes = 0;
  for (const auto& [name, size] : listing(dir / "bounded")) {
    if (fs::path(name).extension() == ".log") log_bytes += size;
    if (fs::path(name).extension() == ".sst") table_bytes += size;
  }
  BOOST_TEST(table_bytes > 100'000u);
  BOOST_TEST(log_bytes < 4096u, log_bytes << " bytes of write-ahead log left to replay");
  const std::string expected = export_of("bounded");
  Result again = run_cli(dir, words(run_args("bounded", log, true)));  // nothing new to read
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  BOOST_TEST((export_of("bounded") == expected));
}
