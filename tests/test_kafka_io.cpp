// The producer side of the Kafka path (issue 6), against librdkafka's mock cluster on
// loopback: `mock-kafka`, `generate --kafka`, the dead-letter topic and the output topic.
// What is produced is read back by kcat, an independent client.
#define BOOST_TEST_MODULE kafka_io
#include <boost/test/unit_test.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "io/generator.hpp"
#include "io/http_client.hpp"
#include "io/item_sink.hpp"
#include "io/kafka_mock.hpp"
#include "io/kafka_sinks.hpp"
#include "io/metrics_text.hpp"
#include "tests/cli_support.hpp"
#include "tests/engine_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

// One message as kcat prints it with -f '%k\t%h\t%s\n'.
struct Message {
  std::string key, headers, value;
};

// A command's stdout; fails the test when it does not exit 0.
std::string shell(const TempDir& dir, const std::string& command) {
  const std::string out = dir / "shell.out";
  const int status = std::system((command + " > " + out + " 2> " + (dir / "shell.err")).c_str());
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                        command << " failed: " << slurp(dir / "shell.err"));
  return slurp(out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every message of `topic`, read to the end of each partition by kcat.
std::vector<Message> consume(const TempDir& dir, const std::string& boot, const std::string& topic) {
  const std::string text = shell(dir, "timeout 60 kcat -b " + boot + " -C -t " + topic + " -e -q -f '%k\\t%h\\t%s\\n'");
  std::vector<Message> messages;
  for (const std::string& line : lines_of(text)) {
    const auto a = line.find('\t'), b = line.find('\t', a + 1);
    BOOST_REQUIRE(a != std::string::npos && b != std::string::npos);
    messages.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return messages;
}

std::string string_field(const std::string& json, const char* name) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object() || !v.as_object().contains(name) || !v.at(name).is_string()) return {};
  return std::string(v.at(name).as_string().c_str());
}

int64_t version_of(const std::string& item) {
  return boost::json::parse(item).at("version").as_int64();
}

std::multiset<std::string> as_multiset(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// A mock cluster with the topics the tests use.
std::unique_ptr<MockKafkaCluster> start_cluster(std::vector<std::string> topics) {
  MockKafkaOptions options;
  options.brokers = 2;
  options.topics.clear();
  for (auto& t : topics) options.topics.push_back({t, 3});
  std::unique_ptr<MockKafkaCluster> cluster;
  Status s = MockKafkaCluster::start(options, &cluster);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return cluster;
}

// The latest item of every customer on the output topic (the highest version wins).
std::map<std::string, std::string> latest_items(const std::vector<Message>& messages) {
  std::map<std::string, std::string> latest;
  for (const Message& m : messages) {
    BOOST_REQUIRE_EQUAL("CUSTOMER#" + m.key, string_field(m.value, "PK"));
    auto it = latest.find(m.key);
    if (it == latest.end() || version_of(it->second) < version_of(m.value)) latest[m.key] = m.value;
  }
  return latest;
}

std::map<std::string, std::string> export_by_customer(const std::string& export_text) {
  std::map<std::string, std::string> items;
  for (const std::string& line : lines_of(export_text))
    items[string_field(line, "PK").substr(std::string("CUSTOMER#").size())] = line;
  return items;
}

std::string read_first_line(const std::string& path) {
  for (int i = 0; i < 400; ++i) {
    const std::string text = slurp(path);
    if (text.find('\n') != std::string::npos) return text.substr(0, text.find('\n'));
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return {};
}

// The counts of a `generate --kafka` summary on stderr.
struct GenerateSummary {
  bool interrupted = false;
  uint64_t records = 0, delivered = 0, failed = 0;
};

GenerateSummary summary_of(const std::string& err) {
  static const std::regex summary(R"(generate: (interrupted, )?(\d+) records .*; (\d+) delivered, (\d+) failed)");
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(err, m, summary), "no summary in: " << err);
  return {m[1].matched, std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4])};
}

MetricsSnapshot scrape(HttpClient& client) {
  HttpResponse response;
  MetricsSnapshot snap;
  if (client.get("/metrics", &response).is_ok()) {
    const Status s = parse_prometheus(response.body(), &snap);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  }
  return snap;
}

const char* kLog = "generate --events 6000 --customers 300 --days 40 --bad-rate 0.02 --late-rate 0.01";

// A mock cluster, a generated log (`kLog`) and a state directory for `run`.
struct RunSetup {
  TempDir dir;
  std::unique_ptr<MockKafkaCluster> cluster;
  std::string boot, log, state;
  RunSetup(const std::string& prefix, std::vector<std::string> topics)
      : dir(prefix),
        cluster(start_cluster(std::move(topics))),
        boot(cluster->bootstrap_servers()),
        log(dir / "events.jsonl"),
        state(dir / "state") {
    BOOST_REQUIRE_EQUAL(run_cli(dir, std::string(kLog) + " --out " + log).exit_code, 0);
  }
  // What the dead-letter file of a replay of the log holds.
  std::vector<std::string> file_dead_letters() const {
    const Result r = run_cli(
        dir, "replay --events " + log + " --state " + (dir / "replayed") + " --dead-letter " + (dir / "dead.jsonl"));
    BOOST_REQUIRE_EQUAL(r.exit_code, 0);
    return lines_of(slurp(dir / "dead.jsonl"));
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(mock_kafka_prints_its_brokers_and_serves_kcat) {
  TempDir dir("streamscore-kafka-mock-");
  const std::string out = dir / "mock.out";
  const pid_t pid = spawn_streamscore(
      {"mock-kafka", "--brokers", "2", "--partitions", "3", "--topic", "events-a", "--topic", "events-b"}, out);
  BOOST_REQUIRE(pid > 0);
  const std::string boot = read_first_line(out);
  BOOST_REQUIRE_MESSAGE(boot.rfind("127.0.0.1:", 0) == 0, "first line: '" << boot << "'");
  BOOST_CHECK_EQUAL(std::count(boot.begin(), boot.end(), ','), 1);  // two brokers
  const std::string metadata = shell(dir, "timeout 30 kcat -b " + boot + " -L");
  for (const char* topic : {"events-a", "events-b", "customer-events-dlq", "customer-scores"})
    BOOST_CHECK_MESSAGE(metadata.find("topic \"" + std::string(topic) + "\" with 3 partitions") != std::string::npos,
                        topic << " missing in:\n"
                              << metadata);
  std::ofstream(dir / "in.txt") << "k1|one\nk2|two\nk1|three\n";
  shell(dir, "timeout 30 kcat -b " + boot + " -P -t events-a -K '|' -l " + (dir / "in.txt"));
  std::multiset<std::string> got;
  for (const Message& m : consume(dir, boot, "events-a")) got.insert(m.key + "=" + m.value);
  BOOST_CHECK((got == std::multiset<std::string>{"k1=one", "k2=two", "k1=three"}));
  ::kill(pid, SIGTERM);
  BOOST_CHECK(wait_for_exit(pid) == 0);
}

BOOST_AUTO_TEST_CASE(mock_kafka_refuses_bad_options_by_name) {
  TempDir dir("streamscore-kafka-opts-");
  Result r = run_cli(dir, "mock-kafka --brokers 0");
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK(r.err.find("--brokers") != std::string::npos);
  r = run_cli(dir, "mock-kafka --topic 'a/b'");
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK(r.err.find("--topic") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(generate_to_kafka_produces_the_file_lines_keyed_by_customer) {
  TempDir dir("streamscore-kafka-gen-");
  auto cluster = start_cluster({"customer-events"});
  const std::string boot = cluster->bootstrap_servers();
  Result r = run_cli(dir, std::string(kLog) + " --kafka " + boot + " --topic customer-events");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const GenerateSummary summary = summary_of(r.err);
  BOOST_CHECK(!summary.interrupted);
  BOOST_CHECK_EQUAL(summary.records, 6000u);
  BOOST_CHECK_EQUAL(summary.delivered, 6000u);
  BOOST_CHECK_EQUAL(summary.failed, 0u);
  r = run_cli(dir, std::string(kLog) + " --out " + (dir / "events.jsonl"));
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  const std::vector<std::string> file = lines_of(slurp(dir / "events.jsonl"));
  const std::vector<Message> messages = consume(dir, boot, "customer-events");
  std::vector<std::string> values;
  std::size_t without_key = 0;
  for (const Message& m : messages) {
    values.push_back(m.value);
    BOOST_CHECK_EQUAL(m.key, string_field(m.value, "customer_id"));  // "" when there is none
    without_key += m.key.empty();
  }
  BOOST_CHECK(as_multiset(values) == as_multiset(file));
  BOOST_CHECK_EQUAL(values.size(), 6000u);
  BOOST_CHECK_GT(without_key, 0u);  // the malformed records without a customer_id
}

BOOST_AUTO_TEST_CASE(dead_letters_go_to_the_topic_as_the_file_would_hold_them) {
  RunSetup setup("streamscore-kafka-dlq-", {"customer-events-dlq"});
  const Result r = run_cli(setup.dir, "run --set source.path=" + setup.log + " --set state.path=" + setup.state +
                                          " --set engine.batch_size=500 --set checkpoint.interval=20ms"
                                          " --set dead_letter.kind=kafka --set kafka.bootstrap_servers=" +
                                          setup.boot);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::vector<std::string> file = setup.file_dead_letters();
  BOOST_REQUIRE_GT(file.size(), 100u);
  std::vector<std::string> values;
  for (const Message& m : consume(setup.dir, setup.boot, "customer-events-dlq")) {
    values.push_back(m.value);
    BOOST_CHECK(m.key.empty());
    const std::string want = "reason=" + string_field(m.value, "reason") + ",source=" + string_field(m.value, "source");
    BOOST_CHECK_EQUAL(m.headers, want);  // a file source: no source_topic/partition/offset
  }
  BOOST_CHECK(as_multiset(values) == as_multiset(file));
}

BOOST_AUTO_TEST_CASE(dead_letters_of_a_kafka_source_carry_topic_partition_and_offset) {
  TempDir dir("streamscore-kafka-dlq-src-");
  auto cluster = start_cluster({"dlq"});
  KafkaConfig kafka;
  kafka.bootstrap_servers = cluster->bootstrap_servers();
  std::shared_ptr<DeadLetterSink> sink;
  BOOST_REQUIRE(make_kafka_dead_letter_sink(kafka, "dlq", /*probe=*/nullptr, &sink).is_ok());
  DeadLetterBatch batch;  // as the router renders a Kafka batch: the topic, a partition a line
  batch.source = "customer-events";
  append_dead_letter(batch.lines, Reason::not_json, "", "not JSON", "customer-events/3:17", "{oops");
  batch.entries.push_back({batch.lines.size(), Reason::not_json, 3, 17});
  append_dead_letter(batch.lines, Reason::missing_key, "key", "no key", "customer-events/0:20", "{}");
  batch.entries.push_back({batch.lines.size(), Reason::missing_key, 0, 20});
  BOOST_REQUIRE(sink->write(batch).is_ok());
  BOOST_REQUIRE(sink->flush().is_ok());
  BOOST_CHECK_EQUAL(sink->position(), 2u);
  BOOST_CHECK_EQUAL(sink->identity(), "kafka:dlq");
  std::set<std::string> headers;
  for (const Message& m : consume(dir, kafka.bootstrap_servers, "dlq")) headers.insert(m.headers);
  BOOST_CHECK(
      (headers == std::set<std::string>{"reason=not_json,source=customer-events/3:17,source_topic=customer-events,"
                                        "source_partition=3,source_offset=17",
                                        "reason=missing_key,source=customer-events/0:20,source_topic=customer-events,"
                                        "source_partition=0,source_offset=20"}));
}

// The whole path: generate --kafka, run on the Kafka source (bounded), dead letters to
// the DLQ topic, labelled with where each record was read.
BOOST_AUTO_TEST_CASE(a_kafka_source_run_dead_letters_with_offsets) {
  RunSetup setup("streamscore-kafka-e2e-", {"customer-events", "customer-events-dlq"});
  Result r = run_cli(setup.dir, std::string(kLog) + " --kafka " + setup.boot + " --topic customer-events");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = run_cli(setup.dir, "run --json --set source.kind=kafka --set source.exit_at_end=true --set state.path=" +
                             setup.state + " --set dead_letter.kind=kafka --set kafka.bootstrap_servers=" + setup.boot);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const boost::json::value summary = boost::json::parse(r.out);
  const auto dead_lettered = static_cast<std::size_t>(summary.at("dead_lettered").as_int64());
  BOOST_REQUIRE_GT(dead_lettered, 50u);
  const std::vector<Message> messages = consume(setup.dir, setup.boot, "customer-events-dlq");
  BOOST_CHECK_EQUAL(messages.size(), dead_lettered);
  std::set<std::string> sources;
  for (const Message& m : messages) {
    const std::string source = string_field(m.value, "source");  // customer-events/P:O
    const auto slash = source.find('/'), colon = source.find(':');
    BOOST_REQUIRE(slash != std::string::npos && colon != std::string::npos);
    BOOST_CHECK_EQUAL(
        m.headers, "reason=" + string_field(m.value, "reason") + ",source=" + source +
                       ",source_topic=customer-events,source_partition=" + source.substr(slash + 1, colon - slash - 1) +
                       ",source_offset=" + source.substr(colon + 1));
    sources.insert(source);
  }
  BOOST_CHECK_EQUAL(sources.size(), messages.size());  // each record once
}

BOOST_AUTO_TEST_CASE(output_topic_ends_with_every_customers_exported_item) {
  RunSetup setup("streamscore-kafka-out-", {"customer-scores", "customer-scores-2"});
  const std::string run = "run --set source.path=" + setup.log + " --set state.path=" + setup.state +
                          " --set dead_letter.path=" + (setup.dir / "dead.jsonl") +
                          " --set engine.batch_size=500 --set checkpoint.interval=20ms"
                          " --set kafka.bootstrap_servers=" +
                          setup.boot + " --set output.topic=";
  Result r = run_cli(setup.dir, run + "customer-scores");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = run_cli(setup.dir, "export --state " + setup.state);
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  const auto exported = export_by_customer(r.out);
  BOOST_REQUIRE_GT(exported.size(), 200u);
  BOOST_CHECK(latest_items(consume(setup.dir, setup.boot, "customer-scores")) == exported);

  // Another output topic on the same state: the whole table is published to it first.
  BOOST_REQUIRE_EQUAL(run_cli(setup.dir, run + "customer-scores-2").exit_code, 0);
  const std::vector<Message> second = consume(setup.dir, setup.boot, "customer-scores-2");
  BOOST_CHECK(latest_items(second) == exported);
  // A clean stop recorded everything as delivered: a restart publishes nothing again.
  BOOST_REQUIRE_EQUAL(run_cli(setup.dir, run + "customer-scores-2").exit_code, 0);
  BOOST_CHECK_EQUAL(consume(setup.dir, setup.boot, "customer-scores-2").size(), second.size());
}

// A daemon with both Kafka sinks: /metrics counts what each produced and what the brokers
// acknowledged, in agreement with the engine's counters and with the topics; `status`
// shows them.
BOOST_AUTO_TEST_CASE(metrics_count_what_the_kafka_sinks_produce_and_deliver) {
  RunSetup setup("streamscore-kafka-metrics-", {"customer-events-dlq", "customer-scores"});
  const std::string err = setup.dir / "daemon.err";
  const pid_t pid = spawn_streamscore({"run", "--set", "source.path=" + setup.log, "--set", "source.exit_at_end=false",
                                       "--set", "state.path=" + setup.state, "--set", "engine.batch_size=500", "--set",
                                       "checkpoint.interval=20ms", "--set", "kafka.bootstrap_servers=" + setup.boot,
                                       "--set", "dead_letter.kind=kafka", "--set", "output.topic=customer-scores"},
                                      setup.dir / "daemon.out", err);
  BOOST_REQUIRE(pid > 0);
  const uint16_t port = daemon_port(err);
  HttpClient client("127.0.0.1", port);
  MetricsSnapshot m;
  // Everything read, and every message produced and acknowledged (the reports of the last
  // ones are served by the next checkpoint's flush).
  const bool settled = wait_for(
      [&] {
        m = scrape(client);
        const double dead = m.sum("streamscore_events_dead_lettered_total");
        const double items = m.value("streamscore_kafka_items_produced_total");
        return m.value("streamscore_events_read_total") == 6000 && dead > 0 &&
               m.value("streamscore_kafka_dead_letters_produced_total") == dead &&
               m.value("streamscore_kafka_dead_letters_delivered_total") == dead && items > 0 &&
               items <= m.value("streamscore_items_written_total") &&  // items with a public JSON
               m.value("streamscore_kafka_items_delivered_total") == items;
      },
      60);
  BOOST_CHECK_MESSAGE(settled, slurp(err));
  for (const char* name : {"streamscore_kafka_dead_letters_produced_total",
                           "streamscore_kafka_dead_letters_delivered_total", "streamscore_kafka_items_produced_total",
                           "streamscore_kafka_items_delivered_total", "streamscore_kafka_delivery_errors_total"})
    BOOST_CHECK_EQUAL(m.types[name], "counter");
  BOOST_CHECK_EQUAL(m.value("streamscore_kafka_delivery_errors_total", -1), 0);
  Result shown = run_cli(setup.dir, "status --url http://127.0.0.1:" + std::to_string(port));
  BOOST_CHECK_EQUAL(shown.exit_code, 0);
  const auto number = [](double v) { return std::to_string(static_cast<uint64_t>(v)); };
  const double dead = m.value("streamscore_kafka_dead_letters_delivered_total");
  BOOST_CHECK_MESSAGE(shown.out.find("kafka sinks     dead letters " + number(dead) + " (" + number(dead) +
                                     " delivered), items ") != std::string::npos,
                      shown.out);
  ::kill(pid, SIGTERM);
  BOOST_CHECK_EQUAL(wait_for_exit(pid), 0);
  // The topics hold what the counters say was delivered (a fresh cluster, one daemon).
  BOOST_CHECK_EQUAL(consume(setup.dir, setup.boot, "customer-events-dlq").size(), static_cast<std::size_t>(dead));
  BOOST_CHECK_GE(consume(setup.dir, setup.boot, "customer-scores").size(),
                 static_cast<std::size_t>(m.value("streamscore_kafka_items_delivered_total")));
}

// A sink whose brokers never answer: its messages are counted produced, then failed, and
// /metrics renders the failures as delivery errors.
BOOST_AUTO_TEST_CASE(undelivered_sink_messages_are_delivery_errors) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = "127.0.0.1:1";  // nothing listens
  kafka.properties = {{"message.timeout.ms", "1500"}};
  std::shared_ptr<DeadLetterSink> sink;
  KafkaSinkProbe probe;
  BOOST_REQUIRE(make_kafka_dead_letter_sink(kafka, "dlq", &probe, &sink).is_ok());
  const KafkaDeliveryCounters& counters = probe.dead_letters;
  const uint64_t produced = counters.produced, delivered = counters.delivered, failed = counters.failed;
  DeadLetterBatch batch;
  batch.source = "events.jsonl";
  append_dead_letter(batch.lines, Reason::not_json, "", "not JSON", "events.jsonl:1", "{oops");
  batch.entries.push_back({batch.lines.size(), Reason::not_json, -1, 1});
  BOOST_REQUIRE(sink->write(batch).is_ok());
  BOOST_CHECK_EQUAL(counters.produced - produced, 1u);
  BOOST_CHECK(!sink->flush().is_ok());
  BOOST_CHECK_EQUAL(counters.failed - failed, 1u);
  BOOST_CHECK_EQUAL(counters.delivered - delivered, 0u);
  MetricsRegistry registry;
  registry.add(&probe);
  MetricsSnapshot snap;
  BOOST_REQUIRE(parse_prometheus(registry.render(), &snap).is_ok());
  BOOST_CHECK_EQUAL(snap.value("streamscore_kafka_delivery_errors_total"),
                    static_cast<double>(counters.failed + probe.items.failed));
  BOOST_CHECK_GE(snap.value("streamscore_kafka_delivery_errors_total"), 1);
}

// Ctrl-C while `generate --kafka` produces at a rate: it stops, waits for the delivery
// reports, prints the summary and exits 0; the topic holds exactly the records it
// reports delivered, which are the first lines of the stream it was generating.
BOOST_AUTO_TEST_CASE(ctrl_c_stops_generate_kafka_and_delivers_what_it_produced) {
  TempDir dir("streamscore-kafka-sigint-");
  auto cluster = start_cluster({"customer-events"});
  const std::string boot = cluster->bootstrap_servers();
  const std::vector<std::string> stream = {"generate", "--events", "0", "--customers", "300", "--bad-rate",
                                           "0.02",     "--seed",   "4"};  // endless
  std::vector<std::string> args = stream;
  args.insert(args.end(), {"--kafka", boot, "--topic", "customer-events", "--rate", "2000"});
  const pid_t pid = spawn_streamscore(args, dir / "generate.out", dir / "generate.err");
  BOOST_REQUIRE(pid > 0);
  BOOST_REQUIRE_MESSAGE(wait_for([&] { return !consume(dir, boot, "customer-events").empty(); }, 60),
                        slurp(dir / "generate.err"));
  ::kill(pid, SIGINT);
  const int code = wait_for_exit(pid);
  const std::string err = slurp(dir / "generate.err");
  BOOST_REQUIRE_MESSAGE(code == 0, err);
  const GenerateSummary summary = summary_of(err);
  BOOST_CHECK(summary.interrupted);
  BOOST_CHECK_GT(summary.records, 0u);
  BOOST_CHECK_EQUAL(summary.delivered, summary.records);
  BOOST_CHECK_EQUAL(summary.failed, 0u);
  std::vector<std::string> values;
  for (const Message& m : consume(dir, boot, "customer-events")) values.push_back(m.value);
  BOOST_CHECK_EQUAL(values.size(), summary.delivered);
  std::string first = std::string(STREAMSCORE_BINARY);
  for (std::size_t i = 0; i < stream.size(); ++i) first += " " + stream[i];
  first += " | head -n " + std::to_string(summary.delivered);
  BOOST_CHECK(as_multiset(values) == as_multiset(lines_of(shell(dir, first))));
}

// The same against brokers that never answer, stopped with SIGTERM: every record
// produced is reported failed (none silently lost) and the exit code says so.
BOOST_AUTO_TEST_CASE(sigterm_with_undelivered_records_reports_them_failed) {
  TempDir dir("streamscore-kafka-sigterm-");
  const pid_t pid = spawn_streamscore(
      {"generate", "--events", "0", "--kafka", "127.0.0.1:1", "--rate", "1000", "-X", "message.timeout.ms=2000"},
      dir / "generate.out", dir / "generate.err");
  BOOST_REQUIRE(pid > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // whatever it produced by then
  ::kill(pid, SIGTERM);
  const int code = wait_for_exit(pid);
  const std::string err = slurp(dir / "generate.err");
  const GenerateSummary summary = summary_of(err);
  BOOST_CHECK_EQUAL(summary.delivered, 0u);
  BOOST_CHECK_EQUAL(summary.failed, summary.records);
  BOOST_CHECK_MESSAGE(code == (summary.records > 0 ? 1 : 0), err);
  if (summary.records > 0) BOOST_CHECK_MESSAGE(err.find("not delivered") != std::string::npos, err);
}

// kill -9 while following the file, then finish: nothing is missing from either topic
// (repeats are allowed: at least once).
BOOST_AUTO_TEST_CASE(after_a_crash_both_topics_still_hold_everything) {
  RunSetup setup("streamscore-kafka-crash-", {"customer-events-dlq", "customer-scores"});
  std::vector<std::string> sets = {"--set", "source.path=" + setup.log,
                                   "--set", "state.path=" + setup.state,
                                   "--set", "engine.batch_size=200",
                                   "--set", "checkpoint.interval=10ms",
                                   "--set", "kafka.bootstrap_servers=" + setup.boot,
                                   "--set", "dead_letter.kind=kafka",
                                   "--set", "output.topic=customer-scores"};
  std::vector<std::string> follow = {"run", "--set", "source.exit_at_end=false"};
  follow.insert(follow.end(), sets.begin(), sets.end());
  const pid_t pid = spawn_streamscore(follow, setup.dir / "follow.out");
  BOOST_REQUIRE(pid > 0);
  wait_until_open(setup.state);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  std::string rest = "run";
  for (const std::string& word : sets) rest += " " + word;
  Result r = run_cli(setup.dir, rest);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = run_cli(setup.dir, "export --state " + setup.state);
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  BOOST_CHECK(latest_items(consume(setup.dir, setup.boot, "customer-scores")) == export_by_customer(r.out));
  std::set<std::string> dead_letters;
  for (const Message& m : consume(setup.dir, setup.boot, "customer-events-dlq")) dead_letters.insert(m.value);
  const std::vector<std::string> file = setup.file_dead_letters();
  BOOST_CHECK(dead_letters == std::set<std::string>(file.begin(), file.end()));
}

BOOST_AUTO_TEST_CASE(a_dead_broker_is_an_error_not_a_hang) {
  TempDir dir("streamscore-kafka-dead-");
  // Port 1 on loopback: nothing listens, every connection is refused.
  Result r = run_cli(dir, "generate --events 50 --kafka 127.0.0.1:1 -X message.timeout.ms=1500");
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK_MESSAGE(r.err.find("not delivered") != std::string::npos, r.err);
  r = run_cli(dir, "generate --events 50 --kafka 127.0.0.1:1 -X no.such.property=1");
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK_MESSAGE(r.err.find("no.such.property") != std::string::npos, r.err);

  const std::string log = dir / "events.jsonl";
  BOOST_REQUIRE_EQUAL(run_cli(dir, std::string(kLog) + " --out " + log).exit_code, 0);
  r = run_cli(dir, "run --set source.path=" + log + " --set state.path=" + (dir / "state") +
                       " --set dead_letter.kind=kafka --set kafka.bootstrap_servers=127.0.0.1:1"
                       " --set kafka.message.timeout.ms=1500");
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK_MESSAGE(
      r.err.find("dead letter") != std::string::npos && r.err.find("not delivered") != std::string::npos, r.err);
}

// The engine side of the output topic, without Kafka: what a sink receives, and a
// failed delivery failing the checkpoint.
struct RecordingSink : ItemSink {
  struct Shared {
    std::map<std::string, ItemRecord> latest;
    std::size_t published = 0;
    bool fail_flush = false;
  };
  explicit RecordingSink(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  Status publish(const ItemRecord& item) override {
    ++shared_->published;
    auto& slot = shared_->latest[item.pk];
    if (item.version > slot.version) slot = item;
    return Status::ok();
  }
  Status flush() override { return shared_->fail_flush ? Status::io_error("broker gone") : Status::ok(); }
  std::string identity() const override { return "recording"; }
  std::shared_ptr<Shared> shared_;
};

std::vector<std::string> generated_lines(int64_t events) {
  GeneratorOptions g;
  g.events = events;
  g.customers = 200;
  g.days = 35;
  EventGenerator generator(g);
  std::vector<std::string> lines;
  for (std::string line; generator.next(&line);) lines.push_back(line);
  return lines;
}

// An engine on 2 shards whose item sink records into `shared`.
EngineOptions recording_options(std::shared_ptr<RecordingSink::Shared> shared) {
  EngineOptions options;
  options.shards = 2;
  options.now_ns = [] { return kTestNow; };
  options.make_item_sink = [shared](std::unique_ptr<ItemSink>* out) {
    *out = std::make_unique<RecordingSink>(shared);
    return Status::ok();
  };
  return options;
}

std::vector<std::string> items_in(const RecordingSink::Shared& shared) {
  std::vector<std::string> items;
  for (const auto& [pk, item] : shared.latest) items.push_back(item.item_json);
  return items;
}

BOOST_AUTO_TEST_CASE(engine_hands_committed_items_to_the_item_sink) {
  auto shared = std::make_shared<RecordingSink::Shared>();
  const EngineOptions options = recording_options(shared);
  auto store = make_memory_store();
  EngineRun run;
  Status s = run_lines(generated_lines(4000), options, 250, *store, &run, true, /*checkpoint_every=*/2);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  BOOST_CHECK(items_in(*shared) == run.items);          // both in PK order
  BOOST_CHECK_GT(shared->published, run.items.size());  // several checkpoints
  std::string marker;
  BOOST_REQUIRE(store->get_meta(kMetaOutput, &marker).is_ok());
  std::string checkpoint;
  BOOST_REQUIRE(store->get_meta(kMetaCheckpoint, &checkpoint).is_ok());
  BOOST_CHECK_EQUAL(marker, "recording\n" + checkpoint);
}

BOOST_AUTO_TEST_CASE(an_undelivered_item_fails_the_next_checkpoint) {
  auto shared = std::make_shared<RecordingSink::Shared>();
  shared->fail_flush = true;
  const EngineOptions options = recording_options(shared);
  auto store = make_memory_store();
  EngineRun run;
  Status s = run_lines(generated_lines(1000), options, 250, *store, &run, true, /*checkpoint_every=*/1);
  BOOST_CHECK(!s.is_ok());
  BOOST_CHECK(s.to_string().find("broker gone") != std::string::npos);
  std::string checkpoint;
  BOOST_CHECK(store->get_meta(kMetaCheckpoint, &checkpoint).is_not_found());  // nothing committed
}

// A crash after a commit, before its items are known delivered: the next start
// publishes the whole table before reading anything.
BOOST_AUTO_TEST_CASE(a_start_after_a_crash_publishes_the_whole_table) {
  auto first = std::make_shared<RecordingSink::Shared>();
  auto second = std::make_shared<RecordingSink::Shared>();
  auto store = make_memory_store();
  const std::vector<std::string> lines = generated_lines(3000);
  {
    std::unique_ptr<Engine> engine;
    BOOST_REQUIRE(Engine::start(recording_options(first), store.get(), &engine).is_ok());
    BOOST_REQUIRE(engine->submit(make_batch(lines, 0, lines.size(), "test.jsonl")).is_ok());
    BOOST_REQUIRE(engine->checkpoint({}).is_ok());
    // destroyed without finish(): a crash right after the commit
  }
  const std::vector<std::string> committed = export_items(*store);
  BOOST_REQUIRE(!committed.empty());
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(recording_options(second), store.get(), &engine).is_ok());
  BOOST_CHECK(items_in(*second) == committed);
  BOOST_CHECK_EQUAL(second->published, committed.size());
  // Recorded as delivered: a third start publishes nothing.
  engine.reset();
  auto third = std::make_shared<RecordingSink::Shared>();
  BOOST_REQUIRE(Engine::start(recording_options(third), store.get(), &engine).is_ok());
  BOOST_CHECK_EQUAL(third->published, 0u);
}
