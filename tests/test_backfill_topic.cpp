// `streamscore backfill --kafka-topic`: a topic read from its beginning, against
// librdkafka's mock cluster. The backfill equals a bounded `run` of the topic, leaves the
// daemons' consumer group and its committed offsets alone, resumes after a SIGKILL to
// the export of one uninterrupted backfill (stopping at the ends of its first start
// while the topic grows), leaves a `run` of the topic to start at its end offsets, and
// refuses --events with --kafka-topic. In parts (--part K/P,
// DynamoDB), each part reads only its partitions, and the parts together leave the table
// of one topic backfill, also with a part killed and resumed.
#define BOOST_TEST_MODULE backfill_topic
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"
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

  const auto args = backfill_args("bf", {"--slice", "6h"});
  kill_throttled_backfill(args, dir / "bf-out.txt", dir / "bf-err.txt", "5000", std::chrono::milliseconds(2500));

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

namespace {

// The number after "name": in a --json summary (-1 when absent).
long long summary_number(const std::string& summary, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const std::size_t at = summary.find(key);
  return at == std::string::npos ? -1 : std::stoll(summary.substr(at + key.size()));
}

}  // namespace

// Three parts read the 8 partitions once between them (3 + 3 + 2), part 2 killed once it
// has committed a slice and resumed; the parts that finish first wait for the others, so
// that the final tick is the topic's. The table equals one topic backfill's, versions
// included; the dead letters are split by partition.
BOOST_FIXTURE_TEST_CASE(parts_read_only_their_partitions_and_give_the_table_of_one_backfill, Fixture) {
  Dynalite dynalite;
  const auto lines = produce_log(
      "--customers 300 --events 30000 --days 40 --dup-rate 0.05 --bad-rate 0.005 --late-rate 0 --seed 41", log);
  // The topic's last event, days after the rest, is in one part's partition: the other
  // parts' final tick must still be at its window, where transactions have left theirs.
  std::vector<std::string> ids;
  for (const auto& line : lines) ids.push_back(customer_id_of(line));
  const auto in_part_1 = std::find_if(ids.begin(), ids.end(), [](const std::string& id) {
    return !id.empty() && kafka_partition_of_key(id, kPartitions) % 3 == 0;
  });
  BOOST_REQUIRE(in_part_1 != ids.end());
  produce(bootstrap(), kTopic,
          {{*in_part_1, true,
            R"({"event_id":"tail","customer_id":")" + *in_part_1 +
                R"(","event_time":"2025-02-20T00:00:00Z","event_type":"transaction","amount":10})"}});
  const std::string backfill = "backfill --kafka-topic " + std::string(kTopic) +
                               " --set kafka.bootstrap_servers=" + bootstrap() + " --slice 1d --json";
  const DynamoDbOptions single = dynalite.fresh_table();
  Result one = run_cli(dir, backfill + table_sets(single) + " --dead-letter " + (dir / "one-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.err + one.out);
  const std::string expected = run_cli(dir, "export" + table_sets(single)).out;
  BOOST_REQUIRE(std::count(expected.begin(), expected.end(), '\n') > 250);

  const DynamoDbOptions table = dynalite.fresh_table();
  auto part_words = [&](int k, const std::string& extra) {
    std::vector<std::string> out;
    std::istringstream in(backfill + table_sets(table) + " --part " + std::to_string(k) + "/3 --dead-letter " +
                          (dir / ("p" + std::to_string(k) + "-dl.jsonl")) + extra);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  const pid_t killed = spawn_streamscore(part_words(2, " --max-writes-per-sec 20 --set engine.batch_size=256"),
                                         dir / "p2.out", dir / "p2.err");
  BOOST_REQUIRE(killed > 0);
  BOOST_REQUIRE_MESSAGE(wait_for_table_items(table, 60), slurp(dir / "p2.err"));  // a slice is in
  ::kill(killed, SIGKILL);
  int status = 0;
  ::waitpid(killed, &status, 0);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "part 2 finished before it was killed");
  BOOST_REQUIRE_MESSAGE(slurp(dir / "p2.err").find("has read its partitions") == std::string::npos,
                        "part 2 read its partitions before it was killed");
  const pid_t first = spawn_streamscore(part_words(1, ""), dir / "p1.out", dir / "p1.err");
  const pid_t third = spawn_streamscore(part_words(3, ""), dir / "p3.out", dir / "p3.err");
  BOOST_REQUIRE(first > 0 && third > 0);
  // Part 1 waits for part 2, which is not running: the final tick needs every part's end.
  BOOST_REQUIRE_MESSAGE(
      wait_for([&] { return slurp(dir / "p1.err").find("waiting for part(s) 2") != std::string::npos; }, 60),
      slurp(dir / "p1.err") + slurp(dir / "p1.out"));
  Result resumed = run_cli(dir, words(part_words(2, "")));
  BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err + resumed.out);
  BOOST_TEST(resumed.err.find("resuming") != std::string::npos, resumed.err);
  for (const pid_t pid : {first, third}) {
    int part_status = 0;
    ::waitpid(pid, &part_status, 0);
    BOOST_TEST((WIFEXITED(part_status) && WEXITSTATUS(part_status) == 0));
  }
  BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected);

  // Parts 1 and 3, never interrupted, read their partitions only: not the whole topic each.
  const long long read_1 = summary_number(slurp(dir / "p1.out"), "read");
  const long long read_3 = summary_number(slurp(dir / "p3.out"), "read");
  BOOST_TEST((read_1 > 0 && read_3 > 0 && read_1 + read_3 < 30000), read_1 << " + " << read_3);
  std::vector<std::string> split;
  for (int k = 1; k <= 3; ++k)
    for (const auto& line : lines_of_file(dir / ("p" + std::to_string(k) + "-dl.jsonl"))) split.push_back(line);
  BOOST_TEST((sorted(split) == sorted(lines_of_file(dir / "one-dl.jsonl"))));
  BOOST_TEST(!split.empty());

  Result again = run_cli(dir, backfill + table_sets(table) + " --part 3/3");
  BOOST_TEST(again.exit_code == 0);
  BOOST_TEST(again.out.find("already complete") != std::string::npos, again.out);
}

// A `run` of the topic on a topic backfill's state continues at the end offsets the
// backfill read to, not at the beginning (nor at a group's offsets): it reads only the
// records produced since, and the features are those of one bounded run of everything.
BOOST_FIXTURE_TEST_CASE(a_run_after_a_topic_backfill_starts_at_its_end_offsets, Fixture) {
  produce_log("--customers 300 --events 6000 --days 20 --bad-rate 0.01 --dup-rate 0.05 --late-rate 0 --seed 51", log);
  Result b = run_cli(dir, words(backfill_args("bf")));
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.err + b.out);
  const auto later = produce_log(
      "--customers 300 --events 2000 --days 5 --start 2025-01-22T00:00:00Z --dup-rate 0 --late-rate 0 --seed 52",
      dir / "later.jsonl");
  Result run =
      run_cli(dir, words({"run", "--set", "source.kind=kafka", "--set", "kafka.bootstrap_servers=" + bootstrap(),
                          "--set", "source.exit_at_end=true", "--set", "source.group_id=never-committed", "--set",
                          "state.path=" + (dir / "bf"), "--top", "0", "--json"}));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err + run.out);
  BOOST_TEST(summary_number(run.out, "read") == static_cast<long long>(later.size()), run.out);
  BOOST_TEST(summary_number(run.out, "duplicates") == 0, run.out);
  bounded_run("whole", "compare");
  BOOST_TEST(features_only(export_of("bf")) == features_only(export_of("whole")));
}
