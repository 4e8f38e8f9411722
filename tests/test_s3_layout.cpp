// A topic archived by Kafka Connect's S3 sink (s3rver on loopback):
// `topics/<topic>/partition=N/<topic>+N+<start offset>.json[.gz]`. `replay` and `backfill`
// read each partition in the order of its start offsets (numeric: unpadded offsets too)
// with that partition's clock, and equal a backfill of the topic itself (librdkafka's
// mock cluster). `backfill --part K/P` reads only the partitions of its share: P parts,
// one killed mid-object and resumed, leave the table of one backfill. A prefix that is
// not one topic's layout is a usage error naming the object.
#define BOOST_TEST_MODULE s3_layout
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <algorithm>
#include <csignal>
#include <map>

#include "io/partitioned_layout.hpp"
#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"
#include "tests/kafka_support.hpp"
#include "tests/s3rver_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr const char* kTopic = "customer-events";
constexpr const char* kPrefix = "s3://logs/topics/customer-events/";
constexpr int32_t kPartitions = 5;

std::vector<std::string> sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

void shell(const std::string& command) {
  const int status = std::system(command.c_str());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0, command);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The number after "name": in a --json summary (-1 when absent).
long long summary_number(const std::string& summary, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const std::size_t at = summary.find(key);
  return at == std::string::npos ? -1 : std::stoll(summary.substr(at + key.size()));
}

struct Fixture {
  S3rver s3;
  TempDir dir{"streamscore-s3-layout-"};
  std::vector<std::string> lines;
  std::map<int32_t, std::vector<std::string>> by_partition;  // as Kafka's default partitioner puts them

  // A log partitioned by customer (a bad record without one: by its line number) and
  // archived as Kafka Connect does, each partition in three objects starting at offsets
  // 0, 900 and 1800 (unpadded: "1800" sorts before "900" by name), the middle one gzip.
  explicit Fixture(const std::string& generate =
                       "--customers 400 --events 20000 --days 40 --bad-rate 0.01 --dup-rate 0.05 --late-rate 0.01 "
                       "--seed 12") {
    Result g = run_cli(dir, "generate " + generate + " --out " + (dir / "events.jsonl"));
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    lines = lines_of_file(dir / "events.jsonl");
    for (std::size_t i = 0; i < lines.size(); ++i) by_partition[partition_of_line(i)].push_back(lines[i]);
    for (const auto& [partition, records] : by_partition) {
      BOOST_REQUIRE(records.size() > 1800);
      put_object(partition, records, 0, 900, false);
      put_object(partition, records, 900, 1800, true);
      put_object(partition, records, 1800, records.size(), false);
    }
  }

  int32_t partition_of_line(std::size_t i) const {
    const std::string id = customer_id_of(lines[i]);
    return id.empty() ? static_cast<int32_t>(i % kPartitions) : kafka_partition_of_key(id, kPartitions);
  }

  void put_object(int32_t partition, const std::vector<std::string>& records, std::size_t from, std::size_t to,
                  bool gzip) {
    const std::string name = std::string(kTopic) + "+" + std::to_string(partition) + "+" + std::to_string(from);
    std::string content;
    for (std::size_t i = from; i < to; ++i) content += records[i] + "\n";
    const std::string plain = dir / name;
    std::ofstream(plain) << content;
    if (gzip) shell("gzip -f " + plain);
    s3.put("topics/" + std::string(kTopic) + "/partition=" + std::to_string(partition) + "/" + name +
               (gzip ? ".json.gz" : ".json"),
           slurp(gzip ? plain + ".gz" : plain));
  }

  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }
  Result replay(const std::string& events, const std::string& name) {
    return run_cli(dir, "replay --events " + events + " --state " + (dir / name) + " --dead-letter " +
                            (dir / (name + "-dl.jsonl")) + s3.sets());
  }
};

}  // namespace

// The same records as a topic of 5 partitions, each record in the partition of its
// object: a backfill of the topic and a replay or backfill of the archive give the same
// items, versions included, and dead-letter the same records (named by object and line).
BOOST_FIXTURE_TEST_CASE(the_archive_of_a_topic_reads_like_the_topic, Fixture) {
  std::unique_ptr<MockKafkaCluster> cluster;
  MockKafkaOptions options;
  options.topics = {{kTopic, kPartitions}, {"customer-events-dlq", 1}};
  BOOST_REQUIRE(MockKafkaCluster::start(options, &cluster).is_ok());
  std::vector<KafkaRecord> records;
  for (const auto& [partition, values] : by_partition)
    for (const auto& value : values) {
      const std::string id = customer_id_of(value);
      records.push_back({id, !id.empty(), value, partition});
    }
  produce(cluster->bootstrap_servers(), kTopic, records);
  Result topic = run_cli(dir, "backfill --kafka-topic " + std::string(kTopic) +
                                  " --set kafka.bootstrap_servers=" + cluster->bootstrap_servers() + " --state " +
                                  (dir / "topic") + " --dead-letter " + (dir / "topic-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(topic.exit_code == 0, topic.err + topic.out);
  const std::string expected = export_of("topic");

  Result replayed = replay(kPrefix, "replayed");
  BOOST_REQUIRE_MESSAGE(replayed.exit_code == 0, replayed.err);
  BOOST_TEST(export_of("replayed") == expected);
  const auto dead = lines_of_file(dir / "replayed-dl.jsonl");
  BOOST_TEST(dead.size() == lines_of_file(dir / "topic-dl.jsonl").size());
  BOOST_TEST(dead.front().find("\"source\":\"s3://logs/topics/customer-events/partition=0/customer-events+0+0.json:") !=
                 std::string::npos,
             dead.front());

  // To a dead-letter topic, a record of an object is labelled as read from a file (the
  // object, the line), not as a record of a topic named after the object.
  Result to_topic =
      run_cli(dir, "replay --events " + std::string(kPrefix) + " --state " + (dir / "dlq") +
                       " --set dead_letter.kind=kafka --set kafka.bootstrap_servers=" + cluster->bootstrap_servers() +
                       s3.sets());
  BOOST_REQUIRE_MESSAGE(to_topic.exit_code == 0, to_topic.err);
  shell("timeout 60 kcat -b " + cluster->bootstrap_servers() + " -C -t customer-events-dlq -e -q -f '%h\\n' > " +
        (dir / "dlq-headers.txt"));
  const auto headers = lines_of_file(dir / "dlq-headers.txt");
  BOOST_TEST(headers.size() == dead.size());
  for (const auto& h : headers) {
    BOOST_TEST(h.find(",source=s3://logs/topics/customer-events/partition=") != std::string::npos, h);
    BOOST_TEST(h.find("source_topic") == std::string::npos, h);
  }

  Result backfilled =
      run_cli(dir, "backfill --events " + std::string(kPrefix) + " --state " + (dir / "bf") + s3.sets());
  BOOST_REQUIRE_MESSAGE(backfilled.exit_code == 0, backfilled.err);
  BOOST_TEST(export_of("bf") == expected);
}

// Slices are committed on the clock of the partition being read: a backfill killed while
// it reads a later partition resumes in that partition, not after the first one. Kafka
// Connect keeps writing meanwhile (a new object, a new partition): the resume reads what
// the first start listed and ends with the export of one uninterrupted read of that.
BOOST_FIXTURE_TEST_CASE(a_backfill_killed_in_a_later_partition_resumes_in_it, Fixture) {
  Result whole = replay(kPrefix, "whole");
  BOOST_REQUIRE_MESSAGE(whole.exit_code == 0, whole.err);
  const std::vector<std::string> args =
      split_words("backfill --events " + std::string(kPrefix) + " --state " + (dir / "bf") + " --dead-letter " +
                  (dir / "bf-dl.jsonl") + " --slice 1d --set engine.batch_size=256" + s3.sets());
  std::vector<std::string> throttled = args;
  throttled.insert(throttled.end(), {"--max-writes-per-sec", "150"});
  const pid_t pid = spawn_streamscore(throttled, dir / "bf-out.txt", dir / "bf-err.txt");
  BOOST_REQUIRE(pid > 0);
  // Killed once it is well into partition 3 (the dead letters of its third object are written).
  BOOST_REQUIRE_MESSAGE(
      wait_for([&] { return slurp(dir / "bf-dl.jsonl").find("+3+1800.json:") != std::string::npos; }, 60),
      slurp(dir / "bf-err.txt"));
  kill_before_it_ends(pid, "the backfill");
  Result later = run_cli(dir,
                         "generate --customers 50 --events 2000 --days 3 --start 2025-02-12T00:00:00Z --seed 13 "
                         "--out " +
                             (dir / "later.jsonl"));
  BOOST_REQUIRE_MESSAGE(later.exit_code == 0, later.err);
  s3.put("topics/customer-events/partition=0/customer-events+0+999999.json", slurp(dir / "later.jsonl"));
  s3.put("topics/customer-events/partition=7/customer-events+7+0.json", slurp(dir / "later.jsonl"));
  Result rest = run_cli(dir, words(args));
  BOOST_REQUIRE_MESSAGE(rest.exit_code == 0, rest.err);
  const std::string resumed_in = "resuming from the last committed slice (s3://logs/topics/customer-events/partition=";
  const std::size_t at = rest.err.find(resumed_in);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, rest.err);
  BOOST_TEST(rest.err[at + resumed_in.size()] >= '3', rest.err);  // not back in a partition read before
  BOOST_TEST(export_of("bf") == export_of("whole"));              // versions included
  BOOST_TEST((slurp(dir / "bf-dl.jsonl") == slurp(dir / "whole-dl.jsonl")), "each bad record dead-lettered once");
}

// P = 1, 2 and 3 parts read the 5 partitions once between them; in P = 3, part 2 is
// killed in the middle of an object once a slice is in the table, and resumed while the
// others wait for it. Each time the table equals one backfill's, versions included, and
// the parts' dead letters together are its dead letters.
BOOST_FIXTURE_TEST_CASE(parts_read_only_their_partitions_and_give_the_table_of_one_backfill, Fixture) {
  Dynalite dynalite;
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);  // s3rver checks them; dynalite takes any
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  const std::string backfill = "backfill --events " + std::string(kPrefix) + " --slice 1d --json" + s3.sets();
  const DynamoDbOptions single = dynalite.fresh_table();
  Result one = run_cli(dir, backfill + table_sets(single) + " --dead-letter " + (dir / "one-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.err + one.out);
  const std::string expected = run_cli(dir, "export" + table_sets(single)).out;
  BOOST_REQUIRE(std::count(expected.begin(), expected.end(), '\n') > 350);
  const auto one_dead = sorted(lines_of_file(dir / "one-dl.jsonl"));
  BOOST_REQUIRE(!one_dead.empty());

  for (int parts = 1; parts <= 3; ++parts) {
    const DynamoDbOptions table = dynalite.fresh_table();
    auto part_words = [&](int k, const std::string& extra) {
      return split_words(backfill + table_sets(table) + " --part " + std::to_string(k) + "/" + std::to_string(parts) +
                         " --dead-letter " + (dir / ("p" + std::to_string(k) + "-dl.jsonl")) + extra);
    };
    auto out_of = [&](int k) { return dir / ("p" + std::to_string(k) + ".out"); };
    auto err_of = [&](int k) { return dir / ("p" + std::to_string(k) + ".err"); };
    if (parts == 3) {
      const pid_t killed = spawn_streamscore(part_words(2, " --max-writes-per-sec 20 --set engine.batch_size=256"),
                                             out_of(2), err_of(2));
      BOOST_REQUIRE(killed > 0);
      BOOST_REQUIRE_MESSAGE(wait_for_table_items(table, 60), slurp(err_of(2)));  // a slice is in
      kill_before_it_ends(killed, "part 2");
      BOOST_REQUIRE_MESSAGE(slurp(err_of(2)).find("has read its partitions") == std::string::npos,
                            "part 2 read its partitions before it was killed");
    }
    std::vector<pid_t> running;
    for (int k = 1; k <= parts; ++k)
      if (!(parts == 3 && k == 2)) running.push_back(spawn_streamscore(part_words(k, ""), out_of(k), err_of(k)));
    if (parts == 3) {
      BOOST_REQUIRE_MESSAGE(
          wait_for([&] { return slurp(err_of(1)).find("waiting for part(s) 2") != std::string::npos; }, 60),
          slurp(err_of(1)) + slurp(out_of(1)));
      Result resumed = run_cli(dir, words(part_words(2, "")));
      BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err + resumed.out);
      BOOST_TEST(resumed.err.find("resuming from the last committed slice (s3://logs/topics/") != std::string::npos,
                 resumed.err);
    }
    for (const pid_t pid : running) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), parts << " parts");
    }
    BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected, parts << " parts");
    std::vector<std::string> dead;
    long long read = 0;
    for (int k = 1; k <= parts; ++k) {
      for (const auto& line : lines_of_file(dir / ("p" + std::to_string(k) + "-dl.jsonl"))) dead.push_back(line);
      if (!(parts == 3 && k == 2)) read += summary_number(slurp(out_of(k)), "read");
    }
    BOOST_TEST((sorted(dead) == one_dead), parts << " parts");
    // The parts never interrupted read their partitions only: the log once between all.
    const std::size_t total = lines.size();
    if (parts < 3) BOOST_TEST(read == static_cast<long long>(total), parts << " parts");
    if (parts == 3) BOOST_TEST((read > 0 && read < static_cast<long long>(total)), read);
  }
}

// Numeric start offsets within a partition; name order when a partition holds a name
// that is not Kafka Connect's; prefixes without the layout stay in key order.
BOOST_AUTO_TEST_CASE(objects_are_ordered_by_partition_then_start_offset) {
  PartitionedLogs out;
  BOOST_REQUIRE(order_partitioned("s3://b/t/",
                                  {"s3://b/t/partition=10/t+10+5.json", "s3://b/t/partition=2/t+2+1000.json.gz",
                                   "s3://b/t/partition=2/t+2+999.json", "s3://b/t/partition=3/b.json",
                                   "s3://b/t/partition=3/t+3+9.json", "s3://b/t/partition=2/t+2+0000000000.json"},
                                  &out)
                    .is_ok());
  const std::vector<std::string> expected = {
      "s3://b/t/partition=2/t+2+0000000000.json", "s3://b/t/partition=2/t+2+999.json",
      "s3://b/t/partition=2/t+2+1000.json.gz",    "s3://b/t/partition=3/b.json",
      "s3://b/t/partition=3/t+3+9.json",          "s3://b/t/partition=10/t+10+5.json"};
  BOOST_TEST(out.logs == expected, boost::test_tools::per_element());
  BOOST_TEST((out.partitions == std::vector<int32_t>{2, 2, 2, 3, 3, 10}));
  BOOST_TEST(out.partition_count == 11);

  BOOST_REQUIRE(order_partitioned("s3://b/x/", {"s3://b/x/b.json", "s3://b/x/a.json"}, &out).is_ok());
  BOOST_TEST((out.logs == std::vector<std::string>{"s3://b/x/b.json", "s3://b/x/a.json"}));
  BOOST_TEST(out.partitions.empty());
  BOOST_TEST(out.partition_count == 0);
  // "partition=N" must be a whole directory with a number.
  BOOST_REQUIRE(
      order_partitioned("s3://b/", {"s3://b/partition=x/a", "s3://b/my-partition=1/a", "s3://b/partition=1"}, &out)
          .is_ok());
  BOOST_TEST(out.partition_count == 0);
}

// A resume reads the objects of the first start: those added since (a new object, a new
// partition) are left out; one removed from among them is an error naming its partition.
BOOST_AUTO_TEST_CASE(a_resume_keeps_to_the_objects_listed_at_the_first_start) {
  PartitionedLogs first;
  BOOST_REQUIRE(order_partitioned("s3://b/t/",
                                  {"s3://b/t/partition=0/t+0+0.json", "s3://b/t/partition=0/t+0+10.json",
                                   "s3://b/t/partition=1/t+1+0.json"},
                                  &first)
                    .is_ok());
  const std::string listing = encode_listing(first);
  PartitionedLogs now;
  BOOST_REQUIRE(order_partitioned("s3://b/t/",
                                  {"s3://b/t/partition=0/t+0+0.json", "s3://b/t/partition=0/t+0+10.json",
                                   "s3://b/t/partition=0/t+0+20.json", "s3://b/t/partition=1/t+1+0.json",
                                   "s3://b/t/partition=4/t+4+0.json"},
                                  &now)
                    .is_ok());
  BOOST_REQUIRE(keep_listed(listing, "s3://b/t/", &now).is_ok());
  BOOST_TEST(now.logs == first.logs, boost::test_tools::per_element());
  BOOST_TEST((now.partitions == first.partitions));
  BOOST_TEST(now.partition_count == 2);

  PartitionedLogs removed;
  BOOST_REQUIRE(
      order_partitioned("s3://b/t/", {"s3://b/t/partition=0/t+0+10.json", "s3://b/t/partition=1/t+1+0.json"}, &removed)
          .is_ok());
  const Status s = keep_listed(listing, "s3://b/t/", &removed);
  BOOST_TEST((s.code() == Status::Code::corruption));
  BOOST_TEST(s.message().find("partition=0 no longer holds the 2 objects") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(a_prefix_that_is_not_one_topics_layout_is_refused_naming_the_object) {
  auto error_of = [](std::vector<std::string> names) {
    PartitionedLogs out;
    const Status s = order_partitioned("s3://b/t/", std::move(names), &out);
    BOOST_TEST(s.is_invalid_argument());
    return s.message();
  };
  const std::string stray = error_of({"s3://b/t/partition=0/t+0+0.json", "s3://b/t/_SUCCESS"});
  BOOST_TEST(stray.find("'s3://b/t/_SUCCESS' has no partition=N") != std::string::npos, stray);
  const std::string misfiled = error_of({"s3://b/t/partition=0/t+1+0.json"});
  BOOST_TEST(misfiled.find("named for partition 1 but lies under partition=0") != std::string::npos, misfiled);
  const std::string two = error_of({"s3://b/t/a/partition=0/a+0+0.json", "s3://b/t/b/partition=1/b+1+0.json"});
  BOOST_TEST(two.find("two topics") != std::string::npos, two);
}

BOOST_FIXTURE_TEST_CASE(commands_refuse_what_they_cannot_read_as_a_layout, Fixture) {
  // A layout is read alone: its partitions' clocks are not those of another log.
  Result mixed = run_cli(dir, "replay --events " + std::string(kPrefix) + " --events " + (dir / "events.jsonl") +
                                  " --state " + (dir / "x") + s3.sets());
  BOOST_TEST(mixed.exit_code == 2, mixed.err);
  BOOST_TEST(mixed.err.find("give it as the only --events") != std::string::npos, mixed.err);
  // train and features read on one clock.
  Result train = run_cli(dir, "train --events " + std::string(kPrefix) + " --models " + (dir / "m") + s3.sets());
  BOOST_TEST(train.exit_code == 2, train.err);
  BOOST_TEST(train.err.find("partitioned layout") != std::string::npos, train.err);
  // Parts of one partition's prefix would split customers over a wrong partition count.
  Result one_partition = run_cli(dir, "backfill --events " + std::string(kPrefix) +
                                          "partition=3/ --part 1/2 --set state.backend=dynamodb" + s3.sets());
  BOOST_TEST(one_partition.exit_code == 2, one_partition.err);
  BOOST_TEST(one_partition.err.find("partition=0 holds no object") != std::string::npos, one_partition.err);
  // A stray object under the prefix: named, nothing read.
  s3.put("topics/customer-events/notes.txt", "not a record\n");
  Result stray = run_cli(dir, "backfill --events " + std::string(kPrefix) + " --state " + (dir / "y") + s3.sets());
  BOOST_TEST(stray.exit_code == 2, stray.err);
  BOOST_TEST(stray.err.find("s3://logs/topics/customer-events/notes.txt") != std::string::npos, stray.err);
}

// An archive of a topic whose last partition holds no record names one partition fewer
// than the topic has: --topic-partitions gives the count, so that the parts split the
// customers as the producers' partitioner did, and give the table of one backfill.
BOOST_FIXTURE_TEST_CASE(topic_partitions_counts_the_empty_last_partitions, Fixture) {
  for (const auto& [partition, records] : by_partition) {
    if (partition == kPartitions - 1) continue;
    std::string content;
    for (const std::string& record : records) content += record + "\n";
    const std::string name = std::string(kTopic) + "+" + std::to_string(partition) + "+0.json";
    s3.put("short/" + std::string(kTopic) + "/partition=" + std::to_string(partition) + "/" + name, content);
  }
  const std::string backfill = "backfill --events s3://logs/short/" + std::string(kTopic) + "/ --slice 1d" + s3.sets();
  Result fewer = run_cli(dir, backfill + " --state " + (dir / "g") + " --topic-partitions 3 --part 1/2");
  BOOST_TEST(fewer.exit_code == 2, fewer.err);
  BOOST_TEST(fewer.err.find("--topic-partitions 3: the layout holds partition=3") != std::string::npos, fewer.err);
  Result plain =
      run_cli(dir, "backfill --events " + (dir / "events.jsonl") + " --state " + (dir / "h") + " --topic-partitions 5");
  BOOST_TEST(plain.exit_code == 2, plain.err);
  BOOST_TEST(plain.err.find("--topic-partitions needs --events with partition=N objects") != std::string::npos,
             plain.err);

  Dynalite dynalite;
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);  // s3rver checks them; dynalite takes any
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  const DynamoDbOptions single = dynalite.fresh_table();
  Result one = run_cli(dir, backfill + table_sets(single) + " --dead-letter " + (dir / "one-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.err + one.out);
  const std::string expected = run_cli(dir, "export" + table_sets(single)).out;
  BOOST_REQUIRE(std::count(expected.begin(), expected.end(), '\n') > 250);

  const DynamoDbOptions table = dynalite.fresh_table();
  auto part = [&](int k) {
    return backfill + table_sets(table) + " --topic-partitions 5 --part " + std::to_string(k) + "/2 --dead-letter " +
           (dir / ("p" + std::to_string(k) + "-dl.jsonl"));
  };
  const pid_t first = spawn_streamscore(split_words(part(1)), dir / "p1.out", dir / "p1.err");
  BOOST_REQUIRE(first > 0);
  Result second = run_cli(dir, part(2));
  int status = 0;
  ::waitpid(first, &status, 0);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), slurp(dir / "p1.err"));
  BOOST_TEST(second.exit_code == 0, second.err);
  BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected);
  std::vector<std::string> dead = lines_of_file(dir / "p1-dl.jsonl");
  for (const auto& line : lines_of_file(dir / "p2-dl.jsonl")) dead.push_back(line);
  BOOST_TEST((sorted(dead) == sorted(lines_of_file(dir / "one-dl.jsonl"))));
  for (const std::string& line : dead) BOOST_TEST(line.find("wrong_partition") == std::string::npos, line);
}
