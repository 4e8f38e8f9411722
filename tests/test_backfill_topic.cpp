// `streamscore backfill --kafka-topic`: a topic read from its beginning, against
// librdkafka's mock cluster. The backfill equals a bounded `run` of the topic, leaves the
// daemons' consumer group and its committed offsets alone, resumes after a SIGKILL to
// the export of one uninterrupted backfill (stopping at the ends of its first start
// while the topic grows), and refuses --events with --kafka-topic.
#define BOOST_TEST_MODULE backfill_topic
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include "tests/cli_support.hpp"
#include "tests/kafka_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr const char* kTopic = "customer-events";
constexpr int32_t kPartitions = 8;

std::vector<std::string> sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

struct Fixture {
  TempDir dir{"streamscore-backfill-topic-"};
  std::unique_ptr<MockKafkaCluster> cluster;
  std::string log = dir / "events.jsonl";

  Fixture() {
    MockKafkaOptions options;
    options.brokers = 3;
    options.topics = {{kTopic, kPartitions}};
    BOOST_REQUIRE(MockKafkaCluster::start(options, &cluster).is_ok());
  }

  std::string bootstrap() const { return cluster->bootstrap_servers(); }

  // Generates a log (no late events: see test_kafka_source.cpp) and produces it keyed by customer.
  std::vector<std::string> produce_log(const std::string& args, const std::string& path) {
    Result g = run_cli(dir, "generate " + args + " --out " + path);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    std::vector<std::string> lines = lines_of_file(path);
    produce(bootstrap(), kTopic, keyed_by_customer(lines));
    return lines;
  }

  std::vector<std::string> backfill_args(const std::string& name, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"backfill",
                                     "--kafka-topic",
                                     kTopic,
                                     "--set",
                                     "kafka.bootstrap_servers=" + bootstrap(),
                                     "--set",
                                     "source.group_id=daemons",
                                     "--state",
                                     dir / name,
                                     "--dead-letter",
                                     dir / (name + "-dl.jsonl")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // A bounded run of the whole topic in a group of its own.
  void bounded_run(const std::string& name, const std::string& group) {
    Result run =
        run_cli(dir, words({"run", "--set", "source.kind=kafka", "--set", "kafka.bootstrap_servers=" + bootstrap(),
                            "--set", "source.exit_at_end=true", "--set", "source.group_id=" + group, "--set",
                            "state.path=" + (dir / name), "--set", "dead_letter.path=" + (dir / (name + "-dl.jsonl")),
                            "--set", "engine.batch_size=2048", "--top", "0"}));
    BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err + run.out);
  }

  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_topic_backfill_equals_a_bounded_run_and_leaves_the_group_alone, Fixture) {
  // The daemons' group has read the first part of the topic and committed its offsets.
  const auto first = produce_log(
      "--customers 500 --events 10000 --days 20 --bad-rate 0.01 --dup-rate 0.05 --late-rate 0 --seed 3", log);
  bounded_run("daemon", "daemons");
  const auto group_before = committed_offsets(bootstrap(), "daemons", kTopic, kPartitions);
  BOOST_REQUIRE(std::all_of(group_before.begin(), group_before.end(), [](const auto& p) { return p.second > 0; }));
  const auto rest = produce_log(
      "--customers 500 --events 20000 --days 40 --start 2025-01-21T00:00:00Z --bad-rate 0.01 --dup-rate 0.05 "
      "--late-rate 0 --seed 4",
      dir / "rest.jsonl");

  Result b = run_cli(dir, words(backfill_args("bf", {"--slice", "6h", "--json"})));
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.err + b.out);
  BOOST_TEST(b.out.find("\"read\":30000,") != std::string::npos, b.out);
  BOOST_TEST(b.out.find("\"balanced\":true") != std::string::npos, b.out);
  BOOST_TEST(b.out.find("\"slices\":") != std::string::npos, b.out);
  // The group's offsets did not move: the backfill neither joined nor committed.
  BOOST_TEST((committed_offsets(bootstrap(), "daemons", kTopic, kPartitions) == group_before));

  // A bounded run of the same topic from its beginning: the same items, the same dead
  // letters (with their topic/partition:offset sources), in whatever order they came.
  bounded_run("whole", "compare");
  BOOST_TEST(export_of("bf") == export_of("whole"));
  BOOST_TEST((sorted(lines_of_file(dir / "bf-dl.jsonl")) == sorted(lines_of_file(dir / "whole-dl.jsonl"))));
  BOOST_TEST(!lines_of_file(dir / "bf-dl.jsonl").empty());

  Result again = run_cli(dir, words(backfill_args("bf", {"--slice", "6h"})));
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  BOOST_TEST(again.out.find("already complete") != std::string::npos, again.out);
  BOOST_TEST(export_of("bf") == export_of("whole"));
}

BOOST_FIXTURE_TEST_CASE(a_topic_backfill_killed_mid_way_resumes_to_the_export_of_one_backfill, Fixture) {
  produce_log("--customers 3000 --events 100000 --days 40 --bad-rate 0.01 --dup-rate 0.05 --late-rate 0 --seed 21",
              log);
  Result whole = run_cli(dir, words(backfill_args("whole", {"--slice", "6h"})));
  BOOST_REQUIRE_MESSAGE(whole.exit_code == 0, whole.err);

  // Throttled so that it is still running when it is killed; the throttle is not part of
  // what makes it the same backfill, so the resume runs at full speed.
  const auto args = backfill_args("bf", {"--slice", "6h"});
  auto throttled = args;
  throttled.insert(throttled.end(), {"--max-writes-per-sec", "5000"});
  const pid_t pid = spawn_streamscore(throttled, dir / "bf-out.txt", dir / "bf-err.txt");
  BOOST_REQUIRE(pid > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "the backfill finished before it was killed");

  // The topic grows meanwhile: the resume stops at the end offsets of the first start.
  produce_log("--customers 3000 --events 5000 --days 2 --start 2025-02-05T00:00:00Z --late-rate 0 --seed 22",
              dir / "later.jsonl");
  Result rest = run_cli(dir, words(args) + " --json");
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err + rest.out);
  BOOST_TEST(
      rest.err.find("resuming from the last committed slice (customer-events, next offsets") != std::string::npos,
      rest.err);
  BOOST_TEST(rest.out.find("\"balanced\":true") != std::string::npos, rest.out);
  BOOST_TEST(export_of("bf") == export_of("whole"));  // versions included
  // Each bad record is dead-lettered once, as in the uninterrupted backfill.
  BOOST_TEST((sorted(lines_of_file(dir / "bf-dl.jsonl")) == sorted(lines_of_file(dir / "whole-dl.jsonl"))));
}

BOOST_FIXTURE_TEST_CASE(events_and_kafka_topic_exclude_each_other, Fixture) {
  std::ofstream(log) << "";
  Result both = run_cli(dir, "backfill --events " + log + " --kafka-topic " + kTopic +
                                 " --set kafka.bootstrap_servers=" + bootstrap() + " --state " + (dir / "x"));
  BOOST_TEST(both.exit_code == 2);
  BOOST_TEST(both.err.find("--events and --kafka-topic") != std::string::npos, both.err);
  Result neither = run_cli(dir, "backfill --state " + (dir / "x"));
  BOOST_TEST(neither.exit_code == 2);
  BOOST_TEST(neither.err.find("--events or --kafka-topic") != std::string::npos, neither.err);
  Result no_brokers = run_cli(dir, "backfill --kafka-topic " + std::string(kTopic) + " --state " + (dir / "x"));
  BOOST_TEST(no_brokers.exit_code == 2);
  BOOST_TEST(no_brokers.err.find("kafka.bootstrap_servers") != std::string::npos, no_brokers.err);
  Result part =
      run_cli(dir, "backfill --kafka-topic " + std::string(kTopic) + " --set kafka.bootstrap_servers=" + bootstrap() +
                       " --part 1/2 --state " + (dir / "x"));
  BOOST_TEST(part.exit_code == 2);
  BOOST_TEST(part.err.find("--part") != std::string::npos, part.err);
  Result bad_property =
      run_cli(dir, "backfill --kafka-topic " + std::string(kTopic) + " --set kafka.bootstrap_servers=" + bootstrap() +
                       " --set kafka.fetch.wait.max.ms=abc --state " + (dir / "x"));
  BOOST_TEST(bad_property.exit_code == 2);
  BOOST_TEST(bad_property.err.find("fetch.wait.max.ms") != std::string::npos, bad_property.err);
}
