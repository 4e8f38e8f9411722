// Scale-out (docs/scale.md, docs/semantics.md section 21): several daemons of one Kafka
// consumer group share one DynamoDB table (dynalite on loopback, librdkafka's mock
// cluster in this process). One is killed, one leaves, the partitions move, and the
// table ends as a replay of the same log would leave it.
#define BOOST_TEST_MODULE scale
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <xxhash.h>

#include "actors/engine.hpp"
#include "io/event_parser.hpp"
#include "io/http_client.hpp"
#include "io/kafka_client.hpp"
#include "io/kafka_source.hpp"
#include "state/shard_state.hpp"
#include "tests/cli_support.hpp"
#include "tests/daemon_support.hpp"
#include "tests/dynalite_support.hpp"
#include "tests/kafka_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr const char* kTopic = "customer-events";
constexpr int kPartitions = 8;
constexpr const char* kRowsRead = "streamscore_dynamodb_rows_read_total";

// Exported items without the customers whose id starts with `prefix`.
std::string without_customers(const std::string& export_text, const std::string& prefix) {
  std::string out;
  std::istringstream in(export_text);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"PK\":\"CUSTOMER#" + prefix) == std::string::npos) out += line + "\n";
  return out;
}

std::vector<std::string> words_of(const std::string& command) {
  std::vector<std::string> out;
  std::istringstream in(command);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::size_t lines_in(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A daemon of the group, with its HTTP client once it listens.
struct Member {
  std::string writer;
  std::string name;  // of its files: the writer's, or another for a restart
  pid_t pid = -1;
  std::unique_ptr<HttpClient> client;
  double get(const std::string& name) const { return metric(*client, name); }
};

struct Fixture {
  TempDir dir{"streamscore-scale-"};
  Dynalite dynalite;
  std::unique_ptr<MockKafkaCluster> cluster;
  DynamoDbOptions table = dynalite.fresh_table();
  std::string group = "group";  // the consumer group of the members start() starts
  int partitions;

  explicit Fixture(int topic_partitions = kPartitions) : partitions(topic_partitions) {
    MockKafkaOptions options;
    options.brokers = 3;
    options.topics = {{kTopic, partitions}};
    BOOST_REQUIRE(MockKafkaCluster::start(options, &cluster).is_ok());
  }

  std::vector<std::string> settings(const std::string& lateness) const {
    return {"--set", "state.backend=dynamodb",     "--set", "state.endpoint=" + table.endpoint,
            "--set", "state.table=" + table.table, "--set", "window.allowed_lateness=" + lateness};
  }

  // `name`: of the daemon's files (default: the writer's); a restart needs new ones.
  Member start(const std::string& writer, const std::string& lateness, const std::string& interval = "200ms",
               const std::string& name = "") {
    const std::string files = name.empty() ? writer : name;
    std::vector<std::string> args = {"run",
                                     "--set",
                                     "source.kind=kafka",
                                     "--set",
                                     "kafka.bootstrap_servers=" + cluster->bootstrap_servers(),
                                     "--set",
                                     "source.exit_at_end=false",
                                     "--set",
                                     "source.group_id=" + group,
                                     "--set",
                                     "state.shared=true",
                                     "--set",
                                     "state.writer=" + writer,
                                     "--set",
                                     "dead_letter.path=" + (dir / (files + "-dl.jsonl")),
                                     "--set",
                                     "checkpoint.interval=" + interval,
                                     "--set",
                                     "engine.batch_size=1024",
                                     "--set",
                                     "http.port=0",
                                     "--set",
                                     "kafka.session.timeout.ms=6000",
                                     "--set",
                                     "kafka.heartbeat.interval.ms=500",
                                     "--set",
                                     "kafka.max.poll.interval.ms=20000",
                                     "--top",
                                     "0"};
    const auto s = settings(lateness);
    args.insert(args.end(), s.begin(), s.end());
    Member m;
    m.writer = writer;
    m.name = files;
    m.pid = spawn_streamscore(args, dir / (files + ".out"), dir / (files + ".err"));
    BOOST_REQUIRE(m.pid > 0);
    m.client = std::make_unique<HttpClient>("127.0.0.1", daemon_port(dir / (files + ".err")));
    return m;
  }

  std::string log_of(const Member& m) { return slurp(dir / (m.name + ".err")); }
  std::string logs_of(const std::vector<Member*>& members) {
    std::string out;
    for (Member* m : members) out += log_of(*m);
    return out;
  }

  // Every partition is held by one of `members`, each holds some, and none of them lags
  // behind its end.
  bool caught_up(const std::vector<Member*>& members) {
    double held_total = 0;
    for (Member* m : members) {
      const double held = m->get("streamscore_kafka_partitions"), lag = m->get("streamscore_kafka_lag");
      if (held <= 0 || lag != 0) return false;  // every member has a share (none is rejoining)
      held_total += held;
    }
    return held_total == partitions;
  }

  // Each member's partitions, lag, rebalances and checkpoints, for failure messages.
  std::string gauges_of(const std::vector<Member*>& members) const {
    std::string out;
    for (Member* m : members)
      out += m->writer + ": partitions=" + std::to_string(m->get("streamscore_kafka_partitions")) +
             " lag=" + std::to_string(m->get("streamscore_kafka_lag")) +
             " rebalances=" + std::to_string(m->get("streamscore_kafka_rebalances_total")) +
             " checkpoints=" + std::to_string(m->get("streamscore_checkpoints_total")) + "\n";
    return out;
  }

  // Waits until `members` hold everything, have read it, and have checkpointed it twice
  // with no rebalance in between. The group may still move the partitions once more
  // after they first look settled (a member that left is dropped by the coordinator when
  // its rebalance or session times out): then it settles again.
  void settle(const std::vector<Member*>& members, const std::string& when) {
    for (int attempt = 1;; ++attempt) {
      BOOST_REQUIRE_MESSAGE(wait_for([&] { return caught_up(members); }, 120),
                            when + ": " + gauges_of(members) + logs_of(members));
      std::vector<double> rebalances;
      for (Member* m : members) rebalances.push_back(m->get("streamscore_kafka_rebalances_total"));
      for (Member* m : members) {
        const double done = m->get("streamscore_checkpoints_total");
        BOOST_REQUIRE_MESSAGE(wait_for([&] { return m->get("streamscore_checkpoints_total") >= done + 2; }, 60),
                              when + ": " + log_of(*m));
      }
      bool settled = caught_up(members);
      for (std::size_t i = 0; i < members.size(); ++i)
        settled = settled && members[i]->get("streamscore_kafka_rebalances_total") == rebalances[i];
      if (settled) return;
      BOOST_TEST_MESSAGE(when + ": the partitions moved again (attempt " + std::to_string(attempt) + ")\n" +
                         gauges_of(members));
      BOOST_REQUIRE_MESSAGE(attempt < 5,
                            when + ": the partitions keep moving\n" + gauges_of(members) + logs_of(members));
    }
  }

  // One daemon reading the whole topic as it stands (bounded, with a state and a group of
  // its own): what the group must have produced, whatever its members did. Its final
  // tick only ticks the closing customers' own windows (left out of the comparisons).
  std::string single_daemon_export(const std::string& lateness) {
    Result r = run_cli(
        dir, "run --set source.kind=kafka --set kafka.bootstrap_servers=" + cluster->bootstrap_servers() +
                 " --set source.exit_at_end=true --set source.group_id=single --set state.path=" + (dir / "single") +
                 " --set dead_letter.path=" + (dir / "single-dl.jsonl") + " --set window.allowed_lateness=" + lateness +
                 " --top 0");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return export_of(dir, dir / "single");
  }

  void stop(Member& m, int signal, bool expect_success) {
    ::kill(m.pid, signal);
    const int code = wait_for_exit(m.pid);
    if (expect_success) BOOST_TEST(code == 0, log_of(m));
  }
};

// An event of a customer of its own in every partition, well after the log: the
// watermark of whichever daemon holds the partition then passes every window of the log.
std::vector<KafkaRecord> closing_records(const std::string& time, int partitions = kPartitions) {
  std::vector<KafkaRecord> out;
  std::set<int32_t> covered;
  for (int i = 1; static_cast<int>(covered.size()) < partitions; ++i) {
    const std::string id = "S" + std::to_string(i);
    if (!covered.insert(kafka_partition_of_key(id, partitions)).second) continue;
    out.push_back({id, true,
                   "{\"event_id\":\"close-" + id + "\",\"customer_id\":\"" + id +
                       "\",\"event_type\":\"transaction\",\"amount\":1.00,\"event_time\":\"" + time + "\"}"});
  }
  return out;
}

// The customers of `expected` (export lines) that `actual` lacks or holds with other
// features, counted by partition: what a failure has to say.
std::string differences_by_partition(const std::string& actual, const std::string& expected, int partitions) {
  std::map<std::string, std::string> have;
  std::istringstream in(actual);
  for (std::string line; std::getline(in, line);) have[line.substr(0, line.find(','))] = line;
  std::map<int32_t, std::pair<int, int>> by_partition;  // missing, different
  std::istringstream want(expected);
  for (std::string line; std::getline(want, line);) {
    const std::string key = line.substr(0, line.find(','));
    const std::string id = key.substr(key.find('#') + 1, key.size() - key.find('#') - 2);
    auto& [missing, different] = by_partition[kafka_partition_of_key(id, partitions)];
    auto it = have.find(key);
    if (it == have.end())
      ++missing;
    else if (it->second != line)
      ++different;
  }
  std::string out;
  for (const auto& [p, counts] : by_partition)
    if (counts.first + counts.second > 0)
      out += "partition " + std::to_string(p) + ": " + std::to_string(counts.first) + " missing, " +
             std::to_string(counts.second) + " different\n";
  return out;
}

// What a group's run left, without the closing customers (whose own window only a
// final tick ticks): the shared table's export, `replay` of the same records, and one
// daemon reading the same topic.
struct GroupExports {
  std::string shared, replayed, single;
};

// The group's scenario (see the tests below) with window.allowed_lateness = `lateness`.
GroupExports run_group(Fixture& f, const std::string& lateness) {
  TempDir& dir = f.dir;
  auto start = [&](const std::string& writer) { return f.start(writer, lateness); };
  auto settle = [&](const std::vector<Member*>& members, const std::string& when) { f.settle(members, when); };
  auto stop = [&](Member& m, int signal, bool ok) { f.stop(m, signal, ok); };
  auto log_of = [&](const Member& m) { return f.log_of(m); };
  auto& cluster = f.cluster;
  auto& table = f.table;
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir,
                     "generate --customers 400 --events 24000 --days 3 --dup-rate 0.05 --bad-rate 0.005 "
                     "--seed 31 --out " +
                         log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  const std::vector<std::string> lines = lines_of_file(log);
  const auto records = keyed_by_customer(lines);
  const std::size_t half = records.size() / 2;

  produce(cluster->bootstrap_servers(), kTopic, {records.begin(), records.begin() + static_cast<std::ptrdiff_t>(half)});
  Member a = start("a"), b = start("b"), c = start("c");
  settle({&a, &b, &c}, "three members");
  BOOST_TEST(a.get("streamscore_kafka_partitions") > 0);

  // b stalls (SIGSTOP) longer than the session timeout while it has work in progress: the
  // group gives its partitions to a and c. When it wakes up, its assignment is lost and it
  // must drop that work, not commit it over what a and c wrote meanwhile.
  const std::size_t third = half + (records.size() - half) / 2;
  produce(cluster->bootstrap_servers(), kTopic,
          {records.begin() + static_cast<std::ptrdiff_t>(half), records.begin() + static_cast<std::ptrdiff_t>(third)});
  ::kill(b.pid, SIGSTOP);
  BOOST_REQUIRE_MESSAGE(
      wait_for(
          [&] { return a.get("streamscore_kafka_partitions") + c.get("streamscore_kafka_partitions") == kPartitions; },
          60),
      log_of(a) + log_of(c));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a and c write b's customers
  ::kill(b.pid, SIGCONT);
  settle({&a, &b, &c}, "after b woke up");
  // b drops its work either way: it sees the lost assignment first, or its next
  // checkpoint finds it fenced by the new owners.
  BOOST_TEST((log_of(b).find("kafka assignment lost") != std::string::npos ||
              log_of(b).find("shared table: fenced") != std::string::npos),
             log_of(b));

  // Counted before producing: a may read its share of the last records before produce()
  // returns.
  const double a_read = a.get("streamscore_events_read_total");
  produce(cluster->bootstrap_servers(), kTopic, {records.begin() + static_cast<std::ptrdiff_t>(third), records.end()});
  BOOST_REQUIRE(wait_for([&] { return a.get("streamscore_events_read_total") > a_read; }, 60));
  stop(a, SIGKILL, false);  // mid-stream
  Member d = start("d");    // a new daemon joins: it starts with the others' customers
  settle({&b, &c, &d}, "after the kill");
  BOOST_TEST(d.get("streamscore_kafka_partitions") > 0);

  stop(c, SIGTERM, true);  // leaves the group after its last checkpoint
  stop(d, SIGTERM, true);
  settle({&b}, "after c and d left");

  // The closing records, and one record of a customer in a partition that is not its own.
  std::vector<KafkaRecord> last = closing_records("2025-01-08T01:00:00Z");
  KafkaRecord misplaced = last.front();
  misplaced.value =
      "{\"event_id\":\"misplaced\",\"customer_id\":\"S1\",\"event_type\":\"transaction\","
      "\"amount\":5.00,\"event_time\":\"2025-01-03T00:00:00Z\"}";
  misplaced.partition = (kafka_partition_of_key("S1", kPartitions) + 1) % kPartitions;
  last.push_back(misplaced);
  // b's lag can still read 0 just after produce() (it is refreshed with its fetches):
  // wait until b has read every one of these records (CI under ASan found it).
  const double b_read = b.get("streamscore_events_read_total");
  produce(cluster->bootstrap_servers(), kTopic, last);
  BOOST_REQUIRE_MESSAGE(
      wait_for([&] { return b.get("streamscore_events_read_total") >= b_read + static_cast<double>(last.size()); }, 60),
      log_of(b));
  settle({&b}, "closing records");
  // b holds every partition's clock now, each moved by its own closing record.
  const double closing = 1736298000;  // 2025-01-08T01:00:00Z
  for (int p = 0; p < kPartitions; ++p)
    BOOST_TEST(b.get("streamscore_partition_watermark_seconds{partition=\"" + std::to_string(p) + "\"}") >=
                   closing - 4 * 86400,
               "partition " << p);
  stop(b, SIGTERM, true);

  // The same records through `replay`, in file order (the closing ones last).
  const std::string replay_log = dir / "replay.jsonl";
  {
    std::ofstream out(replay_log);
    for (const auto& line : lines) out << line << "\n";
    for (std::size_t i = 0; i + 1 < last.size(); ++i) out << last[i].value << "\n";
  }
  const std::string setting = " --set window.allowed_lateness=" + lateness;
  Result r = run_cli(dir, "replay --events " + replay_log + " --state " + (dir / "replayed") + setting);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string replayed = export_of(dir, dir / "replayed");
  Result shared = run_cli(dir, "export" + std::string(" --set state.backend=dynamodb --set state.endpoint=") +
                                   table.endpoint + " --set state.table=" + table.table + setting);
  BOOST_REQUIRE_MESSAGE(shared.exit_code == 0, shared.err);
  const std::string dead = slurp(dir / "b-dl.jsonl");
  BOOST_TEST(dead.find("\"reason\":\"wrong_partition\"") != std::string::npos, dead);
  BOOST_TEST(dead.find("misplaced") != std::string::npos, dead);
  const std::string expected = without_customers(replayed, "S");
  BOOST_TEST(lines_in(expected) == 400u);
  return {without_customers(shared.out, "S"), expected, without_customers(f.single_daemon_export(lateness), "S")};
}

}  // namespace

// Three daemons share the table. One stalls past the session timeout and must drop its
// uncommitted work; one is killed mid-stream (its partitions move after the session
// timeout, and its uncheckpointed records are read again by the others) and a new one
// joins; two leave with SIGTERM (their partitions move after their checkpoints), the last
// one reads the rest. With an allowed lateness longer than the whole log nothing is late
// or ticked before the closing records, whichever daemon reads which partition when: the
// table equals `replay` of the log, versions included: nothing lost, nothing applied
// twice. A record in a partition its customer does not belong to is dead-lettered.
BOOST_FIXTURE_TEST_CASE(a_group_sharing_one_table_ends_as_a_replay, Fixture) {
  const GroupExports e = run_group(*this, "4d");
  BOOST_TEST(e.shared == e.replayed);
  BOOST_TEST(e.shared == e.single);
}

// The same with the default lateness (10 minutes): the daemons tick all along and take
// over partitions another daemon ticked. Each partition has its own clock, kept with its
// offset in the table and restored by whoever takes it over: the table equals one daemon
// reading the same topic, as_of and version included, and every feature and
// last_event_time is replay's.
BOOST_FIXTURE_TEST_CASE(a_group_ticking_all_along_equals_one_daemon, Fixture) {
  const GroupExports e = run_group(*this, "10m");
  BOOST_TEST(lines_in(e.single) == 400u);
  BOOST_TEST(e.shared == e.single, differences_by_partition(e.shared, e.single, kPartitions));
  BOOST_TEST(features_only(e.shared) == features_only(e.replayed));
}

// A group sharing the table through every way a member goes (a holdout scenario of issue
// 17): on a 16-partition topic, with 500 ms checkpoints, a and b start; b stalls
// (SIGSTOP) past its session timeout while it has work in progress, c joins, and b is
// woken after that; a is killed mid-stream; b and c get SIGTERM together; then a is
// started again and reads everything that is left. Every customer of the log is in the
// table, with replay's features and last_event_time (no offset went into the table ahead
// of the items it covers), and the table equals one daemon reading the same topic, as_of
// and version included (each partition's clock moved with the partition).
BOOST_AUTO_TEST_CASE(a_group_through_stall_kill_and_joint_stop_loses_no_customer) {
  constexpr int kWide = 16;
  Fixture f(kWide);
  const std::string lateness = "10m", interval = "500ms";
  auto start = [&](const std::string& writer, const std::string& name = "") {
    return f.start(writer, lateness, interval, name);
  };
  auto produce_range = [&](const std::vector<KafkaRecord>& records, std::size_t from, std::size_t to) {
    produce(f.cluster->bootstrap_servers(), kTopic,
            {records.begin() + static_cast<std::ptrdiff_t>(from), records.begin() + static_cast<std::ptrdiff_t>(to)});
  };
  auto held = [](Member& m) { return m.get("streamscore_kafka_partitions"); };
  const std::string log = f.dir / "events.jsonl";
  Result g = run_cli(f.dir,
                     "generate --customers 5000 --events 30000 --days 3 --dup-rate 0.05 --bad-rate 0.005 "
                     "--seed 17 --out " +
                         log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  const std::vector<std::string> lines = lines_of_file(log);
  const auto records = keyed_by_customer(lines);
  const std::size_t n = records.size();

  produce_range(records, 0, n / 3);
  Member a = start("a"), b = start("b");
  f.settle({&a, &b}, "a and b");

  // b stalls with records read and not checkpointed, past its session timeout.
  const double b_read = b.get("streamscore_events_read_total");
  produce_range(records, n / 3, 2 * n / 3);
  BOOST_REQUIRE(wait_for([&] { return b.get("streamscore_events_read_total") > b_read; }, 60));
  ::kill(b.pid, SIGSTOP);
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return held(a) == kWide; }, 60), f.log_of(a));
  Member c = start("c");  // a third joins while b is stalled
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return held(c) > 0 && held(a) + held(c) == kWide; }, 60),
                        f.log_of(a) + f.log_of(c));
  ::kill(b.pid, SIGCONT);
  f.settle({&a, &b, &c}, "after b woke up");

  const double a_read = a.get("streamscore_events_read_total");
  produce_range(records, 2 * n / 3, n);
  BOOST_REQUIRE(wait_for([&] { return a.get("streamscore_events_read_total") > a_read; }, 60));
  f.stop(a, SIGKILL, false);  // mid-stream
  f.settle({&b, &c}, "after the kill");
  ::kill(b.pid, SIGTERM);  // together
  ::kill(c.pid, SIGTERM);
  for (Member* m : {&b, &c}) BOOST_TEST(wait_for_exit(m->pid) == 0, f.log_of(*m));

  Member again = start("a", "a-again");
  const std::vector<KafkaRecord> last = closing_records("2025-01-08T01:00:00Z", kWide);
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return held(again) == kWide; }, 60), f.log_of(again));
  const double again_read = again.get("streamscore_events_read_total");
  produce(f.cluster->bootstrap_servers(), kTopic, last);
  BOOST_REQUIRE_MESSAGE(
      wait_for(
          [&] { return again.get("streamscore_events_read_total") >= again_read + static_cast<double>(last.size()); },
          60),
      f.log_of(again));
  f.settle({&again}, "a again");
  f.stop(again, SIGTERM, true);

  const std::string replay_log = f.dir / "replay.jsonl";
  {
    std::ofstream out(replay_log);
    for (const auto& line : lines) out << line << "\n";
    for (const KafkaRecord& r : last) out << r.value << "\n";
  }
  const std::string setting = " --set window.allowed_lateness=" + lateness;
  Result r = run_cli(f.dir, "replay --events " + replay_log + " --state " + (f.dir / "replayed") + setting);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string expected = features_only(without_customers(export_of(f.dir, f.dir / "replayed"), "S"));
  Result shared = run_cli(f.dir, "export --set state.backend=dynamodb --set state.endpoint=" + f.table.endpoint +
                                     " --set state.table=" + f.table.table + setting);
  BOOST_REQUIRE_MESSAGE(shared.exit_code == 0, shared.err);
  const std::string actual = features_only(without_customers(shared.out, "S"));
  BOOST_TEST(lines_in(expected) > 4500u);
  BOOST_TEST(actual == expected, differences_by_partition(actual, expected, kWide));
  const std::string single = without_customers(f.single_daemon_export(lateness), "S");
  const std::string table = without_customers(shared.out, "S");
  BOOST_TEST(lines_in(single) == lines_in(expected));
  BOOST_TEST(table == single, differences_by_partition(table, single, kWide));
}

// The store's side of a takeover: a writer killed between its commit point and the end
// of its apply leaves a committed redo log; another writer finishes it before it reads.
// Each writer's meta is its own, except the table's.
BOOST_FIXTURE_TEST_CASE(a_takeover_finishes_a_dead_writers_commit, Fixture) {
  DynamoDbOptions dead_options = table;
  dead_options.writer = "dead";
  dead_options.test_stop_after = CommitStage::committed;
  std::unique_ptr<StateStore> dead;
  BOOST_REQUIRE(open_dynamodb_store(dead_options, &dead).is_ok());
  WriteSet w;
  w.puts.push_back({ItemRecord{customer_pk("C1"), 1, "{\"PK\":\"CUSTOMER#C1\",\"version\":1}", "x"}, 0});
  w.puts.push_back({ItemRecord{customer_pk("C2"), 1, "{\"PK\":\"CUSTOMER#C2\",\"version\":1}", "y"}, 0});
  w.meta.push_back({"clock", "dead's clock"});
  w.meta.push_back({"partition.customer-events.3", "42"});
  std::vector<std::size_t> conflicts;
  BOOST_TEST(!dead->commit(w, &conflicts).is_ok());  // stopped right after the commit point

  DynamoDbOptions heir_options = table;
  heir_options.writer = "heir";
  std::unique_ptr<StateStore> heir;
  BOOST_REQUIRE(open_dynamodb_store(heir_options, &heir).is_ok());
  ItemRecord item;
  BOOST_TEST(heir->get(customer_pk("C1"), &item).is_not_found());  // not applied yet
  BOOST_REQUIRE(heir->recover_other_writers().is_ok());
  BOOST_REQUIRE(heir->get(customer_pk("C2"), &item).is_ok());
  BOOST_TEST(item.version == 1);
  BOOST_TEST(item.internal == "y");
  std::string value;
  BOOST_REQUIRE(heir->get_meta("partition.customer-events.3", &value).is_ok());  // the table's
  BOOST_TEST(value == "42");
  BOOST_TEST(heir->get_meta("clock", &value).is_not_found());  // the dead writer's own
  BOOST_REQUIRE(heir->put_meta("clock", "heir's clock").is_ok());

  // The dead writer, restarted, finds its commit finished and its own clock.
  dead_options.test_stop_after = CommitStage::none;
  BOOST_REQUIRE(open_dynamodb_store(dead_options, &dead).is_ok());
  BOOST_REQUIRE(dead->get_meta("clock", &value).is_ok());
  BOOST_TEST(value == "dead's clock");
  BOOST_REQUIRE(dead->get(customer_pk("C1"), &item).is_ok());
  BOOST_TEST(item.version == 1);
  BOOST_REQUIRE(heir->get_meta("clock", &value).is_ok());
  BOOST_TEST(value == "heir's clock");
}

// One writer's commit of customer C1 (internal data `data`, version `version`) and of the
// offset of partition 0, as a daemon's checkpoint writes them.
WriteSet checkpoint_of(const std::string& data, int64_t version, int64_t expected, const std::string& offset) {
  WriteSet w;
  const std::string item = "{\"PK\":\"CUSTOMER#C1\",\"version\":" + std::to_string(version) + "}";
  w.puts.push_back({ItemRecord{customer_pk("C1"), version, item, data}, expected});
  w.meta.push_back({"partition.customer-events.0", offset});
  return w;
}

std::unique_ptr<StateStore> open_writer(const DynamoDbOptions& table, const std::string& writer,
                                        CommitStage stop_after = CommitStage::none) {
  DynamoDbOptions o = table;
  o.writer = writer;
  o.test_stop_after = stop_after;
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(o, &store);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return store;
}

uint64_t metric_of(const StateStore& store, const std::string& name) {
  for (const StateStore::Counter& c : store.counters())
    if (name == c.name) return c.value;
  return 0;
}

// What the table holds for C1 and partition 0.
std::pair<std::string, std::string> customer_and_offset(StateStore& store) {
  ItemRecord item;
  std::string offset;
  BOOST_REQUIRE(store.get(customer_pk("C1"), &item).is_ok());
  BOOST_REQUIRE(store.get_meta("partition.customer-events.0", &offset).is_ok());
  return {item.internal, offset};
}

// A daemon stalls past its session timeout with a checkpoint not yet committed; another
// takes its partition over, reads it and commits further. The stalled one's checkpoint,
// when it goes on, must not land: its content would overwrite the new owner's, and its
// offset say "done" for records whose items only the new owner has. It is fenced.
BOOST_FIXTURE_TEST_CASE(a_stalled_writers_checkpoint_is_fenced_by_the_new_owner, Fixture) {
  const std::vector<std::string> partition = {"partition.customer-events.0"};
  auto stalled = open_writer(table, "stalled");
  BOOST_REQUIRE(stalled->take_over(partition).is_ok());
  std::vector<std::size_t> conflicts;
  WriteSet first = checkpoint_of("read to 10", 1, 0, "10");
  BOOST_REQUIRE(stalled->commit(first, &conflicts).is_ok());

  auto heir = open_writer(table, "heir");
  BOOST_REQUIRE(heir->take_over(partition).is_ok());
  BOOST_REQUIRE(heir->recover_other_writers().is_ok());
  BOOST_TEST((customer_and_offset(*heir) == std::make_pair(std::string("read to 10"), std::string("10"))));
  WriteSet further = checkpoint_of("read to 15", 2, 1, "15");
  BOOST_REQUIRE(heir->commit(further, &conflicts).is_ok());

  // The stalled daemon wakes up and commits what it read meanwhile (records 10 to 20),
  // among them C2's first events, which it has not ticked yet (no public item, version 0)
  // while the heir has: landing, it would leave C2 without an item to export.
  WriteSet c2_ticked;
  c2_ticked.puts.push_back({ItemRecord{customer_pk("C2"), 1, "{\"PK\":\"CUSTOMER#C2\",\"version\":1}", "ticked"}, 0});
  c2_ticked.meta.push_back({"clock", "heir's"});
  BOOST_REQUIRE(heir->commit(c2_ticked, &conflicts).is_ok());
  WriteSet stale = checkpoint_of("read to 20", 2, 1, "20");
  stale.puts.push_back({ItemRecord{customer_pk("C2"), 0, "", "not ticked"}, 0});
  std::vector<VersionShift> shifts;
  const Status s = commit_with_retry(*stalled, &stale, &shifts, nullptr);
  BOOST_TEST(s.is_fenced(), s.to_string());
  BOOST_TEST((customer_and_offset(*heir) == std::make_pair(std::string("read to 15"), std::string("15"))));
  ItemRecord c2;
  BOOST_REQUIRE(heir->get(customer_pk("C2"), &c2).is_ok());
  BOOST_TEST(!c2.item_json.empty());
  BOOST_TEST(metric_of(*stalled, "streamscore_dynamodb_fenced_total") == 1u);

  // Having dropped its work, it takes a lease that holds nothing and commits again.
  BOOST_REQUIRE(stalled->take_over({}).is_ok());
  WriteSet nothing;
  nothing.meta.push_back({"clock", "its own"});
  BOOST_TEST(stalled->commit(nothing, &conflicts).is_ok());
}

// The daemon's side of a fence: another writer takes its partitions over (as a daemon of
// the group does after its session expired). Its next checkpoint is refused; it drops
// what it read since the last one, rejoins, takes the partitions back under a new lease,
// reads those records again from the table's offsets, and the table ends as a replay.
BOOST_FIXTURE_TEST_CASE(a_fenced_daemon_drops_its_work_and_rejoins, Fixture) {
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 200 --events 6000 --days 2 --dup-rate 0.05 --seed 23 --out " + log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  const std::vector<std::string> lines = lines_of_file(log);
  const auto records = keyed_by_customer(lines);
  const auto half = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
  produce(cluster->bootstrap_servers(), kTopic, {records.begin(), half});
  Member b = start("b", "4d");
  settle({&b}, "b alone");

  std::vector<std::string> partition_keys;
  for (int p = 0; p < partitions; ++p)
    partition_keys.push_back("partition." + std::string(kTopic) + "." + std::to_string(p));
  auto other = open_writer(table, "other");
  BOOST_REQUIRE(other->take_over(partition_keys).is_ok());
  produce(cluster->bootstrap_servers(), kTopic, {half, records.end()});
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return b.get("streamscore_dynamodb_fenced_total") >= 1; }, 60), log_of(b));
  BOOST_TEST(log_of(b).find("shared table: fenced, dropping the work since the last checkpoint") != std::string::npos);

  const std::vector<KafkaRecord> last = closing_records("2025-01-08T01:00:00Z");
  const double read = b.get("streamscore_events_read_total");
  produce(cluster->bootstrap_servers(), kTopic, last);
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return b.get("streamscore_events_read_total") >= read + last.size(); }, 60),
                        log_of(b));
  settle({&b}, "b again");
  stop(b, SIGTERM, true);

  const std::string replay_log = dir / "replay.jsonl";
  {
    std::ofstream out(replay_log);
    for (const auto& line : lines) out << line << "\n";
    for (const KafkaRecord& r : last) out << r.value << "\n";
  }
  Result r = run_cli(
      dir, "replay --events " + replay_log + " --state " + (dir / "replayed") + " --set window.allowed_lateness=4d");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  Result shared = run_cli(dir, "export --set state.backend=dynamodb --set state.endpoint=" + table.endpoint +
                                   " --set state.table=" + table.table + " --set window.allowed_lateness=4d");
  BOOST_REQUIRE_MESSAGE(shared.exit_code == 0, shared.err);
  const std::string expected = features_only(without_customers(export_of(dir, dir / "replayed"), "S"));
  BOOST_TEST(lines_in(expected) > 150u);
  BOOST_TEST(features_only(without_customers(shared.out, "S")) == expected);
}

// Cooperative-sticky rebalancing (a shared table's default): when b joins, a hands over
// only the partitions that move. Those that stay are not read from the table again (a's
// rows read do not move) and keep their customers in memory, unwritten changes included;
// the group still ends as a replay of the log.
BOOST_FIXTURE_TEST_CASE(partitions_that_stay_keep_their_customers_through_a_rebalance, Fixture) {
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 200 --events 6000 --days 2 --dup-rate 0.05 --seed 29 --out " + log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  const std::vector<std::string> lines = lines_of_file(log);
  const auto records = keyed_by_customer(lines);
  const auto half = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
  produce(cluster->bootstrap_servers(), kTopic, {records.begin(), half});
  Member a = start("a", "4d");
  settle({&a}, "a alone");
  const double rows_before = a.get(kRowsRead);
  Member b = start("b", "4d");
  settle({&a, &b}, "b joined");
  BOOST_TEST(a.get("streamscore_kafka_partitions") < kPartitions);
  BOOST_TEST(a.get(kRowsRead) - rows_before <= 10, log_of(a));

  produce(cluster->bootstrap_servers(), kTopic, {half, records.end()});
  const std::vector<KafkaRecord> last = closing_records("2025-01-08T01:00:00Z");
  produce(cluster->bootstrap_servers(), kTopic, last);
  settle({&a, &b}, "everything read");
  stop(a, SIGTERM, true);
  stop(b, SIGTERM, true);

  const std::string replay_log = dir / "replay.jsonl";
  {
    std::ofstream out(replay_log);
    for (const auto& line : lines) out << line << "\n";
    for (const KafkaRecord& r : last) out << r.value << "\n";
  }
  Result r = run_cli(
      dir, "replay --events " + replay_log + " --state " + (dir / "replayed") + " --set window.allowed_lateness=4d");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  Result shared = run_cli(dir, "export --set state.backend=dynamodb --set state.endpoint=" + table.endpoint +
                                   " --set state.table=" + table.table + " --set window.allowed_lateness=4d");
  BOOST_REQUIRE_MESSAGE(shared.exit_code == 0, shared.err);
  const std::string expected = without_customers(export_of(dir, dir / "replayed"), "S");
  BOOST_TEST(lines_in(expected) > 150u);
  BOOST_TEST(without_customers(shared.out, "S") == expected);
}

// Dedup ids move with their customers: a writer reads every writer's records.
BOOST_FIXTURE_TEST_CASE(dedup_records_of_every_writer_are_read, Fixture) {
  std::array<std::string, 2> writers = {"w1", "w2"};
  for (const std::string& name : writers) {
    DynamoDbOptions o = table;
    o.writer = name;
    std::unique_ptr<StateStore> store;
    BOOST_REQUIRE(open_dynamodb_store(o, &store).is_ok());
    WriteSet w;
    w.dedup.push_back(DedupRecord{20000, 1, 0, "ids of " + name});
    w.meta.push_back({"checkpoint", "1"});
    std::vector<std::size_t> conflicts;
    BOOST_REQUIRE(store->commit(w, &conflicts).is_ok());
  }
  DynamoDbOptions o = table;
  o.writer = "reader";
  o.dedup_of_all_writers = true;
  std::unique_ptr<StateStore> reader;
  BOOST_REQUIRE(open_dynamodb_store(o, &reader).is_ok());
  std::set<std::string> seen;
  BOOST_REQUIRE(reader
                    ->scan_dedup([&](const DedupRecord& r) {
                      seen.insert(r.data);
                      return true;
                    })
                    .is_ok());
  BOOST_TEST((seen == std::set<std::string>{"ids of w1", "ids of w2"}));
}

namespace {

std::vector<std::string> offset_keys(const std::vector<int32_t>& partitions) {
  std::vector<std::string> keys;
  for (int32_t p : partitions) keys.push_back(partition_offset_key(kTopic, p));
  return keys;
}

std::vector<int32_t> every_partition() {
  std::vector<int32_t> all;
  for (int32_t p = 0; p < kPartitions; ++p) all.push_back(p);
  return all;
}

// A checkpoint creating `customers` ("<prefix>0", ...) with one dedup id each, encoded
// as the engine encodes them (a shard's unsaved ids).
WriteSet new_customers(const std::string& prefix, int customers) {
  WriteSet w;
  ShardState shard(ShardOptions{});
  for (int i = 0; i < customers; ++i) {
    const std::string id = prefix + std::to_string(i);
    const std::string item = "{\"PK\":\"CUSTOMER#" + id + "\",\"version\":1}";
    w.puts.push_back({ItemRecord{customer_pk(id), 1, item, "state of " + id}, 0});
    ParsedEvent e;
    e.customer_id = id;
    e.time = EventTime{1735689600LL * kNanosPerSecond, 0};
    e.customer_hash = XXH3_64bits(id.data(), id.size());
    e.key = dedup_key(id, "event of " + id);
    shard.apply_event(e);
  }
  shard.take_unsaved_ids(1, 0, &w.dedup);
  w.meta.push_back({"checkpoint", "1"});
  return w;
}

// What a load of `partition` finds: the customers whose items and whose dedup ids came,
// and how many of them are not of that partition.
struct Loaded {
  std::set<std::string> items, ids;
  int strangers = 0;
};

Loaded load_partition(StateStore& store, int32_t partition) {
  Loaded loaded;
  auto keep = [&](std::string_view id, std::set<std::string>* into) {
    if (kafka_partition_of_key(id, kPartitions) == partition)
      into->insert(std::string(id));
    else
      ++loaded.strangers;
  };
  Status s = store.scan_partitions(
      PartitionScope{kPartitions, {partition}},
      [&](const ItemRecord& r) { return keep(customer_id_of_pk(r.pk), &loaded.items), true; },
      [&](const DedupRecord& r) {
        BOOST_REQUIRE(
            for_each_dedup_id(r, [&](std::string_view id, const DedupEntry&) { keep(id, &loaded.ids); }).is_ok());
        return true;
      });
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return loaded;
}

std::set<std::string> customers_of(const std::string& prefix, int customers, int32_t partition) {
  std::set<std::string> out;
  for (int i = 0; i < customers; ++i)
    if (kafka_partition_of_key(prefix + std::to_string(i), kPartitions) == partition)
      out.insert(prefix + std::to_string(i));
  return out;
}

}  // namespace

// A rebalance costs what moves (docs/scale.md): the table holds eight partitions'
// customers, and taking one partition over reads that partition's customers and dedup
// ids (a Query of it), not the table (a Scan).
BOOST_FIXTURE_TEST_CASE(a_takeover_reads_only_its_partitions_customers, Fixture) {
  constexpr int kCustomers = 400;
  auto first = open_writer(table, "first");
  BOOST_REQUIRE(first->take_over(offset_keys(every_partition())).is_ok());
  BOOST_TEST(load_partition(*first, 0).items.empty());
  std::vector<std::size_t> conflicts;
  BOOST_REQUIRE(first->commit(new_customers("C", kCustomers), &conflicts).is_ok());

  auto heir = open_writer(table, "heir");
  BOOST_REQUIRE(heir->take_over(offset_keys({3})).is_ok());
  BOOST_REQUIRE(heir->recover_other_writers().is_ok());
  const uint64_t before = metric_of(*heir, kRowsRead);
  const Loaded loaded = load_partition(*heir, 3);
  const std::set<std::string> expected = customers_of("C", kCustomers, 3);
  BOOST_TEST(expected.size() > 30u);
  BOOST_TEST(loaded.items == expected);
  BOOST_TEST(loaded.ids == expected);
  BOOST_TEST(loaded.strangers == 0);
  // The partition's index entries, items and dedup records; not the 400 customers.
  const uint64_t rows = metric_of(*heir, kRowsRead) - before;
  BOOST_TEST(rows >= expected.size());
  BOOST_TEST(rows <= 2 * expected.size() + 10, rows << " rows read for " << expected.size() << " customers");
}

// A table written before any daemon shared it (a replay, a single daemon) has no index by
// partition: the first takeover reads it whole once and indexes it, and every writer that
// opens it from then on indexes the customers it creates.
BOOST_FIXTURE_TEST_CASE(a_table_written_before_sharing_is_indexed_by_its_first_takeover, Fixture) {
  constexpr int kCustomers = 200;
  std::vector<std::size_t> conflicts;
  BOOST_REQUIRE(open_writer(table, "replayed")->commit(new_customers("R", kCustomers), &conflicts).is_ok());

  auto first = open_writer(table, "first");
  BOOST_REQUIRE(first->take_over(offset_keys(every_partition())).is_ok());
  for (int32_t p = 0; p < kPartitions; ++p) {
    const Loaded loaded = load_partition(*first, p);
    BOOST_TEST(loaded.items == customers_of("R", kCustomers, p));
    BOOST_TEST(loaded.ids == customers_of("R", kCustomers, p));
  }
  auto late = open_writer(table, "late");  // a writer that comes later indexes what it creates
  BOOST_REQUIRE(late->commit(new_customers("L", kCustomers), &conflicts).is_ok());

  auto heir = open_writer(table, "heir");
  BOOST_REQUIRE(heir->take_over(offset_keys({5})).is_ok());
  const uint64_t before = metric_of(*heir, kRowsRead);
  const Loaded loaded = load_partition(*heir, 5);
  std::set<std::string> expected = customers_of("R", kCustomers, 5);
  for (const std::string& id : customers_of("L", kCustomers, 5)) expected.insert(id);
  BOOST_TEST(loaded.items == expected);
  BOOST_TEST(loaded.ids == expected);
  BOOST_TEST(loaded.strangers == 0);
  BOOST_TEST(metric_of(*heir, kRowsRead) - before <= 2 * expected.size() + 10 + 10);
}

// A daemon of a group starts holding no customer (they come with its partitions): its
// start reads nothing of the table's customers, whatever the table holds.
BOOST_FIXTURE_TEST_CASE(a_shared_daemon_starts_without_reading_the_customers, Fixture) {
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 300 --events 3000 --days 2 --seed 5 --out " + log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  std::string replay = "replay --events " + log;
  for (const std::string& w : settings("4d")) replay += " " + w;
  Result r = run_cli(dir, replay);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);

  DynamoDbOptions o = table;
  o.writer = "starter";
  o.dedup_of_all_writers = true;
  std::unique_ptr<StateStore> store;
  BOOST_REQUIRE(open_dynamodb_store(o, &store).is_ok());
  EngineOptions options;
  options.shards = 2;
  options.threads = 1;
  options.allowed_lateness_ns = 4LL * 86400 * kNanosPerSecond;
  options.load_partitions = PartitionScope{};
  std::unique_ptr<Engine> engine;
  const uint64_t before = metric_of(*store, kRowsRead);
  Status s = Engine::start(options, store.get(), &engine);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  BOOST_TEST(engine->shard_probe().customers.load() == 0);
  BOOST_TEST(metric_of(*store, kRowsRead) - before <= 10u);
}

// A backfill split over P processes (--part K/P, each a writer of its own) leaves the
// table a single backfill leaves, versions included, also when one part is killed and
// resumed; its --max-writes-per-sec is its own. A part never clears the table.
BOOST_FIXTURE_TEST_CASE(a_backfill_in_parts_equals_one_backfill, Fixture) {
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir,
                     "generate --customers 300 --events 12000 --days 40 --dup-rate 0.05 --bad-rate 0.005 "
                     "--seed 41 --out " +
                         log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  auto table_sets = [](const DynamoDbOptions& t) {
    return " --set state.backend=dynamodb --set state.endpoint=" + t.endpoint + " --set state.table=" + t.table;
  };
  const std::string backfill = "backfill --events " + log + " --slice 5d --json";
  DynamoDbOptions single = dynalite.fresh_table();
  Result one = run_cli(dir, backfill + table_sets(single) + " --dead-letter " + (dir / "one-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(one.exit_code == 0, one.err);
  const std::string expected = run_cli(dir, "export" + table_sets(single)).out;
  BOOST_REQUIRE(lines_in(expected) > 250u);

  // Part 2 is killed once it has committed a slice, then resumed by the same command.
  const std::vector<std::string> part2 = words_of(
      backfill + table_sets(table) + " --part 2/3 --max-writes-per-sec 400 --dead-letter " + (dir / "p2-dl.jsonl"));
  const pid_t killed = spawn_streamscore(part2, dir / "p2.out", dir / "p2.err");
  BOOST_REQUIRE(killed > 0);
  BOOST_REQUIRE_MESSAGE(wait_for_table_items(table, 60), slurp(dir / "p2.err"));  // a slice is in
  ::kill(killed, SIGKILL);
  ::waitpid(killed, nullptr, 0);
  for (int part = 1; part <= 3; ++part) {
    Result r = run_cli(dir, backfill + table_sets(table) + " --part " + std::to_string(part) +
                                "/3 --max-writes-per-sec 2000 --dead-letter " +
                                (dir / ("p" + std::to_string(part) + "-dl.jsonl")));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.find("\"balanced\":true") != std::string::npos, r.out);
    if (part == 2) BOOST_TEST(r.err.find("resuming") != std::string::npos, r.err);
  }
  BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected);
  // Every part read every record, so each has the whole dead letter.
  BOOST_TEST(slurp(dir / "p1-dl.jsonl") == slurp(dir / "one-dl.jsonl"));

  // Done is done; a part with other arguments refuses to clear the others' work.
  Result again = run_cli(dir, backfill + table_sets(table) + " --part 3/3");
  BOOST_TEST(again.exit_code == 0);
  BOOST_TEST(again.out.find("already complete") != std::string::npos, again.out);
  Result other = run_cli(dir, backfill + table_sets(table) + " --part 1/2");
  BOOST_TEST(other.exit_code == 2);
  BOOST_TEST(other.err.find("already holds items of part 1/2") != std::string::npos, other.err);
  BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected);
}

namespace {

// The number after "name": in a --json summary (-1 when absent).
long long summary_number(const std::string& summary, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const std::size_t at = summary.find(key);
  return at == std::string::npos ? -1 : std::stoll(summary.substr(at + key.size()));
}

// Lines [from, to) of a file, into another.
void copy_lines(const std::string& from_path, std::size_t from, std::size_t to, const std::string& out_path) {
  std::ifstream in(from_path);
  std::ofstream out(out_path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line); ++n)
    if (n >= from && n < to) out << line << "\n";
}

}  // namespace

// A `run` after a backfill in parts judges duplicates as after one backfill: the parts'
// dedup ids and clock are the run's, whichever part wrote them (semantics.md, section 14).
BOOST_FIXTURE_TEST_CASE(a_run_after_a_backfill_in_parts_judges_duplicates_as_after_one, Fixture) {
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 200 --events 8000 --days 40 --dup-rate 0.02 --seed 43 --out " + log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  // The run repeats the backfill's last 1,500 records and adds 3,000 new ones.
  const std::string backfilled = dir / "backfilled.jsonl", later = dir / "later.jsonl";
  copy_lines(log, 0, 5000, backfilled);
  copy_lines(log, 3500, 8000, later);
  auto table_sets = [](const DynamoDbOptions& t) {
    return " --set state.backend=dynamodb --set state.endpoint=" + t.endpoint + " --set state.table=" + t.table;
  };
  const std::string backfill = "backfill --events " + backfilled + " --slice 5d --dead-letter " + (dir / "bf-dl.jsonl");
  auto run_later = [&](const DynamoDbOptions& t, const std::string& name) {
    Result r = run_cli(dir, "run --json --set source.path=" + later + " --set dead_letter.path=" +
                                (dir / (name + "-dl.jsonl")) + " --set http.enabled=false" + table_sets(t));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return r.out;
  };

  const DynamoDbOptions single = dynalite.fresh_table();
  BOOST_REQUIRE(run_cli(dir, backfill + table_sets(single)).exit_code == 0);
  const std::string single_run = run_later(single, "single");
  const std::string expected = run_cli(dir, "export" + table_sets(single)).out;
  BOOST_REQUIRE(summary_number(single_run, "duplicates") >= 1500);

  for (int part = 1; part <= 3; ++part) {
    Result r = run_cli(dir, backfill + table_sets(table) + " --part " + std::to_string(part) + "/3");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  const std::string parts_run = run_later(table, "parts");
  BOOST_TEST(summary_number(parts_run, "duplicates") == summary_number(single_run, "duplicates"), parts_run);
  BOOST_TEST(summary_number(parts_run, "conflicting_duplicates") ==
             summary_number(single_run, "conflicting_duplicates"));
  BOOST_TEST(summary_number(parts_run, "accepted") == summary_number(single_run, "accepted"));
  BOOST_TEST(run_cli(dir, "export" + table_sets(table)).out == expected);

  // The same input read by a daemon of a group (state.shared, Kafka) under the same writer
  // name, on a table after one backfill and on one after the parts.
  produce(cluster->bootstrap_servers(), kTopic, keyed_by_customer(lines_of_file(later)));
  auto run_shared = [&](const std::string& name) {
    group = name;
    Member m = start("streamscore", "10m", "200ms", name);
    settle({&m}, name);
    const double duplicates = m.get("streamscore_events_duplicate_total");
    stop(m, SIGTERM, true);
    return std::make_pair(duplicates, run_cli(dir, "export" + table_sets(table)).out);
  };
  table = dynalite.fresh_table();
  BOOST_REQUIRE(run_cli(dir, backfill + table_sets(table)).exit_code == 0);
  const auto after_one = run_shared("shared-single");
  table = dynalite.fresh_table();
  for (const char* part : {"1/2", "2/2"})
    BOOST_REQUIRE(run_cli(dir, backfill + table_sets(table) + " --part " + part).exit_code == 0);
  const auto after_parts = run_shared("shared-parts");
  BOOST_TEST(after_one.first >= 1500);
  BOOST_TEST(after_parts.first == after_one.first);
  BOOST_TEST(features_only(after_parts.second) == features_only(after_one.second));
  BOOST_TEST(after_parts.second == after_one.second);
}

// A run's checkpoints remove its backfill parts' rows once its clock has moved their ids
// past the horizon plus the lateness (state.gc_idle = 0s: a finished part is idle at once;
// a budget for all of them in the run's few checkpoints); before that, they stay.
BOOST_AUTO_TEST_CASE(a_run_collects_its_backfill_parts_once_their_ids_leave_the_horizon) {
  TempDir dir("streamscore-scale-gc-");
  Dynalite dynalite;
  const DynamoDbOptions table = dynalite.fresh_table();
  const std::string log = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 100 --events 7000 --days 70 --seed 44 --out " + log);
  BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
  // About 10 days backfilled, then 20 more days (the parts' ids still inside the
  // horizon), then the rest (40 days: past it).
  copy_lines(log, 0, 1000, dir / "backfilled.jsonl");
  copy_lines(log, 1000, 3000, dir / "next.jsonl");
  copy_lines(log, 3000, 7000, dir / "last.jsonl");
  const std::string sets =
      " --set state.backend=dynamodb --set state.endpoint=" + table.endpoint + " --set state.table=" + table.table;
  for (const char* part : {"1/2", "2/2"}) {
    Result r = run_cli(dir, "backfill --events " + (dir / "backfilled.jsonl") + " --slice 5d --part " + part +
                                " --dead-letter " + (dir / "bf-dl.jsonl") + sets);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  const std::vector<std::string> parts = {"streamscore.part-1-of-2", "streamscore.part-2-of-2"};
  auto run_on = [&](const std::string& input) {
    Result r =
        run_cli(dir, "run --set source.path=" + (dir / input) + " --set dead_letter.path=" + (dir / "run-dl.jsonl") +
                         " --set http.enabled=false --set state.gc_idle=0s "
                         "--set state.gc_deletes_per_checkpoint=100000" +
                         sets);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return r.out;
  };
  run_on("next.jsonl");
  for (const std::string& part : parts) BOOST_TEST(!table_rows_of_writer(table, part).empty(), part);
  const std::string summary = run_on("last.jsonl");
  for (const std::string& part : parts) BOOST_TEST(table_rows_of_writer(table, part).empty(), part);
  BOOST_TEST(summary.find("dynamodb_gc_writers 2") != std::string::npos, summary);
  BOOST_TEST(!table_rows_of_writer(table, "streamscore").empty());
}

BOOST_AUTO_TEST_CASE(a_part_needs_a_shared_table_and_a_well_formed_k_of_p) {
  TempDir dir("streamscore-scale-usage-");
  std::ofstream(dir / "e.jsonl") << "";
  Result local = run_cli(dir, "backfill --events " + (dir / "e.jsonl") + " --state " + (dir / "s") + " --part 1/2");
  BOOST_TEST(local.exit_code == 2);
  BOOST_TEST(local.err.find("--part needs state.backend") != std::string::npos, local.err);
  for (const char* bad : {"0/2", "3/2", "2", "1/x", "-1/2"}) {
    Result r = run_cli(dir, "backfill --events " + (dir / "e.jsonl") + " --state " + (dir / "s") + " --part " + bad);
    BOOST_TEST(r.exit_code == 2, bad);
    BOOST_TEST(r.err.find("--part '") != std::string::npos, r.err);
  }
}

// state.shared needs what it shares: a DynamoDB table and a following Kafka source.
BOOST_AUTO_TEST_CASE(state_shared_without_a_table_and_a_group_is_a_usage_error) {
  TempDir dir("streamscore-scale-usage-");
  Result local = run_cli(dir,
                         "run --set state.shared=true --set source.kind=kafka "
                         "--set kafka.bootstrap_servers=127.0.0.1:1 --set source.exit_at_end=false");
  BOOST_TEST(local.exit_code == 2);
  BOOST_TEST(local.err.find("state.shared") != std::string::npos, local.err);
  BOOST_TEST(local.err.find("state.backend") != std::string::npos, local.err);
  Result bounded = run_cli(dir,
                           "run --set state.shared=true --set state.backend=dynamodb --set source.kind=kafka "
                           "--set kafka.bootstrap_servers=127.0.0.1:1 --set source.exit_at_end=true");
  BOOST_TEST(bounded.exit_code == 2);
  BOOST_TEST(bounded.err.find("source.exit_at_end") != std::string::npos, bounded.err);
}
