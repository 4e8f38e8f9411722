#include "app/common.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/item_sink.hpp"
#include "io/kafka_sinks.hpp"
#include "state/event.hpp"

namespace streamscore {

Status open_store(const std::string& backend, const std::string& path, std::unique_ptr<StateStore>* out) {
  StateConfig state;
  state.backend = backend;
  state.path = path;
  return open_store(state, out);
}

DynamoDbOptions dynamodb_options_from(const StateConfig& state) {
  DynamoDbOptions o;
  o.endpoint = state.endpoint;
  o.region = state.region;
  o.table = state.table;
  o.writer = state.writer;
  o.dedup_of_all_writers = state.shared;
  o.gc_deletes_per_checkpoint = static_cast<std::size_t>(state.gc_deletes_per_checkpoint);
  o.gc_idle_ms = state.gc_idle_ns / 1'000'000;
  return o;
}

Status open_store(const StateConfig& state, std::unique_ptr<StateStore>* out, bool bulk_load, bool read_only) {
  if (state.backend == "memory") {
    *out = make_memory_store();
    return Status::ok();
  }
  if (state.backend == "rocksdb") return open_rocksdb_store(state.path, out, RocksDbOptions{bulk_load, read_only});
  if (state.backend == "dynamodb") {
    DynamoDbOptions o = dynamodb_options_from(state);
    o.bulk_load = bulk_load;
    return open_dynamodb_store(o, out);
  }
  return Status::invalid_argument("state.backend = \"" + state.backend +
                                  "\": expected one of \"rocksdb\", \"memory\", \"dynamodb\"");
}

Status state_from_args(const std::string& state_dir, StateConfig* state) {
  if (state->backend == "dynamodb") return Status::ok();
  if (state_dir.empty()) return Status::invalid_argument("--state is required (or state.backend = \"dynamodb\")");
  state->backend = "rocksdb";
  state->path = state_dir;
  return Status::ok();
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  const std::filesystem::path ca = std::filesystem::weakly_canonical(a, ec);
  if (ec) return false;
  const std::filesystem::path cb = std::filesystem::weakly_canonical(b, ec);
  if (ec) return false;
  if (ca == cb) return true;
  const bool equivalent = std::filesystem::equivalent(a, b, ec);
  return !ec && equivalent;
}

Status check_source_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    return Status::invalid_argument("source.path = \"" + path + "\": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode) && !S_ISFIFO(info.st_mode))
    return Status::invalid_argument("source.path = \"" + path + "\": not a regular file or a FIFO");
  if (::access(path.c_str(), R_OK) != 0)
    return Status::invalid_argument("source.path = \"" + path + "\": cannot be read: " + std::strerror(errno));
  return Status::ok();
}

namespace {
bool is_inside(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  std::filesystem::path d = std::filesystem::weakly_canonical(dir, ec);
  if (ec) return false;
  if (d.filename().empty()) d = d.parent_path();  // "state/" names the directory "state"
  const auto mismatch = std::mismatch(d.begin(), d.end(), p.begin(), p.end());
  return mismatch.first == d.end();
}
}  // namespace

Status check_output_path(const std::string& output_key, const std::string& output, const std::string& input_key,
                         const std::string& input, const std::string& state_dir) {
  if (output.empty()) return Status::ok();
  const std::string named = output_key + " = \"" + output + "\"";
  if (!input.empty() && same_file(output, input))
    return Status::invalid_argument(named + " is the same file as " + input_key + " = \"" + input +
                                    "\": the output would overwrite or feed the input; use another path");
  if (!state_dir.empty() && is_inside(output, state_dir))
    return Status::invalid_argument(named + " lies inside the state directory state.path = \"" + state_dir +
                                    "\"; use a path outside it");
  return Status::ok();
}

EngineOptions engine_options_from(const Config& config, KafkaSinkProbe* kafka_sinks) {
  EngineOptions o;
  o.shards = config.engine.shards;
  o.threads = config.engine.threads;
  o.parsers = config.engine.parsers;
  o.allowed_lateness_ns = config.window.allowed_lateness_ns;
  o.max_future_skew_ns = config.window.max_future_skew_ns;
  o.features = config.features;
  o.dead_letter_path = config.dead_letter.path;
  // The Kafka sinks are made by the engine at start, so that a refused client
  // configuration is an error of Engine::start like any other.
  if (config.dead_letter.kind == "kafka")
    o.make_dead_letter_sink = [kafka = config.kafka, topic = config.dead_letter.topic,
                               kafka_sinks](std::shared_ptr<DeadLetterSink>* out) {
      return make_kafka_dead_letter_sink(kafka, topic, kafka_sinks, out);
    };
  if (!config.output.topic.empty())
    o.make_item_sink = [kafka = config.kafka, topic = config.output.topic,
                        kafka_sinks](std::unique_ptr<ItemSink>* out) {
      return make_kafka_item_sink(kafka, topic, kafka_sinks, out);
    };
  return o;
}

GeneratorOptions generator_options_from(const SourceConfig& source) {
  GeneratorOptions g;
  g.customers = source.customers;
  g.events = source.events;
  g.days = source.days;
  g.dup_rate = source.dup_rate;
  g.disorder_s = source.disorder_s;
  g.late_rate = source.late_rate;
  g.bad_rate = source.bad_rate;
  g.seed = source.seed;
  // load_config has validated source.start: this parse cannot fail.
  static_cast<void>(parse_utc_time(source.start, &g.start_ns));
  return g;
}

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void ProgressLine::update(const RouterProbe& m) {
  show(m.read.load(), m.accepted.load(), m.duplicates.load(), m.dead_lettered_total(),
       fmt::format(", ticks {}", m.ticks.load()));
}

void ProgressLine::update(const LogReplayCounts& n) {
  show(n.read, n.accepted, n.duplicates, n.dead_lettered, "");
}

void ProgressLine::show(uint64_t read, uint64_t accepted, uint64_t duplicates, uint64_t dead_lettered,
                        const std::string& more) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r\033[K%s: %llu records, %.0f records/s, accepted %llu, duplicates %llu, dead-lettered %llu%s",
               label_.c_str(), static_cast<unsigned long long>(read), secs > 0 ? read / secs : 0.0,
               static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(duplicates),
               static_cast<unsigned long long>(dead_lettered), more.c_str());
  std::fflush(stderr);
}

void ProgressLine::done() {
  if (enabled_) std::fprintf(stderr, "\r\033[K");
}

namespace {
uint64_t peak_rss_kb() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss);  // kilobytes on Linux
}
}  // namespace

void print_summary(const char* command, const RunStats& s, double seconds, bool as_json) {
  const double rate = seconds > 0 ? s.read / seconds : 0.0;
  const uint64_t rss_kb = peak_rss_kb();
  if (as_json) {
    std::string reasons;
    for (int r = 0; r < kReasonCount; ++r)
      reasons += fmt::format("{}\"{}\":{}", r ? "," : "", reason_name(static_cast<Reason>(r)), s.dead_lettered[r]);
    std::printf(
        "{\"command\":\"%s\",\"read\":%llu,\"accepted\":%llu,\"duplicates\":%llu,"
        "\"conflicting_duplicates\":%llu,\"dead_lettered\":%llu,\"dead_lettered_by_reason\":{%s},"
        "\"expired\":%llu,\"out_of_range\":%llu,\"key_mismatches\":%llu,\"customers\":%llu,\"ticks\":%llu,\"items_"
        "written\":%llu,"
        "\"item_versions\":%llu,\"write_conflicts\":%llu,\"balanced\":%s,\"seconds\":%.3f,"
        "\"finish_seconds\":%.3f,\"recovery_seconds\":%.3f,\"records_per_second\":%.0f,"
        "\"peak_rss_kb\":%llu}\n",
        command, (unsigned long long)s.read, (unsigned long long)s.accepted, (unsigned long long)s.duplicates,
        (unsigned long long)s.conflicting_duplicates, (unsigned long long)s.dead_lettered_total(), reasons.c_str(),
        (unsigned long long)s.dead_lettered[static_cast<int>(Reason::expired)], (unsigned long long)s.out_of_range,
        (unsigned long long)s.key_mismatches, (unsigned long long)s.customers, (unsigned long long)s.ticks,
        (unsigned long long)s.items_written, (unsigned long long)s.logical_writes, (unsigned long long)s.conflicts,
        s.balanced() ? "true" : "false", seconds, s.finish_seconds, s.recovery_seconds, rate,
        (unsigned long long)rss_kb);
    return;
  }
  std::string out = fmt::format("{}: {} records in {:.2f} s ({:.0f} records/s)\n", command, s.read, seconds, rate);
  out += fmt::format("  read              {:>12}\n", s.read);
  out += fmt::format("  accepted          {:>12}\n", s.accepted);
  out += fmt::format("  duplicates        {:>12}   (conflicting: {})\n", s.duplicates, s.conflicting_duplicates);
  out += fmt::format("  dead-lettered     {:>12}\n", s.dead_lettered_total());
  for (int r = 0; r < kReasonCount; ++r)
    if (s.dead_lettered[r] > 0)
      out += fmt::format("    {:<16}{:>12}\n", reason_name(static_cast<Reason>(r)), s.dead_lettered[r]);
  out += fmt::format("  expired           {:>12}\n", s.dead_lettered[static_cast<int>(Reason::expired)]);
  if (s.out_of_range > 0)
    out += fmt::format("  out of range      {:>12}   (outside --since/--until)\n", s.out_of_range);
  if (s.key_mismatches > 0)
    out += fmt::format("  key mismatches    {:>12}   (Kafka key != customer_id; the value won)\n", s.key_mismatches);
  out += fmt::format("  customers         {:>12}\n", s.customers);
  out += fmt::format("  ticks             {:>12}\n", s.ticks);
  out += fmt::format("  items written     {:>12}   (item versions: {})\n", s.items_written, s.logical_writes);
  if (s.conflicts > 0)
    out += fmt::format("  write conflicts   {:>12}   (retried from the fresh version)\n", s.conflicts);
  if (s.recovery_seconds > 0) out += fmt::format("  state loaded in   {:>12.2f} s\n", s.recovery_seconds);
  out += fmt::format("  peak memory       {:>9} MiB\n", rss_kb / 1024);
  const char* terms = s.out_of_range > 0 ? "accepted + duplicates + dead-lettered + out of range"
                                         : "accepted + duplicates + dead-lettered";
  out += s.balanced() ? fmt::format("  counters balance: read = {}\n", terms)
                      : fmt::format("  COUNTERS DO NOT BALANCE: read != {}\n", terms);
  std::fputs(out.c_str(), stdout);
}

void print_store_counters(const StateStore& store) {
  const std::vector<StateStore::Counter> counters = store.counters();
  if (counters.empty()) return;
  std::string line = "  store            ";
  for (std::size_t i = 0; i < counters.size(); ++i) {
    std::string name = counters[i].name;
    for (const char* cut : {"streamscore_", "_total"}) {
      const std::size_t at = name.find(cut);
      if (at != std::string::npos) name.erase(at, std::string(cut).size());
    }
    line += fmt::format("{}{} {}", i ? ", " : " ", name, counters[i].value);
  }
  std::puts(line.c_str());
}

void print_error(const char* command, const std::string& message) {
  std::fprintf(stderr, "streamscore %s: error: %s\n", command, message.c_str());
}

namespace {

// The objects `url` names, in reading order (see event_logs_of).
Status objects_of(const std::string& url, S3Client& s3, PartitionedLogs* out) {
  S3Url where;
  Status s = parse_s3_url(url, &where);
  if (!s.is_ok()) return s;
  const bool prefix = where.key.empty() || where.key.back() == '/';
  std::vector<S3Object> objects;
  if (!(s = s3.list(where.bucket, where.key, &objects)).is_ok()) return s;
  std::vector<std::string> urls;
  for (const auto& object : objects)
    if (prefix || object.key == where.key) urls.push_back("s3://" + where.bucket + "/" + object.key);
  if (urls.empty())
    return Status::invalid_argument("--events '" + url + "': " +
                                    (prefix ? "no object under this prefix"
                                            : "no such object (a prefix, for every object under it, ends with '/')") +
                                    " at " + s3.endpoint());
  return order_partitioned(url, std::move(urls), out);
}

}  // namespace

Status event_logs_of(const std::vector<std::string>& events, const S3Config& config, std::unique_ptr<S3Client>* s3,
                     PartitionedLogs* out) {
  *out = PartitionedLogs{};
  for (const auto& path : events) {
    if (!is_s3_url(path)) {
      if (!std::filesystem::is_regular_file(path))
        return Status::invalid_argument("--events '" + path + "': no such file");
      out->logs.push_back(path);
      continue;
    }
    PartitionedLogs objects;
    Status s = *s3 ? Status::ok() : S3Client::make(config, s3);
    if (s.is_ok()) s = objects_of(path, **s3, &objects);
    if (!s.is_ok()) return s;
    if (objects.partition_count > 0 && events.size() > 1)
      return Status::invalid_argument("--events '" + path +
                                      "' is a partitioned layout (partition=N objects, each partition with its own "
                                      "clock): give it as the only --events");
    out->logs.insert(out->logs.end(), objects.logs.begin(), objects.logs.end());
    out->partitions = std::move(objects.partitions);
    out->partition_count = objects.partition_count;
  }
  return Status::ok();
}

Status event_logs_of(const std::vector<std::string>& events, const S3Config& config, std::unique_ptr<S3Client>* s3,
                     std::vector<std::string>* out) {
  PartitionedLogs logs;
  Status s = event_logs_of(events, config, s3, &logs);
  if (!s.is_ok()) return s;
  if (logs.partition_count > 0)
    return Status::invalid_argument("--events '" + events.front() +
                                    "' is a partitioned layout (partition=N objects): this command reads on one "
                                    "clock, and a partition read after another would expire its records; `replay` "
                                    "and `backfill` read it with a clock per partition");
  *out = std::move(logs.logs);
  return Status::ok();
}

}  // namespace streamscore
