// Issue 16, class 6 (damaged or replaced inputs and state taken as new) and the state
// and CLI items of class 8: a state that is not complete is refused untouched, an input
// that is not the file the state has read is refused, an output that is the input is
// refused, a missing source is a configuration error, and `export` reads a state it
// cannot write and refuses an interrupted replay.
#define BOOST_TEST_MODULE fault_damaged_state
#include <boost/test/unit_test.hpp>

#include <map>
#include <sstream>

#include "state/store.hpp"
#include "tests/cli_support.hpp"
#include "tests/faults/mount_support.hpp"

using namespace streamscore::testing;

namespace {

struct Finished {
  TempDir dir{"streamscore-fault-state-"};
  std::string events = dir / "events.jsonl";
  std::string state = dir / "state";
  std::string dead_letter = dir / "dl.jsonl";

  Finished() {
    generate(events, 1, 3000);
    Result r = run();
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  void generate(const std::string& out, int seed, int count) {
    Result g = run_cli(dir, "generate --customers 50 --days 5 --bad-rate 0.05 --seed " + std::to_string(seed) +
                                " --events " + std::to_string(count) + " --out " + out);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  }
  Result run(const std::string& extra = "") {
    return run_cli(dir, "run --json --set source.path=" + events + " --set state.path=" + state +
                            " --set dead_letter.path=" + dead_letter + " " + extra);
  }
};

// Names and sizes of the files in a directory: what "untouched" compares.
std::map<std::string, uintmax_t> listing(const std::string& dir) {
  std::map<std::string, uintmax_t> files;
  for (const auto& entry : fs::directory_iterator(dir)) files[entry.path().filename().string()] = entry.file_size();
  return files;
}

// Like run_cli, killed after 60 s: a daemon that eats its own dead letters never ends,
// and the test must fail rather than hang.
Result run_bounded(const TempDir& dir, const std::string& args) {
  const std::string out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd =
      "timeout -s KILL 60 " + std::string(STREAMSCORE_BINARY) + " " + with_free_port(args) + " > " + out + " 2> " + err;
  const int status = std::system(cmd.c_str());
  return Result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::string head_lines(const std::string& text, std::size_t lines) {
  std::size_t at = 0;
  for (std::size_t i = 0; i < lines && at != std::string::npos; ++i) at = text.find('\n', at + 1);
  return text.substr(0, at == std::string::npos ? text.size() : at + 1);
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_state_without_CURRENT_is_refused_untouched, Finished) {
  fs::remove(fs::path(state) / "CURRENT");
  const auto before = listing(state);
  const std::string dead_letters = slurp(dead_letter);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result r = run();
    BOOST_TEST(r.exit_code == 1, r.err);
    BOOST_TEST(r.err.find(state) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("CURRENT") != std::string::npos, r.err);
  }
  BOOST_TEST((listing(state) == before), "the damaged state is left as it was");
  BOOST_TEST(slurp(dead_letter) == dead_letters);
  Result e = run_cli(dir, "export --state " + state);
  BOOST_TEST(e.exit_code == 1, e.err);
  BOOST_TEST((listing(state) == before));
}

BOOST_FIXTURE_TEST_CASE(a_replaced_input_is_refused_and_a_copy_is_continued, Finished) {
  const std::string original = slurp(events);
  // Shorter than what the state has read.
  std::ofstream(events, std::ios::trunc) << head_lines(original, 100);
  Result shorter = run();
  BOOST_TEST(shorter.exit_code == 1, shorter.err);
  BOOST_TEST(shorter.err.find(events) != std::string::npos, shorter.err);
  BOOST_TEST(shorter.err.find(std::to_string(original.size())) != std::string::npos, shorter.err);
  // Another file, longer than what the state has read.
  generate(events, 2, 6000);
  Result other = run();
  BOOST_TEST(other.exit_code == 1, other.err);
  BOOST_TEST(other.err.find(events) != std::string::npos, other.err);
  // The same bytes under a new inode (a copy, a restore) with new records appended: the
  // state continues after what it has read.
  fs::remove(events);
  std::ofstream(events) << original << head_lines(original, 10);
  Result copy = run();
  BOOST_TEST(copy.exit_code == 0, copy.err);
  BOOST_TEST(copy.out.find("\"read\":10,") != std::string::npos, copy.out);
}

BOOST_FIXTURE_TEST_CASE(the_same_input_by_another_name_continues_where_it_stopped, Finished) {
  // Read again from its beginning, it would dead-letter every bad line a second time.
  const std::string dead_letters = slurp(dead_letter);
  std::ofstream(events, std::ios::app) << head_lines(slurp(events), 10);
  fs::create_directories(dir / "sub");
  fs::create_symlink(events, dir / "link.jsonl");
  for (const std::string& name : {dir / "sub/../events.jsonl", dir / "link.jsonl"}) {
    Result r = run_cli(dir, "run --json --set source.path=" + name + " --set state.path=" + state +
                                " --set dead_letter.path=" + dead_letter);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.find(name == dir / "link.jsonl" ? "\"read\":0," : "\"read\":10,") != std::string::npos,
               name << ": " << r.out);
  }
  BOOST_TEST(slurp(dead_letter).compare(0, dead_letters.size(), dead_letters) == 0);
  BOOST_TEST(slurp(dead_letter).size() < dead_letters.size() * 3 / 2, "no dead letter is written twice");
}

BOOST_FIXTURE_TEST_CASE(a_dead_letter_path_that_is_the_source_is_refused, Finished) {
  const std::string log = slurp(events);
  fs::create_symlink(events, dir / "link.jsonl");
  fs::create_hard_link(events, dir / "hard.jsonl");
  fs::create_directories(dir / "sub");
  for (const std::string& same : {events, dir / "link.jsonl", dir / "hard.jsonl", dir / "sub/../events.jsonl"}) {
    Result r = run_bounded(dir, "run --set source.path=" + events + " --set state.path=" + (dir / "fresh") +
                                    " --set source.exit_at_end=false --set dead_letter.path=" + same);
    BOOST_TEST(r.exit_code == 2, same << ": " << r.err);
    BOOST_TEST(r.err.find("dead_letter.path") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("source.path") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(dir / "fresh"), "refused before the state is created");
    Result replay =
        run_bounded(dir, "replay --events " + events + " --state " + (dir / "fresh") + " --dead-letter " + same);
    BOOST_TEST(replay.exit_code == 2, same << ": " << replay.err);
    BOOST_TEST(replay.err.find(same) != std::string::npos, replay.err);
  }
  BOOST_TEST(slurp(events) == log, "the input is untouched");
}

BOOST_AUTO_TEST_CASE(a_missing_source_is_a_configuration_error_before_anything_starts) {
  TempDir dir("streamscore-fault-source-");
  fs::create_directories(dir / "a-directory");
  for (const std::string& source : {dir / "absent.jsonl", dir / "a-directory"}) {
    Result r = run_cli(dir, "run --set source.path=" + source + " --set state.path=" + (dir / "state"));
    BOOST_TEST(r.exit_code == 2, source << ": " << r.err);
    BOOST_TEST(r.err.find("source.path") != std::string::npos, r.err);
    BOOST_TEST(r.err.find(source) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("http listening") == std::string::npos, "no HTTP server was started");
    BOOST_TEST(!fs::exists(dir / "state"), "no state was created");
  }
}

BOOST_AUTO_TEST_CASE(export_refuses_an_interrupted_replay) {
  TempDir dir("streamscore-fault-export-");
  const std::string events = dir / "events.jsonl", state = dir / "state";
  BOOST_REQUIRE(run_cli(dir, "generate --customers 20 --events 500 --seed 4 --out " + events).exit_code == 0);
  BOOST_REQUIRE(run_cli(dir, "replay --events " + events + " --state " + state).exit_code == 0);
  {  // What a replay killed before its last write leaves: items, and the session mark.
    std::unique_ptr<streamscore::StateStore> store;
    BOOST_REQUIRE(streamscore::open_rocksdb_store(state, &store).is_ok());
    BOOST_REQUIRE(store->put_meta("session", "rebuilding").is_ok());
    BOOST_REQUIRE(store->sync().is_ok());
  }
  Result e = run_cli(dir, "export --state " + state);
  BOOST_TEST(e.exit_code == 1, e.err);
  BOOST_TEST(e.err.find("interrupted rebuild") != std::string::npos, e.err);
  BOOST_TEST(e.out.empty());
}

BOOST_AUTO_TEST_CASE(export_reads_a_read_only_state, *boost::unit_test::precondition(CanMount{})) {
  TempDir dir("streamscore-fault-readonly-");
  const std::string events = dir / "events.jsonl", state = dir / "state";
  BOOST_REQUIRE(run_cli(dir, "generate --customers 20 --events 500 --seed 4 --out " + events).exit_code == 0);
  BOOST_REQUIRE(run_cli(dir, "replay --events " + events + " --state " + state).exit_code == 0);
  const std::string expected = export_of(dir, state);
  BOOST_REQUIRE(!expected.empty());
  const int rc =
      run_in_mount_namespace(dir, "mount --bind " + state + " " + state + " && mount -o remount,ro,bind " + state +
                                      " && \"$STREAMSCORE\" export --state " + state + " --out " + (dir / "ro.jsonl"));
  BOOST_TEST(rc == 0, slurp(dir / "namespace.out"));
  BOOST_TEST(slurp(dir / "ro.jsonl") == expected);
}
