// The Prometheus text exposition format (version 0.0.4): the exporter of GET /metrics,
// which renders the probes registered with it, and reading the text back (`streamscore
// status`, tests). Each component owns its probe (its counters, gauges and histograms,
// fed by the component alone) and the probe renders its own families: the exporter knows
// no component, so any layer above this one can register with it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

// A Prometheus-style histogram with fixed bucket bounds, lock-free: observe() from any
// thread, read the buckets from any other. Counts are per bucket (not cumulative); the
// renderer accumulates them.
struct LatencyHistogram {
  // Upper bounds in seconds, 50 us .. 10 s; one more bucket holds everything above.
  static constexpr std::array<double, 16> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                     0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   10.0};
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_ns{0};

  void observe_ns(int64_t ns) {
    if (ns < 0) ns = 0;
    const double seconds = static_cast<double>(ns) / 1e9;
    std::size_t b = 0;
    while (b < kBounds.size() && seconds > kBounds[b]) ++b;
    buckets[b].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
};

// What one component shows on /metrics. The component feeds it; a scrape (any thread)
// renders it, so what it reads must be atomic or locked.
class MetricsProbe {
 public:
  virtual ~MetricsProbe() = default;
  // Appends the component's families (HELP, TYPE, samples) to `out`. `now_unix_ns` is the
  // scrape's wall clock, for ages and lags.
  virtual void render(std::string& out, int64_t now_unix_ns) const = 0;
};

// The probes GET /metrics renders, in the order they were added. The probes must outlive
// the registry; add them all before the first scrape (render takes no lock).
class MetricsRegistry {
 public:
  void add(const MetricsProbe* probe) { probes_.push_back(probe); }
  std::string render() const;  // at the wall clock now
  std::string render_at(int64_t now_unix_ns) const;

 private:
  std::vector<const MetricsProbe*> probes_;
};

// Resident set size of this process from /proc/self/statm (0 when unreadable).
uint64_t current_rss_bytes();
int64_t wall_clock_unix_ns();

// The process's own families: readiness, resident memory, start time, build.
class ProcessProbe final : public MetricsProbe {
 public:
  // `ready` null: never ready. `resident_bytes` measures the resident set (tests fake it).
  explicit ProcessProbe(std::function<bool()> ready, std::function<uint64_t()> resident_bytes = current_rss_bytes);
  void render(std::string& out, int64_t now_unix_ns) const override;

 private:
  std::function<bool()> ready_;
  std::function<uint64_t()> resident_bytes_;
  int64_t start_unix_ns_;
};

// Appends the HELP and TYPE lines of a family whose samples (labelled) the caller appends.
void render_family(std::string& out, const char* name, const char* type, const char* help);

// Appends one counter family (HELP, TYPE, the sample) to `out`.
void render_counter(std::string& out, const char* name, const char* help, uint64_t value);

// Appends one gauge family (HELP, TYPE, the sample) to `out`.
void render_gauge(std::string& out, const char* name, const char* help, double value);

// Appends one histogram family (cumulative buckets, _sum, _count) to `out`.
void render_histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h);

// One parsed exposition: samples keyed by name plus labels exactly as written
// (`streamscore_events_read_total`, `streamscore_events_dead_lettered_total{reason="bad_time"}`),
// and the declared type of every family (`# TYPE name counter`).
struct MetricsSnapshot {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  // The sample's value, or `fallback` when absent.
  double value(const std::string& key, double fallback = 0) const;
  // Sum over every sample of the family `name` (any labels).
  double sum(std::string_view name) const;
};

// Strict enough to catch a malformed exposition: every line is a comment, blank, or
// `name[{label="value",...}] value [timestamp]` with a valid metric name; every sample's
// family has a # TYPE line before it. The error names the line.
Status parse_prometheus(std::string_view text, MetricsSnapshot* out);

// The q-quantile of histogram family `name` (seconds), interpolated inside its bucket like
// PromQL's histogram_quantile(). With `since`, only the observations made after that
// snapshot count. NaN without observations.
double histogram_quantile(const MetricsSnapshot& snap, const std::string& name, double q,
                          const MetricsSnapshot* since = nullptr);

}  // namespace streamscore
