// The Prometheus text exposition format (version 0.0.4): rendering the engine's
// counters for GET /metrics, and reading them back (`streamscore status`, tests).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "state/metrics.hpp"

namespace streamscore {

struct KafkaSinkMetrics;  // io/kafka_sinks.hpp

// What the process adds to the engine's own counters.
struct ProcessGauges {
  int64_t now_unix_ns = 0;                        // wall clock, for ages and lags
  uint64_t rss_bytes = 0;                         // resident set size
  bool ready = false;                             // what /readyz answers
  int64_t start_unix_ns = 0;                      // process start
  const KafkaSinkMetrics* kafka_sinks = nullptr;  // set: the Kafka sinks' counters too
};

// Resident set size of this process from /proc/self/statm (0 when unreadable).
uint64_t current_rss_bytes();
int64_t wall_clock_unix_ns();

std::string render_prometheus(const EngineMetrics& metrics, const ProcessGauges& process);

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
