// Fault class: `streamscore mock-kafka` deleted the oldest records of a partition past
// about 5 MB (librdkafka's mock retention, fixed in its source) with no word (issue 16,
// class 8). The limit cannot be lifted, so mock-kafka states it when it starts and
// `generate --kafka` says which partition lost which records, and how much it wrote there.
#define BOOST_TEST_MODULE fault_mock_retention
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <string>

#include "tests/cli_support.hpp"

using namespace streamscore::testing;

namespace {

// A mock-kafka child with one topic of `partitions` partitions, stopped at the end.
struct MockKafka {
  TempDir& dir;
  pid_t pid = -1;
  std::string bootstrap;

  MockKafka(TempDir& d, int partitions) : dir(d) {
    pid = spawn_streamscore({"mock-kafka", "--brokers", "1", "--partitions", std::to_string(partitions)},
                            dir / "mock.out", dir / "mock.err");
    BOOST_REQUIRE(pid > 0);
    BOOST_REQUIRE(wait_for([&] { return slurp(dir / "mock.out").find('\n') != std::string::npos; }, 20));
    const std::string out = slurp(dir / "mock.out");
    bootstrap = out.substr(0, out.find('\n'));
  }
  ~MockKafka() {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  std::string log() const { return slurp(dir / "mock.err"); }
};

// The first offset still held by each partition of customer-events, as kcat reads it.
std::map<int, long> first_offsets(const TempDir& dir, const std::string& bootstrap) {
  const std::string out = dir / "kcat.out";
  const std::string cmd = "timeout 60 kcat -b " + bootstrap + " -C -t customer-events -e -q -f '%p %o\\n' > " + out;
  BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
  std::map<int, long> first;
  std::istringstream in(slurp(out));
  for (int p = 0; in >> p;) {
    long offset = 0;
    in >> offset;
    first.emplace(p, offset);  // kcat prints a partition's messages in offset order
  }
  return first;
}

}  // namespace

BOOST_AUTO_TEST_CASE(mock_kafka_states_its_retention_when_it_starts) {
  TempDir dir("streamscore-fault-mock-start-");
  MockKafka mock(dir, 2);
  BOOST_REQUIRE(wait_for([&] { return mock.log().find("Ctrl-C") != std::string::npos; }, 20));
  const std::string log = mock.log();
  BOOST_TEST(
      log.find("each partition keeps its newest 5 MiB (5242880 bytes) or 100000 produce batches") != std::string::npos,
      log);
  BOOST_TEST(log.find("older records are deleted") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(generate_names_each_partition_the_mock_cut_and_what_it_wrote_there) {
  TempDir dir("streamscore-fault-mock-cut-");
  MockKafka mock(dir, 2);
  const Result small = run_cli(dir, "generate --events 2000 --kafka " + mock.bootstrap);
  BOOST_REQUIRE_MESSAGE(small.exit_code == 0, small.err);
  BOOST_TEST(small.err.find("warning") == std::string::npos, small.err);  // nothing deleted
  // About 13 MB more over 2 partitions: each passes 5 MiB.
  const Result r = run_cli(dir, "generate --events 100000 --customers 1000 --kafka " + mock.bootstrap);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::map<int, long> first = first_offsets(dir, mock.bootstrap);
  BOOST_REQUIRE_EQUAL(first.size(), 2u);
  for (const auto& [partition, offset] : first) {
    BOOST_TEST_REQUIRE(offset > 0);  // the mock did delete records: the warning must say so
    const std::regex warning("generate: warning: topic customer-events partition " + std::to_string(partition) +
                             ": the broker deleted its oldest " + std::to_string(offset) + " records \\(offsets 0 to " +
                             std::to_string(offset - 1) +
                             "\\); this run wrote [0-9]+\\.[0-9] MiB to it\\. librdkafka's mock cluster "
                             "\\(streamscore mock-kafka\\) keeps at most 5 MiB");
    BOOST_TEST(std::regex_search(r.err, warning), r.err);
  }
}
