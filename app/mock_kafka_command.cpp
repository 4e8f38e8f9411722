// `streamscore mock-kafka`: a Kafka cluster on loopback for trying the Kafka path and
// for tests. No Kafka broker is packaged for Debian; librdkafka's mock cluster speaks
// the real protocol, so kcat and any other client can use it. The bootstrap servers
// are the first line on stdout, so that a script can read them and go on.
#include <pthread.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "io/kafka_mock.hpp"

namespace streamscore {

namespace {

// The topics of the sinks' defaults (dead_letter.topic, the README's output.topic),
// always created, so that `run` with either works without further setup.
const std::vector<std::string> kSinkTopics = {"customer-events-dlq", "customer-scores"};

struct MockKafkaArgs {
  int brokers = 3;
  int partitions = 8;
  std::vector<std::string> topics = {"customer-events"};
};

// Kafka's own rule for topic names.
CLI::Validator topic_name() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty() || text.size() > 249 || text == "." || text == "..")
          return "'" + text + "': a topic name has 1 to 249 characters and is not '.' or '..'";
        for (char c : text)
          if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
            return "'" + text + "': a topic name has only letters, digits, '.', '_' and '-'";
        return {};
      },
      "NAME");
}

MockKafkaOptions cluster_options(const MockKafkaArgs& args) {
  MockKafkaOptions options;
  options.brokers = args.brokers;
  options.topics.clear();
  std::vector<std::string> names = args.topics;
  for (const std::string& sink : kSinkTopics)
    if (std::find(names.begin(), names.end(), sink) == names.end()) names.push_back(sink);
  for (const std::string& name : names)
    if (std::none_of(options.topics.begin(), options.topics.end(), [&](const MockTopic& t) { return t.name == name; }))
      options.topics.push_back(MockTopic{name, args.partitions});
  return options;
}

// Blocks until SIGINT or SIGTERM. The signals are blocked in every thread (the mask is
// set before the cluster starts its threads, which inherit it) and taken here.
void wait_for_stop(const sigset_t& stop_signals) {
  int signal = 0;
  while (sigwait(&stop_signals, &signal) != 0) {
  }
  std::fprintf(stderr, "streamscore mock-kafka: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
}

int mock_kafka(const MockKafkaArgs& args) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const MockKafkaOptions options = cluster_options(args);
  std::unique_ptr<MockKafkaCluster> cluster;
  Status s = MockKafkaCluster::start(options, &cluster);
  if (!s.is_ok()) {
    print_error("mock-kafka", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  const std::string bootstrap = cluster->bootstrap_servers();
  std::printf("%s\n", bootstrap.c_str());
  std::fflush(stdout);
  std::string topics;
  for (const MockTopic& t : options.topics)
    topics += (topics.empty() ? "" : ", ") + t.name + " (" + std::to_string(t.partitions) + " partitions)";
  std::fprintf(stderr, "streamscore mock-kafka: %d broker(s) at %s; topics: %s; Ctrl-C to stop\n", options.brokers,
               bootstrap.c_str(), topics.c_str());
  std::fprintf(stderr,
               "streamscore mock-kafka: retention: each partition keeps its newest %.0f MiB (%zu bytes) or %d "
               "produce batches; older records are deleted (librdkafka's mock, no setting changes it): give a "
               "big log more partitions\n",
               kMockPartitionMaxBytes / (1024.0 * 1024.0), kMockPartitionMaxBytes, kMockPartitionMaxBatches);
  wait_for_stop(stop_signals);
  cluster.reset();  // stops the brokers; everything they held is gone
  return kExitOk;
}

}  // namespace

void register_mock_kafka_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<MockKafkaArgs>();
  CLI::App* cmd =
      root.add_subcommand("mock-kafka", "Run a Kafka cluster on loopback (librdkafka's mock cluster) until Ctrl-C");
  cmd->add_option("--brokers", args->brokers, "number of brokers")->capture_default_str()->check(CLI::Range(1, 16));
  cmd->add_option("--partitions", args->partitions, "partitions of every topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--topic", args->topics, "a topic to create (repeatable)")
      ->capture_default_str()
      ->check(topic_name());
  cmd->footer(
      "Prints the bootstrap servers as the first line on stdout, logs on stderr, and runs until\n"
      "SIGINT/SIGTERM (exit 0). The topics customer-events-dlq and customer-scores (the\n"
      "dead-letter and output topics) are always created too. Everything is in memory and\n"
      "gone when it stops. Like a retention limit, each partition keeps its newest 5 MiB or\n"
      "100,000 produce batches (librdkafka's mock; no setting changes it); older records are\n"
      "deleted (generate --kafka says which), so give big logs more partitions (500,000\n"
      "generated events: --partitions 64). Examples:\n"
      "  streamscore mock-kafka --brokers 3 --partitions 8 > boot.txt &\n"
      "  BOOT=$(head -n 1 boot.txt)\n"
      "  kcat -b $BOOT -L                                               # brokers and topics\n"
      "  echo "
      "'C1|{\"event_id\":\"e-1\",\"customer_id\":\"C1\",\"event_time\":\"2025-01-01T10:05:00Z\",\"event_type\":"
      "\"login\",\"amount\":0}' \\\n"
      "    | kcat -b $BOOT -P -t customer-events -K '|'                  # key|value\n"
      "  kcat -b $BOOT -C -t customer-events -e -f '%k\\t%s\\n'            # read it all back\n"
      "  streamscore generate --events 100000 --kafka $BOOT --topic customer-events\n"
      "  streamscore run --set kafka.bootstrap_servers=$BOOT --set source.kind=kafka");
  cmd->callback([args, exit_code] { *exit_code = mock_kafka(*args); });
}

}  // namespace streamscore
