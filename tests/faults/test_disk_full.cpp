// Issue 16, class 7: a full disk aborted `run` (SIGABRT inside RocksDB, reached through
// its info LOG on the same disk). A full disk must end in exit 1 with a message that
// says so and names the path, and a restart with space must resume exactly: the export
// and the dead letters equal those of an uninterrupted run.
#define BOOST_TEST_MODULE fault_disk_full
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>

#include "tests/cli_support.hpp"
#include "tests/faults/mount_support.hpp"

using namespace streamscore::testing;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

struct Input {
  TempDir dir{"streamscore-fault-full-"};
  std::string events = dir / "events.jsonl";
  std::string mount = dir / "small";
  Input() {
    Result g =
        run_cli(dir, "generate --customers 3000 --events 60000 --days 5 --bad-rate 0.05 --seed 2 --out " + events);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    fs::create_directories(mount);
  }
  std::string run_command(const std::string& state, const std::string& dead_letter, const std::string& name) const {
    return "\"$STREAMSCORE\" run --set http.port=0 --set source.path=" + events + " --set state.path=" + state +
           " --set dead_letter.path=" + dead_letter + " > " + (dir / (name + ".out")) + " 2> " +
           (dir / (name + ".err")) + "; echo $? > " + (dir / (name + ".rc")) + "\n";
  }
  int rc(const std::string& name) const { return std::stoi(slurp(dir / (name + ".rc"))); }
  // The same run on a disk with room: what a resumed run must equal.
  void uninterrupted(std::string* items, std::string* dead_letters) {
    Result r = run_cli(dir, "run --set source.path=" + events + " --set state.path=" + (dir / "reference") +
                                " --set dead_letter.path=" + (dir / "reference-dl.jsonl"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    *items = export_of(dir, dir / "reference");
    *dead_letters = slurp(dir / "reference-dl.jsonl");
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_full_state_disk_fails_cleanly_and_resumes_exactly, Input,
                        *boost::unit_test::precondition(CanMount{})) {
  const std::string state = mount + "/state", dead_letter = mount + "/dl.jsonl";
  const int script = run_in_mount_namespace(
      dir, "mount -t tmpfs -o size=2m tmpfs " + mount + " || exit 1\n" + run_command(state, dead_letter, "full") +
               "mount -o remount,size=256m " + mount + "\n" + run_command(state, dead_letter, "again") +
               "\"$STREAMSCORE\" export --state " + state + " --out " + (dir / "items.jsonl") + " && cp " +
               dead_letter + " " + (dir / "dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(script == 0, slurp(dir / "namespace.out"));
  const std::string err = slurp(dir / "full.err");
  BOOST_TEST(rc("full") == 1, err);
  BOOST_TEST(lower(err).find("no space left on device") != std::string::npos, err);
  BOOST_TEST(err.find(mount) != std::string::npos, "the message names the path: " << err);
  BOOST_TEST(rc("again") == 0, slurp(dir / "again.err"));
  std::string items, dead_letters;
  uninterrupted(&items, &dead_letters);
  BOOST_TEST(slurp(dir / "items.jsonl") == items);
  BOOST_TEST(slurp(dir / "dl.jsonl") == dead_letters);
}
