// `streamscore features`: point-in-time rows for training. Each row of a spine (a
// customer and an instant) gets the customer's item as the engine wrote it at the
// latest tick <= at - lag, from one replay of the event logs (model/point_in_time.hpp).
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "model/point_in_time.hpp"

namespace streamscore {

namespace {

constexpr int64_t kMaxLagNs = 3650LL * 24 * 3600 * kNanosPerSecond;  // 10 years

struct FeaturesArgs {
  std::vector<std::string> events;
  std::string spine;
  std::string out;
  std::string config_path;
  std::vector<std::string> sets;
  std::string lag = "0s";
  int threads = 0;  // 0: every core
  bool json = false;
};

// A phase on stderr when it is a terminal; "" clears the line.
void phase(const char* what) {
  if (::isatty(STDERR_FILENO) != 1) return;
  std::fprintf(stderr, *what ? "\r\033[Kfeatures: %s" : "\r\033[K%s", what);
}

// The usage errors (exit 2) of the arguments but --events, before any work: a message
// naming the argument, or "". `logs`: the event logs --events names.
std::string check_args(const FeaturesArgs& args, const std::vector<std::string>& logs, int64_t* lag_ns) {
  if (!std::filesystem::is_regular_file(args.spine)) return "--spine '" + args.spine + "': no such file";
  if (!parse_duration(args.lag, lag_ns).is_ok() || *lag_ns < 0 || *lag_ns > kMaxLagNs)
    return "--lag '" + args.lag + "': expected a duration from 0s to 3650d (e.g. 0s, 5m, 1h, 2d)";
  if (args.out != "-")
    for (const auto& input : logs) {
      if (is_s3_url(input)) continue;
      Status s = check_output_path("--out", args.out, "--events", input, "");
      if (!s.is_ok()) return s.message();
    }
  if (args.out != "-" && same_file(args.out, args.spine)) return "--out '" + args.out + "' is the --spine file";
  if (args.threads < 0 || args.threads > 256)
    return "--threads " + std::to_string(args.threads) + ": expected 0 to 256";
  return {};
}

void print_features_summary(const FeaturesArgs& args, const PointInTimeStats& stats, double seconds) {
  FILE* to = args.out == "-" ? stderr : stdout;  // stdout may be the rows
  const LogReplayCounts& n = stats.log;
  const double rate = seconds > 0 ? static_cast<double>(n.read) / seconds : 0;
  if (args.json) {
    std::fprintf(to,
                 "{\"command\":\"features\",\"rows\":%llu,\"rows_with_item\":%llu,\"rows_without_item\":%llu,"
                 "\"read\":%llu,\"accepted\":%llu,\"duplicates\":%llu,\"dead_lettered\":%llu,"
                 "\"seconds\":%.3f,\"records_per_second\":%.0f}\n",
                 (unsigned long long)stats.rows, (unsigned long long)stats.rows_with_item,
                 (unsigned long long)(stats.rows - stats.rows_with_item), (unsigned long long)n.read,
                 (unsigned long long)n.accepted, (unsigned long long)n.duplicates, (unsigned long long)n.dead_lettered,
                 seconds, rate);
    return;
  }
  std::string text = fmt::format("features: {} rows written to {} in {:.2f} s\n", stats.rows,
                                 args.out == "-" ? "stdout" : args.out, seconds);
  text +=
      fmt::format("  rows with an item / without   {} / {}\n", stats.rows_with_item, stats.rows - stats.rows_with_item);
  text += fmt::format("  events read                   {} ({:.0f} records/s)\n", n.read, rate);
  text += fmt::format("  accepted / duplicates / dead  {} / {} / {}\n", n.accepted, n.duplicates, n.dead_lettered);
  std::fputs(text.c_str(), to);
}

int features(const FeaturesArgs& args) {
  Config config;
  Status s = load_config(args.config_path, args.sets, &config);
  if (!s.is_ok()) {
    print_error("features", s.message());
    return kExitUsage;
  }
  std::unique_ptr<S3Client> s3;
  std::vector<std::string> logs;
  if (!(s = event_logs_of(args.events, config.s3, &s3, &logs)).is_ok()) {
    print_error("features", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  int64_t lag_ns = 0;
  if (const std::string why = check_args(args, logs, &lag_ns); !why.empty()) {
    print_error("features", why);
    return kExitUsage;
  }
  const auto start = std::chrono::steady_clock::now();
  phase("reading the spine");
  std::vector<SpineRow> spine;
  if (!(s = read_spine(args.spine, &spine)).is_ok()) {
    phase("");
    print_error("features", s.message());
    return kExitFailure;
  }
  // Written beside the output and renamed at the end: a failed run leaves no partial rows.
  const std::string partial = args.out + ".partial";
  FILE* out = args.out == "-" ? stdout : std::fopen(partial.c_str(), "wb");
  if (out == nullptr) {
    phase("");
    print_error("features", "cannot write '" + partial + "'");
    return kExitFailure;
  }
  LogReplayOptions options;
  options.allowed_lateness_ns = config.window.allowed_lateness_ns;
  options.max_future_skew_ns = config.window.max_future_skew_ns;
  options.features = config.features;
  options.s3 = s3.get();
  // A shard per thread: the customers split as the engine splits them, the items alike.
  options.shards =
      args.threads > 0 ? static_cast<std::size_t>(args.threads) : std::max(1u, std::thread::hardware_concurrency());
  PointInTimeStats stats;
  phase("");
  ProgressLine progress("features");
  s = join_point_in_time(
      logs, spine, lag_ns, options,
      [out, &args](const std::string& row) {
        if (std::fwrite(row.data(), 1, row.size(), out) != row.size() || std::fputc('\n', out) == EOF)
          return Status::io_error("cannot write '" + args.out + "'");
        return Status::ok();
      },
      &stats, [&progress](const LogReplayCounts& n) { progress.update(n); });
  progress.done();
  const bool closed = out == stdout ? std::fflush(out) == 0 : std::fclose(out) == 0;
  if (s.is_ok() && !closed) s = Status::io_error("cannot write '" + args.out + "'");
  std::error_code ec;
  if (s.is_ok() && out != stdout) std::filesystem::rename(partial, args.out, ec);
  if (s.is_ok() && ec) s = Status::io_error("cannot rename '" + partial + "' to '" + args.out + "': " + ec.message());
  if (!s.is_ok()) {
    if (out != stdout) std::filesystem::remove(partial, ec);
    print_error("features", s.to_string());
    return kExitFailure;
  }
  print_features_summary(args, stats, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return kExitOk;
}

}  // namespace

void register_features_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<FeaturesArgs>();
  CLI::App* cmd = root.add_subcommand(
      "features", "Point-in-time feature rows: each spine row joined to the customer's item as of its instant");
  cmd->add_option("--events", args->events,
                  "JSONL event log, plain or gzip/zstd-compressed: a file, s3://bucket/key or every object under "
                  "s3://bucket/prefix/ (repeat for several, read in order)")
      ->required();
  cmd->add_option("--spine", args->spine,
                  "JSONL rows {\"customer_id\":..., \"at\":\"2025-01-10T12:34:56Z\", ...any other fields}")
      ->required();
  cmd->add_option("--out", args->out, "output JSONL, one row per spine row in spine order ('-' = stdout)")->required();
  cmd->add_option("--lag", args->lag,
                  "each row takes the item at the latest 5-minute tick <= at - LAG (e.g. 5m, 1h: the "
                  "delay before a served item reaches the model)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads, one shard of the customers each (default: all cores)");
  cmd->add_option("--config", args->config_path, "TOML config file (its [window] section applies)");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
  cmd->add_flag("--json", args->json, "print the summary as one JSON object");
  cmd->footer(
      "Each output line is the spine row as written plus \"features\" (the item's features object),\n"
      "\"as_of\" and \"item_version\": the item the engine wrote at the latest tick T <= at - lag,\n"
      "so it holds only events with event_time < T that had arrived when the clock reached T.\n"
      "All three are null when the customer had no item by then. The log is replayed once,\n"
      "as `replay` would (duplicates, lateness, expiry); the spine may be in any order.\n"
      "Examples:\n"
      "  streamscore features --events events.jsonl --spine labels.jsonl --out rows.jsonl\n"
      "  streamscore features --events day1.jsonl --events day2.jsonl --spine s.jsonl --out - --lag 5m\n"
      "Exit code 0 on success, 1 on a bad spine line (named by line) or an I/O failure,\n"
      "2 on usage errors.");
  cmd->callback([args, exit_code] { *exit_code = features(*args); });
}

}  // namespace streamscore
