// `streamscore run`: the daemon. Reads the configured source (a file, followed or
// read to its end, or the built-in generator), keeps the state store current, and
// on SIGINT/SIGTERM stops intake, drains, writes everything and exits 0.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/daemon_ops.hpp"
#include "app/fd_budget.hpp"
#include "app/logging.hpp"
#include "app/model_support.hpp"
#include "common/thread_priority.hpp"
#include "io/generator.hpp"
#include "io/kafka_client.hpp"
#include "io/kafka_source.hpp"
#include "io/line_reader.hpp"
#include "state/format.hpp"

namespace streamscore {

namespace {

std::atomic<bool> g_stop{false};  // set by the signal handler only
void on_signal(int) {
  g_stop.store(true);
}
void on_sighup(int) {
  DaemonOps::request_reload();
}

struct RunArgs {
  std::string config_path;
  std::vector<std::string> sets;
  bool json = false;
  int top = 5;
};

constexpr const char* kMetaFileSource = "source.file";
constexpr const char* kMetaGeneratorSource = "source.generator";

// Commits a checkpoint whenever the configured interval has passed. The source
// position is taken right after a submitted batch, so it is exactly what the
// checkpoint covers.
class Checkpointer {
 public:
  Checkpointer(Engine& engine, int64_t interval_ns)
      : engine_(engine), interval_(std::chrono::nanoseconds(interval_ns)) {}

  // `committed` (optional) tells whether a checkpoint was committed.
  Status maybe(const std::function<std::vector<MetaPut>()>& position, bool* committed = nullptr) {
    if (committed != nullptr) *committed = false;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < interval_) return Status::ok();
    last_ = now;
    Status s = engine_.checkpoint(position());
    if (committed != nullptr) *committed = s.is_ok();
    return s;
  }

 private:
  Engine& engine_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// "path\noffset\nline\nfingerprint": where a file source stopped, and what it had read
// up to there (io/line_reader.hpp), so that a restart continues in the same file.
std::vector<MetaPut> file_position(const std::string& path, const LineReader& reader) {
  return {{kMetaFileSource, path + "\n" + std::to_string(reader.offset()) + "\n" + std::to_string(reader.line()) +
                                "\n" + reader.fingerprint()}};
}

// The generator is deterministic: its position is the number of records produced,
// for the same options (a restart with other options starts over).
std::string generator_identity(const SourceConfig& source) {
  return "seed=" + std::to_string(source.seed) + " customers=" + std::to_string(source.customers) +
         " events=" + std::to_string(source.events) + " days=" + std::to_string(source.days) + " start=" + source.start;
}

std::vector<MetaPut> generator_position(const SourceConfig& source, uint64_t produced) {
  return {{kMetaGeneratorSource, generator_identity(source) + "\n" + std::to_string(produced)}};
}

Status load_generator_position(StateStore& store, const SourceConfig& source, uint64_t* produced) {
  std::string value;
  Status s = store.get_meta(kMetaGeneratorSource, &value);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  const auto nl = value.rfind('\n');
  if (nl == std::string::npos) return Status::corruption("meta 'source.generator' is malformed");
  if (value.substr(0, nl) == generator_identity(source)) *produced = std::strtoull(value.c_str() + nl + 1, nullptr, 10);
  return Status::ok();
}

struct FilePosition {
  uint64_t offset = 0;
  uint64_t line = 1;
  std::string fingerprint;  // "" in states written before it was recorded, or of a FIFO
};

// Where the state stopped reading `path` (its beginning for another path).
Status load_file_position(StateStore& store, const std::string& path, FilePosition* position) {
  std::string value;
  Status s = store.get_meta(kMetaFileSource, &value);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  std::vector<std::string> fields;
  std::istringstream lines(value);
  for (std::string field; std::getline(lines, field);) fields.push_back(field);
  if (fields.size() < 3 || fields.size() > 4) return Status::corruption("meta 'source.file' is malformed");
  // Another file starts at its beginning; the same file by another name (a symlink,
  // "..") continues, or it would be read, and its bad lines dead-lettered, twice.
  if (fields[0] != path && !same_file(fields[0], path)) return Status::ok();
  position->offset = std::stoull(fields[1]);
  position->line = std::stoull(fields[2]);
  if (fields.size() == 4) position->fingerprint = fields[3];
  return Status::ok();
}

// The file must be the one the state has read: at least as long as the position, and
// with the same bytes up to it (the fingerprint). Another file under the same name would
// be read from the middle, or not at all ("0 records"), as if it were the same input.
Status check_same_input(const std::string& path, const FilePosition& position) {
  // A FIFO has no past to compare (and opening one would disturb its writer).
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return Status::ok();
  uint64_t size = 0;
  std::string fingerprint;
  Status s = LineReader::content_prefix(path, position.offset, &size, &fingerprint);
  if (!s.is_ok()) return s;
  if (position.fingerprint.empty()) fingerprint.clear();  // a state from before fingerprints
  const std::string advice =
      ": not the file this state has read (replaced, cut or rewritten). Restore it, or "
      "read the new file into a new state.path (or rebuild with `streamscore replay`)";
  if (size < position.offset)
    return Status::corruption("source.path '" + path + "' holds " + std::to_string(size) +
                              " bytes (of content, when compressed), fewer than the " +
                              std::to_string(position.offset) + " bytes the state has read" + advice);
  if (fingerprint != position.fingerprint)
    return Status::corruption("source.path '" + path + "' does not hold the bytes the state has read up to offset " +
                              std::to_string(position.offset) + " (fingerprint " + fingerprint + ", recorded " +
                              position.fingerprint + ")" + advice);
  return Status::ok();
}

// Feeds the file source. Returns whether the input reached its end (final tick due).
Status run_file_source(const Config& config, Engine& engine, const FilePosition& resume, ProgressLine& progress,
                       bool* finished, LineReader* reader, Checkpointer& checkpointer, DaemonOps& ops) {
  Status s = reader->open(config.source.path, resume.offset, resume.line);
  if (!s.is_ok()) return s;
  ops.set_ready(true);  // state recovered, source open
  while (!g_stop.load()) {
    RawBatch batch;
    bool at_end = false;
    s = reader->next(config.engine.batch_size, config.source.exit_at_end, &batch, &at_end);
    if (!s.is_ok()) return s;
    if (!batch.lines.empty() && !(s = engine.submit(std::move(batch))).is_ok()) return s;
    progress.update(engine.router_probe());
    s = checkpointer.maybe([&] { return file_position(config.source.path, *reader); });
    if (!s.is_ok()) return s;
    if (at_end) {
      if (config.source.exit_at_end) {
        *finished = true;
        return Status::ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // follow the file
    }
  }
  return Status::ok();
}

Status load_kafka_position(StateStore& store, const std::string& topic, KafkaOffsets* offsets) {
  std::string value;
  Status s = store.get_meta(kMetaKafkaSource, &value);
  if (s.is_not_found()) return Status::ok();
  if (!s.is_ok()) return s;
  return decode_kafka_position(value, topic, offsets);
}

std::vector<std::string> offset_keys(const std::string& topic, const std::vector<int32_t>& partitions) {
  std::vector<std::string> keys;
  for (int32_t p : partitions) keys.push_back(partition_offset_key(topic, p));
  return keys;
}

// A table shared by the group's daemons: at each assignment the engine takes the
// customers of the assigned partitions from the table, and their offsets; at each
// revocation (after its checkpoint) it drops them.
SharedTableHooks shared_table_hooks(const Config& config, Engine& engine, StateStore& store) {
  SharedTableHooks hooks;
  hooks.adopt = [&config, &engine, &store](const std::vector<int32_t>& added, const std::vector<int32_t>& held,
                                           int32_t partition_count, KafkaOffsets* offsets) {
    const std::set<int32_t> picked(added.begin(), added.end());
    const CustomerPartition partition_of = [partition_count](std::string_view customer_id) {
      return kafka_partition_of_key(customer_id, partition_count);
    };
    const CustomerFilter in_added = [&](std::string_view customer_id) {
      return picked.count(partition_of(customer_id)) > 0;
    };
    // Claimed first, all of them under one new lease: the previous holders of the added
    // ones are fenced before anything of theirs is read.
    Status s = store.take_over(offset_keys(config.source.topic, held));
    const PartitionScope scope{partition_count, added};
    if (s.is_ok())  // eager: every partition is added; cooperative: those that stay stay in memory
      s = held.size() == added.size() ? engine.replace_customers(in_added, &scope, partition_of)
                                      : engine.reshape_customers(nullptr, {}, in_added, &scope, partition_of);
    for (std::size_t i = 0; s.is_ok() && i < added.size(); ++i) {
      const std::string key = partition_offset_key(config.source.topic, added[i]);
      std::string value;
      s = store.get_meta(key, &value);
      if (s.is_not_found()) {
        s = Status::ok();
        continue;
      }
      char* end = nullptr;
      const long long offset = s.is_ok() ? std::strtoll(value.c_str(), &end, 10) : 0;
      if (s.is_ok() && (value.empty() || *end != '\0' || offset < 0))
        s = Status::corruption("meta '" + key + "' is not an offset: '" + value + "'");
      if (s.is_ok()) (*offsets)[added[i]] = offset;
    }
    spdlog::info("msg=\"shared table: customers taken over\" partitions={} held={} customers={}", added.size(),
                 held.size(), engine.shard_probe().customers.load());
    return s;
  };
  hooks.release = [&config, &engine, &store](const std::vector<int32_t>& revoked, const std::vector<int32_t>& kept,
                                             int32_t partition_count) {
    if (kept.empty()) {
      Status s = engine.replace_customers(nullptr);
      return s.is_ok() ? store.take_over({}) : s;  // a lease that holds no partition
    }
    const std::set<int32_t> gone(revoked.begin(), revoked.end());
    Status s = engine.reshape_customers(
        [&](std::string_view customer_id) {
          return gone.count(kafka_partition_of_key(customer_id, partition_count)) > 0;
        },
        revoked, nullptr, nullptr, nullptr);
    // A new lease for what stays: the next holders of the revoked partitions take them
    // from a lease this daemon no longer commits under, so they do not fence it.
    return s.is_ok() ? store.take_over(offset_keys(config.source.topic, kept)) : s;
  };
  return hooks;
}

// Feeds the Kafka source. Offsets go to the consumer group after each checkpoint.
Status run_kafka_source(const Config& config, Engine& engine, StateStore& store, ProgressLine& progress, bool* finished,
                        std::unique_ptr<KafkaSource>* out, KafkaSourceProbe* probe, Checkpointer& checkpointer,
                        DaemonOps& ops) {
  KafkaOffsets resume;  // a shared table's offsets come with each assignment
  Status s = config.state.shared ? Status::ok() : load_kafka_position(store, config.source.topic, &resume);
  if (!s.is_ok()) return s;
  KafkaSourceOptions options;
  options.kafka = config.kafka;
  options.topic = config.source.topic;
  options.group_id = config.source.group_id;
  options.bounded = config.source.exit_at_end;
  options.batch_size = static_cast<std::size_t>(config.engine.batch_size);
  if (config.state.shared) options.shared = shared_table_hooks(config, engine, store);
  if (!(s = KafkaSource::open(options, resume, probe, out)).is_ok()) return s;
  KafkaSource& source = **out;
  spdlog::info(
      "msg=\"kafka source\" topic={} group={} bootstrap={} mode={} queued.max.messages.kbytes={} "
      "queued.min.messages={}",
      options.topic, options.group_id, options.kafka.bootstrap_servers, options.bounded ? "bounded" : "unbounded",
      source.client_property("queued.max.messages.kbytes"), source.client_property("queued.min.messages"));
  ops.set_ready(true);  // state recovered, consumer started
  const KafkaSource::Submit submit = [&](RawBatch batch) { return engine.submit(std::move(batch)); };
  const KafkaSource::Revoke checkpoint_now = [&] { return engine.checkpoint(source.position()); };
  while (!g_stop.load()) {
    bool at_end = false;
    if (!(s = source.poll(submit, checkpoint_now, &at_end)).is_ok()) return s;
    progress.update(engine.router_probe());
    bool committed = false;
    if (config.state.shared && source.assignment_lost()) continue;  // the revocation drops the work
    s = checkpointer.maybe([&] { return source.position(); }, &committed);
    if (s.is_fenced()) s = source.abandon(s);  // stalled past its session: the work is the new owners'
    if (!s.is_ok()) return s;
    if (committed) source.commit_offsets();
    if (at_end) {
      *finished = true;
      return Status::ok();
    }
  }
  return Status::ok();
}

Status run_generator_source(const Config& config, Engine& engine, StateStore& store, ProgressLine& progress,
                            bool* finished, uint64_t* produced, Checkpointer& checkpointer) {
  EventGenerator generator(generator_options_from(config.source));
  std::string line;
  bool more = true;
  Status s = load_generator_position(store, config.source, produced);
  if (!s.is_ok()) return s;
  for (uint64_t i = 0; i < *produced && more; ++i) more = generator.next(&line);  // resume
  uint64_t& position = *produced;
  const uint64_t resumed_at = position;
  const auto begin = std::chrono::steady_clock::now();
  // At a configured rate, a batch holds about 100 ms of events, so that they flow
  // steadily instead of waiting for a full batch.
  std::size_t batch_size = static_cast<std::size_t>(config.engine.batch_size);
  if (config.source.rate > 0)
    batch_size = std::max<std::size_t>(1, std::min<std::size_t>(batch_size, config.source.rate / 10));
  while (more && !g_stop.load()) {
    auto buffer = std::make_shared<std::string>();
    RawBatch batch;
    batch.source = "generator";
    while (batch.lines.size() < batch_size && (more = generator.next(&line))) {
      batch.lines.push_back(
          LineRef{static_cast<uint32_t>(buffer->size()), static_cast<uint32_t>(line.size()), ++position});
      buffer->append(line);
    }
    batch.buffer = std::move(buffer);
    if (!batch.lines.empty() && !(s = engine.submit(std::move(batch))).is_ok()) return s;
    progress.update(engine.router_probe());
    s = checkpointer.maybe([&] { return generator_position(config.source, position); });
    if (!s.is_ok()) return s;
    if (config.source.rate > 0) {  // hold the configured rate, waking up for signals
      const auto due = begin + std::chrono::microseconds((position - resumed_at) * 1'000'000 / config.source.rate);
      while (!g_stop.load()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= due) break;
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(due - now, std::chrono::milliseconds(100)));
      }
    }
  }
  *finished = !more;
  return Status::ok();
}

// Paths checked before the HTTP server starts or the state is created (exit 2): the file
// source can be read, and the dead-letter file is neither the source nor in the state.
Status check_paths(const Config& config) {
  const bool file_source = config.source.kind == "file";
  if (file_source) {
    Status s = check_source_file(config.source.path);
    if (!s.is_ok()) return s;
  }
  return check_output_path("dead_letter.path", config.dead_letter.kind == "file" ? config.dead_letter.path : "",
                           "source.path", file_source ? config.source.path : "",
                           config.state.backend == "rocksdb" ? config.state.path : "");
}

void print_top_customers(StateStore& store, int top) {
  struct Row {
    double amount;
    std::string line;
  };
  std::vector<Row> rows;
  Status s = store.scan([&](const ItemRecord& item) {
    if (item.item_json.empty()) return true;
    boost::system::error_code ec;
    auto v = boost::json::parse(item.item_json, ec);
    if (!ec) rows.push_back({boost::json::value_to<double>(v.at("features").at("total_amount_30d")), item.item_json});
    return true;
  });
  if (!s.is_ok()) {  // a partial list would name the wrong customers
    print_error("run", "cannot list the top customers: " + s.to_string());
    return;
  }
  const std::size_t n = std::min<std::size_t>(rows.size(), static_cast<std::size_t>(top));
  std::partial_sort(rows.begin(), rows.begin() + n, rows.end(),
                    [](const Row& a, const Row& b) { return a.amount > b.amount; });
  if (n > 0) std::printf("top %zu customers by total_amount_30d:\n", n);
  for (std::size_t i = 0; i < n; ++i) std::printf("  %s\n", rows[i].line.c_str());
}

// glibc's malloc gives threads arenas of their own and keeps freed memory in them. On the
// Kafka path librdkafka's broker threads build the fetched messages and the consumer
// thread frees them: at 128 partitions that kept about 250 MiB of peak RSS that nothing
// used. Two arenas, and giving back a heap's free top above 1 MiB, bound it (measured: no
// CPU cost beyond noise). MALLOC_ARENA_MAX and MALLOC_TRIM_THRESHOLD_ in the environment
// still decide. Before any thread starts: arenas are made as threads first allocate.
void bound_malloc_for_kafka() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

int run(const RunArgs& args) {
  // First of all: a stop request that arrives while starting up is honoured too.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_sighup);  // reload the config (app/daemon_ops.hpp)
  Config config;
  Status s = load_config(args.config_path, args.sets, &config);
  if (!s.is_ok()) {
    print_error("run", s.message());
    return kExitUsage;
  }
  if (!(s = configure_logging(config.log.level)).is_ok() || !(s = check_paths(config)).is_ok()) {
    print_error("run", s.message());
    return kExitUsage;
  }
  if (config.source.kind == "kafka") bound_malloc_for_kafka();
  // Before the store opens: RocksDB, Kafka and the HTTP connections share this budget.
  if (!(s = check_http_fd_budget(config.http, raise_open_file_limit())).is_ok()) {
    print_error("run", s.message());
    return kExitUsage;
  }
  std::unique_ptr<StateStore> store;
  // Recovery time: opening the store (RocksDB replays its write-ahead log) and loading it.
  const auto start = std::chrono::steady_clock::now();
  if (!(s = open_store(config.state, &store)).is_ok()) {
    print_error("run", s.to_string());
    return exit_code_of_open(config.state, s);
  }
  FilePosition resume;
  if (config.source.kind == "file" && (!(s = load_file_position(*store, config.source.path, &resume)).is_ok() ||
                                       !(s = check_same_input(config.source.path, resume)).is_ok())) {
    print_error("run", s.to_string());
    return kExitFailure;
  }
  // Lookups answer from the committed items in memory, kept by the store the engine
  // writes through (state/served_items.hpp): only where this process is the store's one
  // writer. A DynamoDB table may have others (a re-scorer, the daemons of a shared
  // table), whose commits do not pass through here.
  const ServedItems* served_items = nullptr;
  if (config.http.enabled && config.http.item_cache && config.state.backend != "dynamodb") {
    auto serving = std::make_unique<ServingStore>(std::move(store));
    served_items = &serving->items();
    store = std::move(serving);
  }
  // The Kafka probes live as long as the daemon: /metrics shows them, zeros without Kafka.
  KafkaSourceProbe kafka_source_probe;
  KafkaSinkProbe kafka_sink_probe;
  EngineOptions options = engine_options_from(config, &kafka_sink_probe);
  options.truncate_dead_letter = false;  // a daemon appends across restarts
  options.nice = config.engine.nice;     // ingestion yields to the HTTP server
  if (config.state.shared) {             // the customers and their clocks come with the partitions
    options.load_partitions = PartitionScope{};
    options.partition_clock_key = [topic = config.source.topic](int32_t partition) {
      return partition_clock_key(topic, partition);
    };
  }
  // A refused active model at start stops the daemon (exit 2, naming it): one that ran
  // without scoring would look healthy while no item gets a score. Only
  // model.allow_unscored_start lets it run without one (it picks up the next activation).
  const FeatureSet features = config.features;
  if (!(s = prepare_scoring(config.model, features, &options)).is_ok()) {
    if (s.is_invalid_argument() || !config.model.allow_unscored_start) {
      print_error("run", s.message() + (s.is_invalid_argument() ? ""
                                                                : "; fix or activate another version, "
                                                                  "or set model.allow_unscored_start = true "
                                                                  "to start without a model"));
      return kExitUsage;
    }
    log_line("run", s.message() + "; starting without a model (model.allow_unscored_start)");
  }
  std::unique_ptr<Engine> engine;
  if (!(s = Engine::start(options, store.get(), &engine)).is_ok()) {
    print_error("run", s.to_string());
    // A state built with other settings: a config error, named by its key.
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  const double recovery_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The HTTP model admin routes work on the models directory, like `streamscore model`,
  // from a thread of their own (never the HTTP thread's).
  std::unique_ptr<RegistryModelAdmin> model_admin;
  if (!config.model.dir.empty())
    model_admin = std::make_unique<RegistryModelAdmin>(config.model.dir, features, config.model.poll_interval_ms);
  std::unique_ptr<DaemonOps> ops;  // HTTP API, readiness, SIGHUP reload
  MetricsRegistry metrics = pipeline_probes(*engine, kafka_source_probe, kafka_sink_probe);
  s = DaemonOps::start({args.config_path, args.sets, model_admin.get(), served_items}, config, &metrics, store.get(),
                       &ops);
  if (!s.is_ok()) {  // e.g. the port is taken; the state stays at its last checkpoint
    print_error("run", s.to_string());
    return kExitFailure;
  }
  // This thread now runs the source loop and the checkpoints: ingestion too. Lowered
  // only here, after the HTTP server's thread has started at the process's priority;
  // threads started from here on (a Kafka consumer's) inherit the lower priority.
  if (!(s = lower_this_thread_priority(config.engine.nice)).is_ok())
    spdlog::warn("msg=\"engine.nice not applied to the source thread\" error={}", quoted_log_value(s.message()));
  std::unique_ptr<ModelRollout> rollout;
  if (options.scoring) {
    const int initial = options.initial_model ? options.initial_model->meta.version : 0;
    log_line("run", "model: " + (initial ? "v" + std::to_string(initial) + " active" : std::string("no active model")) +
                        "; watching " + config.model.dir + "/active.json");
    rollout = std::make_unique<ModelRollout>(config.model, features, engine.get(), initial);
  }
  ProgressLine progress("run");
  bool finished = false;
  LineReader reader;
  uint64_t produced = 0;
  std::unique_ptr<KafkaSource> kafka;
  Checkpointer checkpointer(*engine, config.checkpoint.interval_ns);
  if (config.source.kind == "file") {
    s = run_file_source(config, *engine, resume, progress, &finished, &reader, checkpointer, *ops);
  } else if (config.source.kind == "kafka") {
    s = run_kafka_source(config, *engine, *store, progress, &finished, &kafka, &kafka_source_probe, checkpointer, *ops);
  } else {
    ops->set_ready(true);
    s = run_generator_source(config, *engine, *store, progress, &finished, &produced, checkpointer);
  }
  ops->set_ready(false);         // draining: stop sending traffic here
  if (rollout) rollout->stop();  // no swap while the engine finishes
  spdlog::info("msg=\"{}\"", finished ? "input complete, writing" : "stopping, draining");
  RunStats stats;
  Status end;
  if (s.is_ok()) {  // after a failure the last checkpoint stands; nothing more is written
    end = engine->finish(/*final_tick=*/finished, &stats,
                         config.source.kind == "file"    ? file_position(config.source.path, reader)
                         : config.source.kind == "kafka" ? kafka->position()
                                                         : generator_position(config.source, produced));
    if (end.is_fenced()) {  // its partitions are another daemon's: what it read is theirs to apply
      spdlog::warn("msg=\"shared table: fenced, the last checkpoint was dropped\" detail={}",
                   quoted_log_value(end.message()));
      end = Status::ok();
    } else if (end.is_ok() && kafka) {
      kafka->commit_offsets(/*wait=*/true);
    }
  }
  if (kafka) kafka->close();  // leave the group: its partitions move to the other members
  ops->stop();
  progress.done();
  if (!s.is_ok() || !end.is_ok()) {
    print_error("run", (!s.is_ok() ? s : end).to_string());
    return kExitFailure;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.recovery_seconds = recovery_seconds;
  print_summary("run", stats, seconds, args.json);
  if (!args.json) print_model_summary(*engine);
  if (!args.json) print_store_counters(*store);
  if (!args.json && args.top > 0) print_top_customers(*store, args.top);
  return stats.balanced() ? kExitOk : kExitFailure;
}

}  // namespace

void register_run_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = root.add_subcommand("run", "Run the streaming daemon from a config file");
  cmd->add_option("--config", args->config_path,
                  "TOML config (every key: config/streamscore.example.toml); default: built-in defaults");
  cmd->add_option("--set", args->sets, "override a config key: section.key=value (repeatable)");
  cmd->add_flag("--json", args->json, "print the final summary as one JSON object");
  cmd->add_option("--top", args->top, "customers to show in the final summary")->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  streamscore run --config config/streamscore.example.toml\n"
      "  streamscore run --set source.kind=generator --set source.events=1000000\n"
      "  streamscore run --set source.path=events.jsonl --set source.exit_at_end=false   # follow\n"
      "  STREAMSCORE_ADMIN_TOKEN=... streamscore run --set http.port=8480   # HTTP API, admin token\n"
      "  streamscore run --config config/streamscore.example.toml --set model.dir=models   # score\n"
      "  streamscore run --config daemon.toml --set state.shared=true --set state.writer=scorer-2\n"
      "      # one daemon of a consumer group sharing a DynamoDB table (docs/scale.md)\n"
      "Every checkpoint.interval the changed items, dedup ids, window clock and source position\n"
      "are committed together, atomically. SIGINT/SIGTERM: stop reading, drain, commit, exit 0.\n"
      "After a stop or a crash (even kill -9), the same command continues from the last\n"
      "checkpoint with exactly the result of an uninterrupted run.\n"
      "SIGHUP: reread the config; log.level and http.admin_token apply at once, changes to other\n"
      "keys are refused (logged, naming the key). HTTP on http.address:http.port (default\n"
      "127.0.0.1:8480): /healthz /readyz /metrics /v1/customers/{id} /v1/model; see README\n"
      "'Operating the daemon'. The HTTP thread runs at SCHED_RR http.realtime_priority (default\n"
      "2; 0 = off; without root/CAP_SYS_NICE a warning, then normal priority), ingestion at\n"
      "engine.nice (default 10) below normal. With [model] dir, items get the active model's score;\n"
      "'streamscore model activate|rollback' is picked up within [model] poll_interval_ms,\n"
      "without a restart, and the items are re-scored in the background.");
  cmd->callback([args, exit_code] { *exit_code = run(*args); });
}

}  // namespace streamscore
