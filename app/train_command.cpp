// `streamscore train`: point-in-time training set from event logs, XGBoost model,
// published as the next free version in --models DIR (not activated).
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/model_support.hpp"
#include "model/registry.hpp"
#include "model/trainer.hpp"
#include "model/training_set.hpp"

namespace streamscore {

namespace {

struct TrainArgs {
  std::vector<std::string> events;
  std::string models_dir;
  std::string config_path;
  std::vector<std::string> sets;
  std::vector<std::string> features;  // the model's columns (empty: every feature)
  std::string cut_every = "1d";
  double top_fraction = 0.1;
  double min_amount = -1;
  double validation_fraction = 0.2;
  TrainParams params;
  bool json = false;
};

void phase(const char* what) {
  if (::isatty(STDERR_FILENO) == 1) std::fprintf(stderr, "\r\033[Ktrain: %s", what);
}

int train(const TrainArgs& args) {
  Config config;
  Status s = load_config(args.config_path, args.sets, &config);
  if (!s.is_ok()) {
    print_error("train", s.message());
    return kExitUsage;
  }
  TrainerOptions options;
  options.features = config.features;
  options.feature_names = args.features;
  std::vector<ModelFeature> schema;  // checked before the log is read
  if (!(s = select_model_features(options.features, options.feature_names, &schema)).is_ok()) {
    print_error("train", "--features: " + s.message());
    return kExitUsage;
  }
  std::unique_ptr<S3Client> s3;
  std::vector<std::string> logs;
  if (!(s = event_logs_of(args.events, config.s3, &s3, &logs)).is_ok()) {
    print_error("train", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  TrainingSetOptions set_options;
  set_options.replay.s3 = s3.get();
  set_options.replay.allowed_lateness_ns = config.window.allowed_lateness_ns;
  set_options.replay.features = config.features;
  set_options.replay.max_future_skew_ns = config.window.max_future_skew_ns;
  int64_t cut_ns = 0;
  if (!(s = parse_duration(args.cut_every, &cut_ns)).is_ok() || cut_ns <= 0 || cut_ns % kWindowNanos != 0) {
    print_error("train", "--cut-every '" + args.cut_every + "': expected a positive multiple of 5m (e.g. 1d, 12h)");
    return kExitUsage;
  }
  set_options.cut_every_windows = cut_ns / kWindowNanos;
  if (!(args.top_fraction > 0 && args.top_fraction < 1)) {
    print_error("train", "--top-fraction must be in (0, 1)");
    return kExitUsage;
  }
  set_options.top_fraction = args.top_fraction;
  if (args.min_amount >= 0) set_options.min_amount_cents = std::llround(args.min_amount * 100);
  if (!(args.validation_fraction > 0 && args.validation_fraction < 1)) {
    print_error("train", "--validation-fraction must be in (0, 1)");
    return kExitUsage;
  }
  if (args.params.rounds < 1 || args.params.max_depth < 1 || args.params.nthread < 1 ||
      !(args.params.eta > 0 && args.params.eta <= 1)) {
    print_error("train", "--rounds, --max-depth and --nthread must be >= 1, --eta in (0, 1]");
    return kExitUsage;
  }

  const auto start = std::chrono::steady_clock::now();
  phase("building the point-in-time training set");
  TrainingSet set;
  if (!(s = build_training_set(logs, set_options, &set)).is_ok()) {
    phase("");
    print_error("train", s.to_string());
    return kExitFailure;
  }
  phase("training");
  options.params = args.params;
  options.validation_fraction = args.validation_fraction;
  TrainedModel model;
  if (!(s = train_model(set, set_options, options, &model)).is_ok()) {
    phase("");
    print_error("train", s.message());
    return kExitFailure;
  }
  ModelRegistry registry(args.models_dir);
  if (!(s = registry.publish(model.artifact, &model.meta)).is_ok()) {
    phase("");
    print_error("train", s.to_string());
    return kExitFailure;
  }
  phase("");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const ModelMeta& m = model.meta;
  const std::string artifact = (std::filesystem::path(args.models_dir) / artifact_file_name(m.version)).string();
  if (args.json) {
    std::printf(
        "{\"command\":\"train\",\"version\":\"%s\",\"artifact\":\"%s\",\"sha256\":\"%s\","
        "\"read\":%llu,\"accepted\":%llu,\"cuts_train\":%llu,\"cuts_validation\":%llu,"
        "\"rows_train\":%llu,\"rows_validation\":%llu,\"validation_auc\":%.6f,"
        "\"validation_logloss\":%.6f,\"seconds\":%.3f}\n",
        m.version_name().c_str(), artifact.c_str(), m.sha256.c_str(), (unsigned long long)set.read,
        (unsigned long long)set.accepted, (unsigned long long)m.cuts_train, (unsigned long long)m.cuts_validation,
        (unsigned long long)m.rows_train, (unsigned long long)m.rows_validation, m.validation_auc, m.validation_logloss,
        seconds);
  } else {
    std::string out = fmt::format(
        "train: {} written in {:.2f} s (not active; activate with "
        "'streamscore model activate {} --models {}')\n",
        artifact, seconds, m.version_name(), args.models_dir);
    out += fmt::format("  events read / accepted   {} / {}\n", set.read, set.accepted);
    out += fmt::format("  cuts (every {})          {} train ({} .. before {}), {} validation\n", args.cut_every,
                       m.cuts_train, m.first_cut, m.first_validation_cut, m.cuts_validation);
    out += fmt::format("  rows                     {} train ({} positive), {} validation ({} positive)\n", m.rows_train,
                       m.positives_train, m.rows_validation, m.positives_validation);
    out += fmt::format("  validation AUC           {:.4f}\n", m.validation_auc);
    out += fmt::format("  validation logloss       {:.4f}\n", m.validation_logloss);
    out += fmt::format("  sha256                   {}\n", m.sha256);
    std::fputs(out.c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace

void register_train_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = root.add_subcommand(
      "train", "Train the high-value-customer model on a point-in-time training set from event logs");
  cmd->add_option("--events", args->events,
                  "JSONL event log, plain or gzip/zstd-compressed: a file, s3://bucket/key or every object under "
                  "s3://bucket/prefix/ (repeat for several, read in order)")
      ->required();
  cmd->add_option("--models", args->models_dir, "models directory; the model becomes its next vN")->required();
  cmd->add_option("--config", args->config_path, "TOML config file (its [window] section applies)");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
  cmd->add_option("--features", args->features,
                  "the features the model reads, in column order, comma-separated (default: every feature the "
                  "engine computes)")
      ->delimiter(',');
  cmd->add_option("--cut-every", args->cut_every, "interval between snapshot cuts (multiple of 5m)")
      ->capture_default_str();
  cmd->add_option("--top-fraction", args->top_fraction,
                  "label: the top fraction of a cut's customers by next-30-day amount")
      ->capture_default_str();
  cmd->add_option("--min-amount", args->min_amount, "label instead: next-30-day amount at least this (currency units)");
  cmd->add_option("--validation-fraction", args->validation_fraction,
                  "share of the latest cuts held out for validation")
      ->capture_default_str();
  cmd->add_option("--rounds", args->params.rounds, "boosting rounds")->capture_default_str();
  cmd->add_option("--max-depth", args->params.max_depth, "tree depth")->capture_default_str();
  cmd->add_option("--eta", args->params.eta, "learning rate")->capture_default_str();
  cmd->add_option("--seed", args->params.seed, "XGBoost seed")->capture_default_str();
  cmd->add_option("--nthread", args->params.nthread, "XGBoost threads")->capture_default_str();
  cmd->add_flag("--json", args->json, "print the summary as one JSON object");
  cmd->footer(
      "Examples:\n"
      "  streamscore generate --events 1000000 --days 45 --out events.jsonl\n"
      "  streamscore train --events events.jsonl --models models\n"
      "  streamscore train --events events.jsonl --models models --min-amount 5000 --rounds 100\n"
      "  streamscore train --events events.jsonl --models models --features total_txn_30d,avg_amount_30d\n"
      "Writes models/high_value_customer_model_vN.json and .meta.json (N = next free version).\n"
      "Training the same log twice gives byte-identical artifacts. Exit code 0 on success,\n"
      "1 on failure (e.g. less than 2 labelled cuts), 2 on usage errors.");
  cmd->callback([args, exit_code] { *exit_code = train(*args); });
}

}  // namespace streamscore
