// The Kafka source end to end, against librdkafka's mock cluster on loopback (a real
// Kafka protocol server, started in this process so that the tests can inject faults):
// a bounded run equals `replay` of the same log, kills and broker faults lose nothing
// and apply nothing twice, kcat's messages are read, bad records and keyless ones go to
// the dead letter with their offsets, a partition assigned again shows its lag at once.
#define BOOST_TEST_MODULE kafka_source
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "io/http_client.hpp"
#include "io/kafka_source.hpp"
#include "io/kafka_source_probe.hpp"
#include "tests/cli_support.hpp"
#include "tests/daemon_support.hpp"
#include "tests/kafka_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr const char* kTopic = "customer-events";

// Features, last_event_time and as_of of every item: what must not depend on how the
// partitions interleave (the version counts writes, which may).
std::string without_versions(const std::string& export_text) {
  std::string out;
  std::istringstream in(export_text);
  for (std::string line; std::getline(in, line);) out += line.substr(0, line.rfind(",\"version\":")) + "\n";
  return out;
}

struct Fixture {
  TempDir dir{"streamscore-kafka-"};
  std::unique_ptr<MockKafkaCluster> cluster;
  std::string log = dir / "events.jsonl";
  std::vector<std::string> lines;

  Fixture() {
    MockKafkaOptions options;
    options.brokers = 3;
    options.topics = {{kTopic, 8}};
    BOOST_REQUIRE(MockKafkaCluster::start(options, &cluster).is_ok());
  }

  void generate(const std::string& args) {
    Result g = run_cli(dir, "generate " + args + " --out " + log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    lines = lines_of_file(log);
  }

  std::string bootstrap() const { return cluster->bootstrap_servers(); }

  std::vector<std::string> run_args(const std::string& name, bool bounded,
                                    const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"run",
                                     "--set",
                                     "source.kind=kafka",
                                     "--set",
                                     "kafka.bootstrap_servers=" + bootstrap(),
                                     "--set",
                                     std::string("source.exit_at_end=") + (bounded ? "true" : "false"),
                                     "--set",
                                     "source.group_id=" + name,
                                     "--set",
                                     "state.path=" + (dir / name),
                                     "--set",
                                     "dead_letter.path=" + (dir / (name + "-dl.jsonl")),
                                     "--set",
                                     "checkpoint.interval=50ms",
                                     "--set",
                                     "engine.batch_size=2048",
                                     "--top",
                                     "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string export_of(const std::string& name) { return streamscore::testing::export_of(dir, dir / name); }

  // The export of `replay` of the log, without versions.
  std::string replayed() {
    Result r = run_cli(dir, "replay --events " + log + " --state " + (dir / "replayed"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return without_versions(export_of("replayed"));
  }
};

// {"reason":..} counts of a dead-letter file.
std::map<std::string, int> reasons_in(const std::string& path) {
  std::map<std::string, int> out;
  for (const auto& line : lines_of_file(path)) {
    const auto at = line.find("\"reason\":\"") + 10;
    ++out[line.substr(at, line.find('"', at) - at)];
  }
  return out;
}

}  // namespace

// The logs of the exact comparisons have no late events (--late-rate 0): an event that
// is late (behind the allowed lateness) is corrected at the tick after it arrives, and
// where it arrives among the other partitions' records is not in Kafka. Its customer's
// features are the same, its as_of may be a tick later or earlier (contract, section 5:
// only reorderings within the allowed lateness keep as_of). The fault and rebalance
// tests keep late events and compare the features.
BOOST_FIXTURE_TEST_CASE(a_bounded_run_equals_replay_of_the_same_log, Fixture) {
  generate("--customers 500 --events 30000 --days 40 --bad-rate 0.01 --dup-rate 0.05 --late-rate 0 --seed 3");
  produce(bootstrap(), kTopic, keyed_by_customer(lines));
  Result run = run_cli(dir, words(run_args("bounded", true, {"--json"})));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err + run.out);
  BOOST_TEST(run.out.find("\"read\":30000,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"balanced\":true") != std::string::npos, run.out);
  BOOST_TEST(without_versions(export_of("bounded")) == replayed());
  // Malformed records went to the dead letter, by the same reasons as in the replay.
  Result replay_dl =
      run_cli(dir, "replay --events " + log + " --state " + (dir / "r2") + " --dead-letter " + (dir / "r2-dl.jsonl"));
  BOOST_REQUIRE_MESSAGE(replay_dl.exit_code == 0, replay_dl.err);
  auto expected = reasons_in(dir / "r2-dl.jsonl");
  auto got = reasons_in(dir / "bounded-dl.jsonl");
  // Bad records without a customer_id were produced without a key: the source reports
  // them as missing_key only when their value is valid, which generated bad ones are not.
  BOOST_TEST((got == expected));
  // A second bounded run on the same state reads nothing new and changes nothing.
  const std::string before = export_of("bounded");
  Result again = run_cli(dir, words(run_args("bounded", true, {"--json"})));
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  BOOST_TEST(again.out.find("\"read\":0,") != std::string::npos, again.out);
  BOOST_TEST(export_of("bounded") == before);
}

namespace {

std::vector<KafkaRecord> slice(const std::vector<KafkaRecord>& all, std::size_t from, std::size_t to) {
  return std::vector<KafkaRecord>(all.begin() + static_cast<std::ptrdiff_t>(from),
                                  all.begin() + static_cast<std::ptrdiff_t>(std::min(to, all.size())));
}

}  // namespace

// Bounded runs killed with SIGKILL at random moments, then run to the end: the export
// equals replay, so no event was applied twice or lost across the restarts.
BOOST_FIXTURE_TEST_CASE(kills_mid_stream_lose_nothing_and_apply_nothing_twice, Fixture) {
  generate("--customers 800 --events 60000 --days 40 --bad-rate 0.005 --dup-rate 0.05 --late-rate 0 --seed 5");
  produce(bootstrap(), kTopic, keyed_by_customer(lines));
  std::mt19937 rng(6);
  const auto args = run_args("killed", true, {"--set", "engine.batch_size=200"});
  for (int kill = 0; kill < 6; ++kill) {
    const pid_t pid = spawn_streamscore(args, dir / "killed.out", dir / "killed.err");
    BOOST_REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  Result last = run_cli(dir, words(args));
  BOOST_REQUIRE_MESSAGE(last.exit_code == 0, last.err + last.out);
  BOOST_TEST(without_versions(export_of("killed")) == replayed());
}

// A daemon (unbounded) keeps consuming through broker faults injected with the mock
// API: every broker down and back, a leader change, failing fetch and commit requests.
// It counts the faults in /metrics, reads everything, and exits 0 on SIGTERM; a bounded
// run on its state then ends with the features of replay.
BOOST_FIXTURE_TEST_CASE(broker_faults_lose_nothing_and_are_reported, Fixture) {
  generate("--customers 500 --events 40000 --days 40 --dup-rate 0.05 --seed 8");
  const auto records = keyed_by_customer(lines);
  produce(bootstrap(), kTopic, slice(records, 0, 10000));
  const pid_t pid = spawn_streamscore(run_args("faults", false), dir / "faults.out", dir / "faults.err");
  BOOST_REQUIRE(pid > 0);
  HttpClient client("127.0.0.1", daemon_port(dir / "faults.err"));
  auto read_all = [&](double n) {
    return [&client, n] { return metric(client, "streamscore_events_read_total") == n; };
  };
  BOOST_REQUIRE_MESSAGE(wait_for(read_all(10000), 60), slurp(dir / "faults.err"));

  rd_kafka_mock_cluster_t* mock = cluster->handle();
  rd_kafka_mock_broker_set_down(mock, -1);  // every broker
  std::this_thread::sleep_for(std::chrono::seconds(2));
  rd_kafka_mock_broker_set_up(mock, -1);
  produce(bootstrap(), kTopic, slice(records, 10000, 20000));
  for (int p = 0; p < 8; ++p) rd_kafka_mock_partition_set_leader(mock, kTopic, p, 1 + (p + 1) % 3);
  rd_kafka_mock_push_request_errors(mock, 1 /* Fetch */, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                    RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  rd_kafka_mock_push_request_errors(mock, 8 /* OffsetCommit */, 2, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
  produce(bootstrap(), kTopic, slice(records, 20000, records.size()));
  BOOST_REQUIRE_MESSAGE(wait_for(read_all(static_cast<double>(records.size())), 120), slurp(dir / "faults.err"));
  BOOST_TEST(::kill(pid, 0) == 0);  // still running
  BOOST_TEST(metric(client, "streamscore_kafka_errors_total") > 0);
  // The lag is refreshed from the partitions' ends as the client learns them.
  BOOST_TEST(wait_for([&] { return metric(client, "streamscore_kafka_lag") == 0; }, 30));
  BOOST_TEST(metric(client, "streamscore_kafka_partitions") == 8);
  // `streamscore status` shows the Kafka line.
  Result shown = run_cli(dir, "status --url http://127.0.0.1:" + std::to_string(daemon_port(dir / "faults.err")));
  BOOST_TEST(shown.exit_code == 0, shown.err);
  BOOST_TEST(shown.out.find("8 partitions   lag 0, errors ") != std::string::npos, shown.out);
  ::kill(pid, SIGTERM);
  BOOST_TEST(wait_for_exit(pid) == 0, slurp(dir / "faults.err"));
  Result bounded = run_cli(dir, words(run_args("faults", true, {"--json"})));
  BOOST_REQUIRE_MESSAGE(bounded.exit_code == 0, bounded.err);
  BOOST_TEST(bounded.out.find("\"read\":0,") != std::string::npos, bounded.out);  // nothing left to read
  BOOST_TEST(features_only(export_of("faults")) == features_only(replayed()));
}

// Messages produced by kcat, an independent client (key and value split at a tab).
BOOST_FIXTURE_TEST_CASE(messages_produced_by_kcat_are_consumed, Fixture) {
  generate("--customers 200 --events 5000 --days 35 --bad-rate 0 --late-rate 0 --seed 9");
  std::ofstream keyed(dir / "keyed.txt");
  for (const auto& line : lines) keyed << customer_id_of(line) << '\t' << line << '\n';
  keyed.close();
  const std::string kcat = "kcat -P -b " + bootstrap() + " -t " + kTopic + " -K '\t' -l " + (dir / "keyed.txt") +
                           " > " + (dir / "kcat.out") + " 2>&1";
  BOOST_REQUIRE_MESSAGE(std::system(kcat.c_str()) == 0, slurp(dir / "kcat.out"));
  Result run = run_cli(dir, words(run_args("kcat", true, {"--json"})));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  BOOST_TEST(run.out.find("\"read\":5000,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"key_mismatches\":0,") != std::string::npos, run.out);
  BOOST_TEST(without_versions(export_of("kcat")) == replayed());
}

// Malformed values and keyless messages land in the dead letter with topic/partition:
// offset; a key that is not the value's customer_id is counted, and the value wins.
BOOST_FIXTURE_TEST_CASE(malformed_values_and_missing_keys_go_to_the_dead_letter_with_offsets, Fixture) {
  const std::string good =
      R"({"event_id":"e1","customer_id":"C1","event_time":"2025-01-01T10:00:00Z","event_type":"transaction","amount":10})";
  const std::string keyless =
      R"({"event_id":"e2","customer_id":"C2","event_time":"2025-01-01T10:01:00Z","event_type":"transaction","amount":20})";
  const std::string other_key =
      R"({"event_id":"e3","customer_id":"C3","event_time":"2025-01-01T10:02:00Z","event_type":"transaction","amount":30})";
  std::ofstream(log) << good << "\n" << other_key << "\n";  // what replay should see
  produce(bootstrap(), kTopic,
          {{"C1", true, good}, {"C9", true, "{not json"}, {"", false, keyless}, {"C4", true, other_key}});
  Result run = run_cli(dir, words(run_args("bad", true, {"--json"})));
  BOOST_REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  BOOST_TEST(run.out.find("\"read\":4,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"not_json\":1,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"missing_key\":1,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"key_mismatches\":1,") != std::string::npos, run.out);
  BOOST_TEST(run.out.find("\"balanced\":true") != std::string::npos, run.out);
  const auto dead = lines_of_file(dir / "bad-dl.jsonl");
  BOOST_REQUIRE_EQUAL(dead.size(), 2u);
  // Where kcat (an independent client) finds the two records: partition and offset.
  const std::string listing = dir / "listing.txt";
  const std::string kcat = "kcat -C -e -q -b " + bootstrap() + " -t " + kTopic + " -f '%p:%o %s\\n' > " + listing;
  BOOST_REQUIRE(std::system(kcat.c_str()) == 0);
  auto position_of = [&](const std::string& value) {
    for (const auto& line : lines_of_file(listing))
      if (line.substr(line.find(' ') + 1) == value) return "customer-events/" + line.substr(0, line.find(' '));
    return std::string("?");
  };
  std::string joined = dead[0] + "\n" + dead[1];
  BOOST_TEST(joined.find("\"reason\":\"not_json\"") != std::string::npos, joined);
  BOOST_TEST(joined.find("\"reason\":\"missing_key\"") != std::string::npos, joined);
  BOOST_TEST(joined.find("\"source\":\"" + position_of("{not json") + "\"") != std::string::npos, joined);
  BOOST_TEST(joined.find("\"source\":\"" + position_of(keyless) + "\"") != std::string::npos, joined);
  BOOST_TEST(without_versions(export_of("bad")) == replayed());
}

// Another member joins the daemon's consumer group (kcat -G): the daemon hands over and
// checkpoints what it read before it releases partitions, and takes them back from its
// own checkpointed offsets when the member leaves (kcat's commits for them do not
// count); nothing is lost or applied twice.
BOOST_FIXTURE_TEST_CASE(a_rebalance_checkpoints_before_releasing_partitions, Fixture) {
  generate("--customers 300 --events 20000 --days 35 --seed 12");
  const auto records = keyed_by_customer(lines);
  produce(bootstrap(), kTopic, slice(records, 0, 10000));
  const pid_t pid =
      spawn_streamscore(run_args("group", false,
                                 {"--set", "checkpoint.interval=1h", "--set", "kafka.session.timeout.ms=6000", "--set",
                                  "kafka.max.poll.interval.ms=10000"}),
                        dir / "group.out", dir / "group.err");
  BOOST_REQUIRE(pid > 0);
  HttpClient client("127.0.0.1", daemon_port(dir / "group.err"));
  auto read = [&] { return metric(client, "streamscore_events_read_total"); };
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return read() == 10000; }, 60), slurp(dir / "group.err"));
  const double checkpoints = metric(client, "streamscore_checkpoints_total");
  // kcat joins the group and consumes what it is given, until it is stopped.
  const std::string kcat = "exec kcat -G group -X session.timeout.ms=6000 -X max.poll.interval.ms=10000 -b " +
                           bootstrap() + " -q -o beginning " + kTopic + " > " + (dir / "kcat-group.txt") + " 2>&1";
  FILE* member = ::popen(kcat.c_str(), "r");
  BOOST_REQUIRE(member != nullptr);
  BOOST_TEST(wait_for([&] { return metric(client, "streamscore_kafka_partitions") < 8; }, 60));
  // The interval is an hour: this checkpoint is the one the revocation made.
  BOOST_TEST(metric(client, "streamscore_checkpoints_total") > checkpoints);
  BOOST_TEST(slurp(dir / "group.err").find("kafka partitions revoked") != std::string::npos);
  BOOST_TEST(std::system("pkill -INT -f \"^kcat -G group\"") == 0);
  ::pclose(member);
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return metric(client, "streamscore_kafka_partitions") == 8; }, 60),
                        slurp(dir / "group.err") + slurp(dir / "kcat-group.txt"));
  // (Produced after the partitions came back: records read while only some partitions
  // are assigned move the clock past the others, which would make theirs late.)
  produce(bootstrap(), kTopic, slice(records, 10000, records.size()));
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return metric(client, "streamscore_kafka_lag") == 0; }, 60),
                        slurp(dir / "group.err"));
  ::kill(pid, SIGTERM);
  BOOST_TEST(wait_for_exit(pid) == 0);
  Result bounded = run_cli(dir, words(run_args("group", true)));
  BOOST_REQUIRE_MESSAGE(bounded.exit_code == 0, bounded.err);
  BOOST_TEST(features_only(export_of("group")) == features_only(replayed()));
}

namespace {

// A KafkaSource of group "lag" in this process, polled by the test.
struct Reader {
  std::unique_ptr<KafkaSourceProbe> gauges = std::make_unique<KafkaSourceProbe>();
  std::unique_ptr<KafkaSource> source;
  std::size_t records = 0;  // handed over so far

  Reader(const std::string& bootstrap, const std::string& topic) {
    KafkaSourceOptions options;
    options.kafka.bootstrap_servers = bootstrap;
    options.kafka.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "100"}};
    options.topic = topic;
    options.group_id = "lag";
    const Status s = KafkaSource::open(options, {}, gauges.get(), &source);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  }

  void poll() {
    bool at_end = false;
    const Status s = source->poll(
        [&](RawBatch batch) {
          records += batch.lines.size();
          return Status::ok();
        },
        [] { return Status::ok(); }, &at_end);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  }
};

// Polls `readers` in turn until `done` (false after 60 s).
bool poll_until(const std::vector<Reader*>& readers, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (Reader* r : readers) r->poll();
  }
  return true;
}

std::vector<KafkaRecord> records_in(int32_t partition, int count, const std::string& tag) {
  std::vector<KafkaRecord> out;
  for (int i = 0; i < count; ++i) {
    const std::string id = tag + std::to_string(partition) + "-" + std::to_string(i);
    out.push_back({id, true,
                   "{\"event_id\":\"" + id +
                       "\",\"customer_id\":\"C1\",\"event_type\":\"transaction\","
                       "\"amount\":1.00,\"event_time\":\"2025-01-01T00:00:00Z\"}",
                   partition});
  }
  return out;
}

}  // namespace

// A partition that comes back to a daemon shows its lag at once. The client keeps the
// end offsets of its last fetch of a partition it held before; until its first fetch
// after the assignment (delayed here by a slow broker) the lag read 0 with records
// unread, and the source would not wait for them when merging by event time.
// The prefetch limits are defaults: [kafka] may set them, as the other librdkafka
// properties (memory against fetch stalls is the operator's trade).
BOOST_FIXTURE_TEST_CASE(kafka_properties_set_the_prefetch_limits, Fixture) {
  auto open_with = [&](const std::map<std::string, std::string>& properties) {
    KafkaSourceOptions options;
    options.kafka.bootstrap_servers = bootstrap();
    for (const auto& [name, value] : properties) options.kafka.properties.emplace_back(name, value);
    options.bounded = true;
    KafkaSourceProbe probe;
    std::unique_ptr<KafkaSource> source;
    const Status s = KafkaSource::open(options, {}, &probe, &source);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    return std::make_pair(source->client_property("queued.max.messages.kbytes"),
                          source->client_property("queued.min.messages"));
  };
  BOOST_TEST(open_with({}).first == "2048");
  BOOST_TEST(open_with({}).second == "20000");
  const auto set = open_with({{"queued.max.messages.kbytes", "256"}, {"queued.min.messages", "1000"}});
  BOOST_TEST(set.first == "256");
  BOOST_TEST(set.second == "1000");
}

BOOST_AUTO_TEST_CASE(a_partition_assigned_again_shows_its_lag_before_its_first_fetch) {
  MockKafkaOptions options;
  options.brokers = 1;
  options.topics = {{"lag-topic", 2}};
  std::unique_ptr<MockKafkaCluster> cluster;
  BOOST_REQUIRE(MockKafkaCluster::start(options, &cluster).is_ok());
  const std::string bootstrap = cluster->bootstrap_servers();
  auto both = [](const std::string& tag) {
    auto out = records_in(0, 5, tag);
    for (auto& r : records_in(1, 5, tag)) out.push_back(r);
    return out;
  };
  produce(bootstrap, "lag-topic", both("first"));
  Reader a(bootstrap, "lag-topic");
  BOOST_REQUIRE(poll_until({&a}, [&] { return a.records == 10 && a.gauges->lag == 0; }));

  // b joins: each holds one partition. a reads what comes to its own, b to the other.
  auto b = std::make_unique<Reader>(bootstrap, "lag-topic");
  BOOST_REQUIRE(poll_until({&a, b.get()}, [&] { return a.gauges->partitions == 1 && b->gauges->partitions == 1; }));
  produce(bootstrap, "lag-topic", both("second"));
  BOOST_REQUIRE(poll_until({&a, b.get()}, [&] { return a.records == 15 && a.gauges->lag == 0; }));

  // b leaves; a gets b's partition back, at its own old offset, 5 records behind. Every
  // request takes 1.5 s from now on.
  b->source->close();
  b.reset();
  rd_kafka_mock_broker_set_rtt(cluster->handle(), 1, 1500);
  BOOST_REQUIRE(poll_until({&a}, [&] { return a.gauges->partitions == 2; }));
  // What a has read plus its lag is every record (before: 15 + 0 until the first fetch
  // came back).
  BOOST_TEST_MESSAGE("read " << a.records << ", lag " << a.gauges->lag.load());
  BOOST_TEST(a.records + static_cast<std::size_t>(a.gauges->lag.load()) == 20u);
  rd_kafka_mock_broker_set_rtt(cluster->handle(), 1, 0);
  BOOST_REQUIRE(poll_until({&a}, [&] { return a.records == 20 && a.gauges->lag == 0; }));
}
