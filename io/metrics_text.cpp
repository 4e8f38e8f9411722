#include "io/metrics_text.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace streamscore {

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, const char* name, double value) {
  out += fmt::format("{} {}\n", name, value);
}

void counter(std::string& out, const char* name, const char* help, uint64_t value) {
  family(out, name, "counter", help);
  out += fmt::format("{} {}\n", name, value);
}

void gauge(std::string& out, const char* name, const char* help, double value) {
  family(out, name, "gauge", help);
  sample(out, name, value);
}

}  // namespace

void render_family(std::string& out, const char* name, const char* type, const char* help) {
  family(out, name, type, help);
}

void render_counter(std::string& out, const char* name, const char* help, uint64_t value) {
  counter(out, name, help, value);
}

void render_gauge(std::string& out, const char* name, const char* help, double value) {
  gauge(out, name, help, value);
}

void render_histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h) {
  family(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (std::size_t b = 0; b < LatencyHistogram::kBounds.size(); ++b) {
    cumulative += h.buckets[b].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, LatencyHistogram::kBounds[b], cumulative);
  }
  cumulative += h.buckets.back().load(std::memory_order_relaxed);
  // The count is read after the buckets, so +Inf never shows less than the buckets.
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  out += fmt::format("{}_sum {}\n", name, h.sum_ns.load(std::memory_order_relaxed) / 1e9);
  out += fmt::format("{}_count {}\n", name, cumulative);
}

namespace {

double seconds(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool is_name_char(char c) {
  return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c));
}

std::string_view family_of(std::string_view name, const std::map<std::string, std::string>& types) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      const std::string base(name.substr(0, name.size() - suffix.size()));
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary"))
        return name.substr(0, base.size());
    }
  }
  return name;
}

bool parse_value(std::string_view text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = HUGE_VAL;
    return true;
  }
  if (text == "-Inf") {
    *out = -HUGE_VAL;
    return true;
  }
  if (text == "NaN") {
    *out = NAN;
    return true;
  }
  if (text.empty()) return false;
  const std::string copy(text);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

}  // namespace

uint64_t current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

int64_t wall_clock_unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string MetricsRegistry::render() const {
  return render_at(wall_clock_unix_ns());
}

std::string MetricsRegistry::render_at(int64_t now_unix_ns) const {
  std::string out;
  out.reserve(8192);
  for (const MetricsProbe* probe : probes_) probe->render(out, now_unix_ns);
  return out;
}

ProcessProbe::ProcessProbe(std::function<bool()> ready, std::function<uint64_t()> resident_bytes)
    : ready_(std::move(ready)), resident_bytes_(std::move(resident_bytes)), start_unix_ns_(wall_clock_unix_ns()) {}

void ProcessProbe::render(std::string& out, int64_t) const {
  gauge(out, "streamscore_ready", "1 when state is recovered and the source is open.", ready_ && ready_() ? 1 : 0);
  gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", static_cast<double>(resident_bytes_()));
  gauge(out, "process_start_time_seconds", "Start time of the process (Unix seconds).", seconds(start_unix_ns_));
  family(out, "streamscore_build_info", "gauge", "Version of the running binary.");
  out += fmt::format("streamscore_build_info{{version=\"{}\"}} 1\n", STREAMSCORE_VERSION);
}

double histogram_quantile(const MetricsSnapshot& snap, const std::string& name, double q,
                          const MetricsSnapshot* since) {
  std::vector<std::pair<double, double>> buckets;  // (upper bound, cumulative count)
  const std::string prefix = name + "_bucket{le=\"";
  for (auto it = snap.samples.lower_bound(prefix); it != snap.samples.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    const std::string le = it->first.substr(prefix.size(), it->first.size() - prefix.size() - 2);
    const double count = it->second - (since ? since->value(it->first) : 0.0);
    buckets.emplace_back(le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr), count);
  }
  std::sort(buckets.begin(), buckets.end());
  if (buckets.empty() || buckets.back().second <= 0) return NAN;
  const double rank = q * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(bound)) return lower;  // above the largest finite bound
      return lower + (bound - lower) * (count > below ? (rank - below) / (count - below) : 0);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

double MetricsSnapshot::value(const std::string& key, double fallback) const {
  auto it = samples.find(key);
  return it == samples.end() ? fallback : it->second;
}

double MetricsSnapshot::sum(std::string_view name) const {
  double total = 0;
  for (auto it = samples.lower_bound(std::string(name)); it != samples.end(); ++it) {
    const std::string& key = it->first;
    if (key.compare(0, name.size(), name) != 0) break;
    if (key.size() == name.size() || key[name.size()] == '{') total += it->second;
  }
  return total;
}

Status parse_prometheus(std::string_view text, MetricsSnapshot* out) {
  MetricsSnapshot snap;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    auto fail = [&](const std::string& why) {
      return Status::invalid_argument("metrics line " + std::to_string(line_no) + ": " + why);
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("# TYPE ", 0) == 0) {
        const std::string_view rest = line.substr(7);
        const auto sp = rest.find(' ');
        if (sp == std::string_view::npos) return fail("TYPE without a type");
        const std::string type(rest.substr(sp + 1));
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
          return fail("unknown type '" + type + "'");
        snap.types[std::string(rest.substr(0, sp))] = type;
      }
      continue;
    }
    std::size_t i = 0;
    if (!is_name_start(line[0])) return fail("a metric name must start with a letter, _ or :");
    while (i < line.size() && is_name_char(line[i])) ++i;
    const std::string_view name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      for (;;) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        const std::size_t label_start = i;
        while (i < line.size() && is_name_char(line[i])) ++i;
        if (i == label_start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
          return fail("expected label=\"value\"");
        i += 2;
        while (i < line.size() && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
        if (i >= line.size()) return fail("unterminated label value");
        ++i;
        if (i < line.size() && line[i] == ',')
          ++i;
        else if (i >= line.size() || line[i] != '}')
          return fail("expected , or } after a label");
      }
    }
    const std::string key(line.substr(0, i));
    if (i >= line.size() || line[i] != ' ') return fail("expected a space before the value");
    std::string_view rest = line.substr(i + 1);
    const auto sp = rest.find(' ');  // an optional timestamp follows
    double value = 0;
    if (!parse_value(rest.substr(0, sp), &value)) return fail("bad value '" + std::string(rest) + "'");
    if (snap.types.find(std::string(family_of(name, snap.types))) == snap.types.end())
      return fail("sample of '" + std::string(name) + "' without a # TYPE line before it");
    snap.samples[key] = value;
  }
  *out = std::move(snap);
  return Status::ok();
}

}  // namespace streamscore
