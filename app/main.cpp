// streamscore: exact 30-day customer features from a stream of events.
#include <CLI/CLI.hpp>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/logging.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "streamscore: exact, replayable 30-day customer features (5-minute event-time windows)\n"
      "from the customer-events stream, kept in the customer_feature_state table."};
  app.set_version_flag("--version", std::string("streamscore ") + STREAMSCORE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Quick tour:\n"
      "  streamscore generate --events 1000000 --out events.jsonl\n"
      "  streamscore replay --events events.jsonl --state data/state\n"
      "  streamscore export --state data/state --out items.jsonl\n"
      "  streamscore run --config config/streamscore.example.toml\n"
      "  streamscore backfill --events events.jsonl --state data/state --max-writes-per-sec 50000\n"
      "  streamscore stress --scenario hot-keys --rate 50000 --duration 10\n"
      "  streamscore status --url http://127.0.0.1:8480 --watch\n"
      "  streamscore train --events events.jsonl --models models\n"
      "  streamscore features --events events.jsonl --spine labels.jsonl --out rows.jsonl\n"
      "  streamscore model activate v1 --models models\n"
      "  streamscore mock-kafka --brokers 3 --partitions 8   # a Kafka cluster on loopback\n"
      "  streamscore dynamodb create-table --region eu-west-1\n"
      "Run 'streamscore COMMAND --help' for the options of each command.");
  // Logs go to stderr from the start, whatever the command: stdout carries data (export,
  // generate) and --json summaries, and a library's warning (RocksDB's) must not land there.
  // Commands that read log.level set it again; "info" is always a valid level.
  static_cast<void>(streamscore::configure_logging("info"));
  int exit_code = streamscore::kExitOk;
  streamscore::register_generate_command(app, &exit_code);
  streamscore::register_replay_command(app, &exit_code);
  streamscore::register_export_command(app, &exit_code);
  streamscore::register_run_command(app, &exit_code);
  streamscore::register_backfill_command(app, &exit_code);
  streamscore::register_stress_command(app, &exit_code);
  streamscore::register_status_command(app, &exit_code);
  streamscore::register_train_command(app, &exit_code);
  streamscore::register_features_command(app, &exit_code);
  streamscore::register_model_command(app, &exit_code);
  streamscore::register_mock_kafka_command(app, &exit_code);
  streamscore::register_dynamodb_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the usage error
    return code == 0 ? streamscore::kExitOk : streamscore::kExitUsage;
  }
  return exit_code;
}
