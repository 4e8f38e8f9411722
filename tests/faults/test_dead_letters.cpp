// Issue 16, class 4: dead letters lost silently. A dead-letter file shorter than the
// length the last checkpoint recorded (cut by hand, lost by a power loss, removed) must
// be refused with the file and both lengths named, not appended to as if nothing were
// missing; a longer one (a crash after the write, before the checkpoint) is cut back.
#define BOOST_TEST_MODULE fault_dead_letters
#include <boost/test/unit_test.hpp>

#include "tests/cli_support.hpp"

using namespace streamscore::testing;

namespace {

struct Daemon {
  TempDir dir{"streamscore-fault-dl-"};
  std::string events = dir / "events.jsonl";
  std::string state = dir / "state";
  std::string dead_letter = dir / "dl.jsonl";

  Daemon() {
    Result g = run_cli(dir, "generate --customers 50 --events 3000 --days 5 --bad-rate 0.05 --seed 1 --out " + events);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    Result r = run();
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    BOOST_REQUIRE(fs::file_size(dead_letter) > 1000);
  }
  Result run() {
    return run_cli(dir, "run --set source.path=" + events + " --set state.path=" + state +
                            " --set dead_letter.path=" + dead_letter);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_dead_letter_file_shorter_than_the_checkpoint_is_refused, Daemon) {
  const std::string recorded = std::to_string(fs::file_size(dead_letter));
  fs::resize_file(dead_letter, 1000);
  Result r = run();
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find(dead_letter) != std::string::npos, r.err);
  BOOST_TEST(r.err.find("1000") != std::string::npos, r.err);
  BOOST_TEST(r.err.find(recorded) != std::string::npos, r.err);
  BOOST_TEST(fs::file_size(dead_letter) == 1000u, "the short file is left as it was");
  // Refused again: nothing was recorded over the loss.
  BOOST_TEST(run().exit_code == 1);
}

BOOST_FIXTURE_TEST_CASE(a_removed_dead_letter_file_is_refused, Daemon) {
  fs::remove(dead_letter);
  Result r = run();
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find(dead_letter) != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(dead_letter), "no empty file is created in its place");
}

BOOST_FIXTURE_TEST_CASE(a_longer_dead_letter_file_is_cut_back_and_a_shorter_one_refused, Daemon) {
  // Lines after the checkpoint (a crash before the checkpoint recorded them) go again.
  const std::string before = slurp(dead_letter);
  std::ofstream(dead_letter, std::ios::app) << "{\"reason\":\"not_json\",\"raw\":\"written after";
  Result r = run();
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(slurp(dead_letter) == before);
  // A file replaced by a shorter one through a symlink is refused like the file itself.
  const std::string other = dir / "other.jsonl";
  std::ofstream(other) << before.substr(0, before.size() / 2);
  fs::remove(dead_letter);
  fs::create_symlink(other, dead_letter);
  Result s = run();
  BOOST_TEST(s.exit_code == 1, s.err);
  BOOST_TEST(s.err.find(dead_letter) != std::string::npos, s.err);
}
