// `streamscore backfill` end to end: the same export as `replay`, a resume after a
// SIGKILL mid-slice, a re-run that changes nothing, the --since/--until range, and
// usage errors.
#define BOOST_TEST_MODULE backfill
#include <boost/test/unit_test.hpp>

#include "config/config.hpp"
#include "io/event_parser.hpp"
#include "tests/cli_support.hpp"

using namespace streamscore::testing;

namespace {

struct Fixture {
  TempDir dir{"streamscore-backfill-"};
  std::string log = dir / "events.jsonl";
  Fixture() {
    Result g = run_cli(dir,
                       "generate --customers 3000 --events 300000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 21 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  }
  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }
  std::string replayed(const std::string& events) {
    Result r = run_cli(dir, "replay --events " + events + " --state " + (dir / "replayed"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return export_of("replayed");
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_backfill_gives_the_export_of_a_replay_and_a_rerun_changes_nothing, Fixture) {
  const std::string expected = replayed(log);
  Result b =
      run_cli(dir, "backfill --events " + log + " --state " + (dir / "bf") + " --slice 1d --partitions 3 --json");
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.err);
  BOOST_TEST(b.out.find("\"balanced\":true") != std::string::npos, b.out);
  BOOST_TEST(b.out.find("\"slices\":") != std::string::npos);
  BOOST_TEST((export_of("bf") == expected));
  Result again = run_cli(dir, "backfill --events " + log + " --state " + (dir / "bf") + " --slice 1d --partitions 3");
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  BOOST_TEST(again.out.find("already complete") != std::string::npos, again.out);
  BOOST_TEST((export_of("bf") == expected));
}

BOOST_FIXTURE_TEST_CASE(a_backfill_killed_mid_slice_resumes_after_its_last_slice, Fixture) {
  const std::string expected = replayed(log);
  const std::vector<std::string> args = {
      "backfill", "--events", log, "--state", dir / "bf", "--slice", "6h", "--dead-letter", dir / "bf-dl.jsonl"};
  kill_throttled_backfill(args, dir / "bf-out.txt");
  std::string line;
  for (const auto& a : args) line += a + " ";
  Result rest = run_cli(dir, line);
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST(rest.err.find("resuming from the last committed slice") != std::string::npos, rest.err);
  BOOST_TEST((export_of("bf") == expected));
  // The dead letter holds each bad record once, as the replay's does.
  Result r =
      run_cli(dir, "replay --events " + log + " --state " + (dir / "r2") + " --dead-letter " + (dir / "r2-dl.jsonl"));
  BOOST_REQUIRE(r.exit_code == 0);
  BOOST_TEST((slurp(dir / "bf-dl.jsonl") == slurp(dir / "r2-dl.jsonl")));
}

BOOST_FIXTURE_TEST_CASE(a_resume_on_another_file_under_the_same_name_is_refused, Fixture) {
  const std::string expected = replayed(log);
  const std::vector<std::string> args = {"backfill", "--events", log, "--state", dir / "bf", "--slice", "6h"};
  kill_throttled_backfill(args, dir / "bf-out.txt");
  // Another log of the same size under the same name: read on from the old offset, it
  // would go on silently with other events.
  fs::rename(log, dir / "kept.jsonl");
  Result g = run_cli(dir,
                     "generate --customers 3000 --events 300000 --days 40 --bad-rate 0.01 "
                     "--dup-rate 0.05 --late-rate 0.01 --seed 22 --out " +
                         log);
  BOOST_REQUIRE(g.exit_code == 0);
  std::string line;
  for (const auto& a : args) line += a + " ";
  Result refused = run_cli(dir, line);
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.err.find("does not hold the bytes this backfill read") != std::string::npos, refused.err);
  // The file restored, the resume goes on and ends as a replay.
  fs::rename(dir / "kept.jsonl", log);
  Result rest = run_cli(dir, line);
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  BOOST_TEST((export_of("bf") == expected));
}

BOOST_FIXTURE_TEST_CASE(since_and_until_skip_the_events_outside, Fixture) {
  const std::string since = "2025-01-10T00:00:00Z", until = "2025-01-25T00:00:00Z";
  // The same range, cut out of the log beforehand: valid records outside are
  // dropped, everything else (bad records included) stays.
  int64_t since_ns = 0, until_ns = 0;
  BOOST_REQUIRE(streamscore::parse_utc_time(since, &since_ns).is_ok());
  BOOST_REQUIRE(streamscore::parse_utc_time(until, &until_ns).is_ok());
  std::ifstream in(log);
  std::ofstream out(dir / "cut.jsonl");
  std::string line;
  std::size_t dropped = 0;
  streamscore::EventParser parser;
  streamscore::ParsedEvent event;
  streamscore::ParseFailure failure;
  while (std::getline(in, line)) {
    if (parser.parse(line, {}, &event, &failure) && (event.time.ns < since_ns || event.time.ns >= until_ns)) {
      ++dropped;
      continue;
    }
    out << line << '\n';
  }
  out.close();
  const std::string expected = replayed(dir / "cut.jsonl");
  Result b = run_cli(dir, "backfill --events " + log + " --state " + (dir / "bf") + " --since " + since + " --until " +
                              until + " --json");
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.err);
  BOOST_TEST(b.out.find("\"out_of_range\":" + std::to_string(dropped) + ",") != std::string::npos,
             b.out << " dropped " << dropped);
  BOOST_TEST((export_of("bf") == expected));
}

BOOST_FIXTURE_TEST_CASE(bad_arguments_exit_2_and_name_the_option, Fixture) {
  Result slice = run_cli(dir, "backfill --events " + log + " --state " + (dir / "x") + " --slice 7m");
  BOOST_TEST(slice.exit_code == 2);
  BOOST_TEST(slice.err.find("--slice '7m'") != std::string::npos, slice.err);
  Result range = run_cli(dir, "backfill --events " + log + " --state " + (dir / "x") +
                                  " --since 2025-02-01T00:00:00Z --until 2025-01-01T00:00:00Z");
  BOOST_TEST(range.exit_code == 2);
  BOOST_TEST(range.err.find("--since must be before --until") != std::string::npos, range.err);
  Result missing = run_cli(dir, "backfill --events nope.jsonl --state " + (dir / "x"));
  BOOST_TEST(missing.exit_code == 2);
  BOOST_TEST(missing.err.find("nope.jsonl") != std::string::npos);
}
