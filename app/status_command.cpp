// `streamscore status --url http://127.0.0.1:8480`: reads a running daemon's /metrics
// and /readyz and shows the pipeline: once, or refreshed every --interval with --watch
// (rates are computed between refreshes). Only the public HTTP routes are used, so it
// works against any daemon it can reach.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <optional>
#include <thread>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "io/http_client.hpp"
#include "io/metrics_text.hpp"

namespace streamscore {

namespace {

std::atomic<bool> g_status_stop{false};
void on_status_signal(int) {
  g_status_stop.store(true);
}

struct StatusArgs {
  std::string url = "http://127.0.0.1:8480";
  bool watch = false;
  double interval_s = 1.0;
  int count = 0;  // refreshes in --watch mode; 0 = until Ctrl-C
};

std::string thousands(double v) {
  std::string digits = fmt::format("{:.0f}", v);
  std::string out;
  const std::size_t lead = digits[0] == '-' ? 1 : 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > lead && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string utc(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string duration_text(double s) {
  if (std::isnan(s)) return "-";
  if (s < 0.001) return fmt::format("{:.0f} us", s * 1e6);
  if (s < 1) return fmt::format("{:.1f} ms", s * 1000);
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.0f} min", s / 60);
  if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.1f} d", s / 86400);
}

struct Sample {
  MetricsSnapshot metrics;
  bool ready = false;
  std::chrono::steady_clock::time_point at;
};

Status fetch(HttpClient& client, const HttpUrl& url, Sample* out) {
  HttpResponse res;
  Status s = client.get(url.path + "/metrics", &res);
  if (!s.is_ok()) return s;
  if (res.result_int() != 200)
    return Status::io_error(fmt::format("GET {}/metrics answered {}", url.path, res.result_int()));
  if (!(s = parse_prometheus(res.body(), &out->metrics)).is_ok()) return s;
  HttpResponse ready;
  if (!(s = client.get(url.path + "/readyz", &ready)).is_ok()) return s;
  out->ready = ready.result_int() == 200;
  out->at = std::chrono::steady_clock::now();
  return Status::ok();
}

std::string render(const std::string& url, const Sample& now, const std::optional<Sample>& before) {
  const MetricsSnapshot& m = now.metrics;
  auto v = [&](const char* key) { return m.value(key); };
  auto rate = [&](const char* key) -> std::string {
    if (!before) return "";
    const double dt = std::chrono::duration<double>(now.at - before->at).count();
    if (dt <= 0) return "";
    return fmt::format("  ({}/s)", thousands((v(key) - before->metrics.value(key)) / dt));
  };
  const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string out;
  const double start = m.value("process_start_time_seconds", NAN);
  out += fmt::format("streamscore at {}: {}, up {}, RSS {} MiB\n", url, now.ready ? "ready" : "NOT READY",
                     duration_text(now_s - start), thousands(v("process_resident_memory_bytes") / 1048576));
  out += fmt::format("  read            {:>14}{}\n", thousands(v("streamscore_events_read_total")),
                     rate("streamscore_events_read_total"));
  out += fmt::format("  accepted        {:>14}{}\n", thousands(v("streamscore_events_accepted_total")),
                     rate("streamscore_events_accepted_total"));
  out +=
      fmt::format("  duplicates      {:>14}   (conflicting: {})\n", thousands(v("streamscore_events_duplicate_total")),
                  thousands(v("streamscore_events_conflicting_duplicate_total")));
  out += fmt::format("  dead-lettered   {:>14}", thousands(m.sum("streamscore_events_dead_lettered_total")));
  std::string reasons;
  const std::string prefix = "streamscore_events_dead_lettered_total{reason=\"";
  for (auto it = m.samples.lower_bound(prefix); it != m.samples.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (it->second > 0)
      reasons +=
          fmt::format("{}{} {}", reasons.empty() ? "" : ", ",
                      it->first.substr(prefix.size(), it->first.size() - prefix.size() - 2), thousands(it->second));
  }
  out += reasons.empty() ? "\n" : "   (" + reasons + ")\n";
  if (m.value("streamscore_event_clock_started") > 0)
    out += fmt::format("  event time      max {}, watermark {}, lag {}\n", utc(v("streamscore_max_event_time_seconds")),
                       utc(v("streamscore_watermark_seconds")), duration_text(v("streamscore_watermark_lag_seconds")));
  else
    out += "  event time      no event accepted yet\n";
  out +=
      fmt::format("  ticks           {:>14}   tick duration p50 {}, p99 {}\n", thousands(v("streamscore_ticks_total")),
                  duration_text(histogram_quantile(m, "streamscore_tick_duration_seconds", 0.5)),
                  duration_text(histogram_quantile(m, "streamscore_tick_duration_seconds", 0.99)));
  std::string depths;
  double max_depth = 0;
  int shards = 0;
  for (int s = 0;; ++s) {
    const auto it = m.samples.find(fmt::format("streamscore_shard_queue_depth{{shard=\"{}\"}}", s));
    if (it == m.samples.end()) break;
    ++shards;
    max_depth = std::max(max_depth, it->second);
    if (s < 16) depths += fmt::format(" {}", it->second);
  }
  out += fmt::format("  shard queues    {} shards, depth{}{} (max {})\n", shards, depths, shards > 16 ? " ..." : "",
                     max_depth);
  out +=
      fmt::format("  items written   {:>14}{}   write conflicts {}\n", thousands(v("streamscore_items_written_total")),
                  rate("streamscore_items_written_total"), thousands(v("streamscore_write_conflicts_total")));
  out += fmt::format("  checkpoints     {:>14}   last {}\n", thousands(v("streamscore_checkpoints_total")),
                     m.samples.count("streamscore_checkpoint_age_seconds")
                         ? duration_text(v("streamscore_checkpoint_age_seconds")) + " ago"
                         : std::string("none yet in this process"));
  if (v("streamscore_kafka_partitions") > 0 || v("streamscore_kafka_rebalances_total") > 0)
    out +=
        fmt::format("  kafka           {:>14} partitions   lag {}, errors {}, rebalances {}, key mismatches {}\n",
                    thousands(v("streamscore_kafka_partitions")),
                    m.samples.count("streamscore_kafka_lag") ? thousands(v("streamscore_kafka_lag")) : std::string("?"),
                    thousands(v("streamscore_kafka_errors_total")), thousands(v("streamscore_kafka_rebalances_total")),
                    thousands(v("streamscore_key_mismatches_total")));
  const double dead_letters = v("streamscore_kafka_dead_letters_produced_total");
  const double items = v("streamscore_kafka_items_produced_total");
  if (dead_letters > 0 || items > 0)
    out +=
        fmt::format("  kafka sinks     dead letters {} ({} delivered), items {} ({} delivered), delivery errors {}\n",
                    thousands(dead_letters), thousands(v("streamscore_kafka_dead_letters_delivered_total")),
                    thousands(items), thousands(v("streamscore_kafka_items_delivered_total")),
                    thousands(v("streamscore_kafka_delivery_errors_total")));
  out += fmt::format("  http            {:>14} responses   server p50 {}, p99 {}\n",
                     thousands(m.sum("streamscore_http_responses_total")),
                     duration_text(histogram_quantile(m, "streamscore_http_request_duration_seconds", 0.5)),
                     duration_text(histogram_quantile(m, "streamscore_http_request_duration_seconds", 0.99)));
  const double model = v("streamscore_model_active_version");
  out += fmt::format("  model           {}   scoring p99 {}\n",
                     model > 0 ? fmt::format("v{:.0f} active", model) : std::string("none active"),
                     duration_text(histogram_quantile(m, "streamscore_scoring_latency_seconds", 0.99)));
  return out;
}

int status(const StatusArgs& args) {
  HttpUrl url;
  Status s = parse_http_url(args.url, &url);
  if (!s.is_ok()) {
    print_error("status", "--url: " + s.message());
    return kExitUsage;
  }
  if (!(args.interval_s > 0)) {
    print_error("status", "--interval must be greater than 0");
    return kExitUsage;
  }
  std::signal(SIGINT, on_status_signal);
  std::signal(SIGTERM, on_status_signal);
  HttpClient client(url.host, url.port, std::chrono::milliseconds(3000));
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  std::optional<Sample> previous;
  for (int refresh = 0; !g_status_stop.load(); ++refresh) {
    Sample now;
    if (!(s = fetch(client, url, &now)).is_ok()) {
      print_error("status", s.to_string());
      return kExitFailure;
    }
    const std::string text = render(args.url, now, previous);
    if (args.watch && terminal) std::fputs("\033[H\033[J", stdout);  // redraw in place
    std::fputs(text.c_str(), stdout);
    if (args.watch && !terminal) std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!args.watch || (args.count > 0 && refresh + 1 >= args.count)) break;
    previous = std::move(now);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(args.interval_s);
    while (!g_status_stop.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return kExitOk;
}

}  // namespace

void register_status_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = root.add_subcommand("status", "Show a running daemon's pipeline from its /metrics");
  cmd->add_option("--url", args->url, "the daemon's HTTP address (http.address, http.port)")->capture_default_str();
  cmd->add_flag("--watch", args->watch, "refresh until Ctrl-C, with rates between refreshes");
  cmd->add_option("--interval", args->interval_s, "seconds between refreshes with --watch")->capture_default_str();
  cmd->add_option("--count", args->count, "with --watch: stop after this many refreshes (0 = never)");
  cmd->footer(
      "Examples:\n"
      "  streamscore status --url http://127.0.0.1:8480\n"
      "  streamscore status --url http://127.0.0.1:8480 --watch --interval 2\n"
      "Exit codes: 0 shown, 1 daemon unreachable or bad answer, 2 usage error.\n"
      "Prometheus can scrape the same endpoint: GET /metrics.");
  cmd->callback([args, exit_code] { *exit_code = status(*args); });
}

}  // namespace streamscore
