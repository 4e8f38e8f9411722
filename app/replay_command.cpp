// `streamscore replay`: clear the state and rebuild it from the event log.
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>

#include "actors/engine.hpp"
#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/logging.hpp"
#include "app/model_support.hpp"
#include "io/line_reader.hpp"

namespace streamscore {

namespace {

struct ReplayArgs {
  std::vector<std::string> events;
  std::string state_dir;
  std::string config_path;
  std::string dead_letter;
  std::string models_dir;
  std::vector<std::string> sets;
  int shards = 0;
  int threads = 0;
  int batch_size = 0;
  bool json = false;
};

// `partition`: the log's in a partitioned layout, whose clock its records tick with; -1: none.
Status feed_file(Engine& engine, const std::string& path, int32_t partition, S3Client* s3, std::size_t batch_size,
                 ProgressLine& progress) {
  LineReader reader;
  reader.set_s3(s3);
  Status s = reader.open(path);
  if (!s.is_ok()) return s;
  for (;;) {
    RawBatch batch;
    bool at_end = false;
    if (!(s = reader.next(batch_size, /*take_partial=*/true, &batch, &at_end)).is_ok()) return s;
    if (partition >= 0) batch.partitions.assign(batch.lines.size(), partition);
    if (!batch.lines.empty() && !(s = engine.submit(std::move(batch))).is_ok()) return s;
    progress.update(engine.router_probe());
    if (at_end) return Status::ok();
  }
}

int replay(const ReplayArgs& args) {
  std::vector<std::string> sets = args.sets;
  if (args.shards > 0) sets.push_back("engine.shards=" + std::to_string(args.shards));
  if (args.threads > 0) sets.push_back("engine.threads=" + std::to_string(args.threads));
  if (args.batch_size > 0) sets.push_back("engine.batch_size=" + std::to_string(args.batch_size));
  if (!args.dead_letter.empty()) sets.push_back("dead_letter.path=" + args.dead_letter);
  if (!args.models_dir.empty()) sets.push_back("model.dir=" + args.models_dir);
  Config config;
  Status s = load_config(args.config_path, sets, &config);
  // Logs (RocksDB's warnings among them) go to stderr: stdout holds the summary only.
  if (s.is_ok()) s = configure_logging(config.log.level);
  if (!s.is_ok()) {
    print_error("replay", s.message());
    return kExitUsage;
  }
  // --state DIR is RocksDB; state.backend = "dynamodb" (--config or --set) replays into the table.
  if (!(s = state_from_args(args.state_dir, &config.state)).is_ok()) {
    print_error("replay", s.message());
    return kExitUsage;
  }
  std::unique_ptr<S3Client> s3;
  PartitionedLogs logs;
  if (!(s = event_logs_of(args.events, config.s3, &s3, &logs)).is_ok()) {
    print_error("replay", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  for (const auto& path : logs.logs) {
    if (is_s3_url(path)) continue;
    // The dead-letter file is truncated first: as an input, the log would be lost.
    if (config.dead_letter.kind == "file" &&
        !(s = check_output_path("dead_letter.path (--dead-letter)", config.dead_letter.path, "--events", path,
                                config.state.backend == "rocksdb" ? config.state.path : ""))
             .is_ok()) {
      print_error("replay", s.message());
      return kExitUsage;
    }
  }
  std::unique_ptr<StateStore> store;
  if (!(s = open_store(config.state, &store, /*bulk_load=*/true)).is_ok()) {
    print_error("replay", s.to_string());
    return exit_code_of_open(config.state, s);
  }
  if (!(s = store->clear()).is_ok()) {
    print_error("replay", s.to_string());
    return kExitFailure;
  }
  EngineOptions options = engine_options_from(config, /*kafka_sinks=*/nullptr);  // no /metrics to show them
  options.bulk_load = true;  // a replay writes each item once, at the end
  // A replay scores with the model active when it starts (it does not follow swaps).
  // A missing models directory or a refused active model: nothing is written (exit 2).
  if (!(s = prepare_scoring(config.model, config.features, &options)).is_ok()) {
    print_error("replay", s.message());
    return kExitUsage;
  }
  if (options.scoring && !options.initial_model)
    log_line("replay", "no active model in '" + config.model.dir + "': items carry no score");
  std::unique_ptr<Engine> engine;
  if (!(s = Engine::start(options, store.get(), &engine)).is_ok()) {
    print_error("replay", s.to_string());
    return kExitFailure;
  }
  const auto start = std::chrono::steady_clock::now();
  ProgressLine progress("replay");
  for (std::size_t i = 0; i < logs.logs.size(); ++i) {
    const int32_t partition = logs.partitions.empty() ? -1 : logs.partitions[i];
    if (!(s = feed_file(*engine, logs.logs[i], partition, s3.get(), config.engine.batch_size, progress)).is_ok()) {
      progress.done();
      print_error("replay", s.to_string());
      return kExitFailure;
    }
  }
  RunStats stats;
  const auto finish_start = std::chrono::steady_clock::now();
  s = engine->finish(/*final_tick=*/true, &stats);
  stats.finish_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - finish_start).count();
  progress.done();
  if (!s.is_ok()) {
    print_error("replay", s.to_string());
    return kExitFailure;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary("replay", stats, seconds, args.json);
  if (!args.json) print_model_summary(*engine);
  if (!args.json) print_store_counters(*store);
  return stats.balanced() ? kExitOk : kExitFailure;
}

}  // namespace

void register_replay_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = root.add_subcommand("replay", "Clear the state in --state DIR and rebuild it from event log files");
  cmd->add_option("--events", args->events,
                  "JSONL event log, plain or gzip/zstd-compressed: a file, s3://bucket/key or every object under "
                  "s3://bucket/prefix/ (partition=N objects: a clock per partition); repeat for several, read in order")
      ->required();
  cmd->add_option("--state", args->state_dir,
                  "RocksDB state directory (cleared first); not with state.backend = \"dynamodb\"");
  cmd->add_option("--config", args->config_path, "TOML config file (window, engine, dead_letter)");
  cmd->add_option("--dead-letter", args->dead_letter, "where invalid/expired records go (JSONL)");
  cmd->add_option("--models", args->models_dir, "models directory: items get the active model's score (= [model] dir)");
  cmd->add_option("--shards", args->shards, "shard actors (results do not depend on it)");
  cmd->add_option("--threads", args->threads, "worker threads (default: all cores)");
  cmd->add_option("--batch-size", args->batch_size, "records per batch");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
  cmd->add_flag("--json", args->json, "print the summary as one JSON object");
  cmd->footer(
      "Example:\n"
      "  streamscore generate --events 1000000 --out events.jsonl\n"
      "  streamscore replay --events events.jsonl --state data/state --dead-letter data/dlq.jsonl\n"
      "  streamscore replay --events events.jsonl --state data/state --models models   # with scores\n"
      "  streamscore replay --events events.jsonl --set state.backend=dynamodb \\\n"
      "      --set state.endpoint=http://127.0.0.1:8000     # into a DynamoDB table (cleared first)\n"
      "Prints read/accepted/duplicates/dead-lettered (by reason)/expired/customers/ticks and the\n"
      "throughput. Exit code 0 when the counters balance, 1 on failure, 2 on usage errors.");
  cmd->callback([args, exit_code] { *exit_code = replay(*args); });
}

}  // namespace streamscore
