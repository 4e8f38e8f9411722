#include "testkit/stress.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "actors/engine.hpp"
#include "app/common.hpp"
#include "messages/messages.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"
#include "model/scorer.hpp"
#include "state/store.hpp"
#include "testkit/reference_model.hpp"

extern char** environ;

namespace streamscore {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string>& stress_scenarios() {
  static const std::vector<std::string> names = {"steady",     "hot-keys",        "burst",         "duplicate-storm",
                                                 "late-storm", "malformed-flood", "crash-restart", "model-swap"};
  return names;
}

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The stream each scenario offers: the generator's defaults, changed where the
// scenario says so.
GeneratorOptions generator_for(const StressOptions& o, int64_t events) {
  GeneratorOptions g;
  g.customers = o.customers;
  g.events = events;
  g.days = o.days;
  g.seed = o.seed;
  if (o.scenario == "hot-keys") {  // 1% of the customers get half of the events
    g.hot_customers = 0.01;
    g.hot_share = 0.5;
  } else if (o.scenario == "duplicate-storm") {
    g.dup_rate = 0.5;
  } else if (o.scenario == "late-storm") {  // 1..48 hours late: inside the 30-day horizon
    g.late_rate = 0.2;
  } else if (o.scenario == "malformed-flood") {
    g.bad_rate = 0.3;
  }
  return g;
}

// Records offered by `t` seconds after the start. burst: 10x the rate for 0.2 s of
// every 2 s (so the mean is 1.9x the base rate).
double records_due(const StressOptions& o, double t) {
  const double r = static_cast<double>(o.rate);
  if (o.scenario != "burst") return r * t;
  const double cycles = std::floor(t / 2.0), within = t - cycles * 2.0;
  const double in_cycle = within < 0.2 ? 10 * r * within : 2 * r + r * (within - 0.2);
  return cycles * 3.8 * r + in_cycle;
}

int64_t records_for(const StressOptions& o) {
  if (o.events > 0) return o.events;
  return std::max<int64_t>(1, static_cast<int64_t>(records_due(o, o.duration_s)));
}

uint64_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0) return std::strtoull(line.c_str() + n + 1, nullptr, 10);
  return 0;
}

// Samples the process's RSS every 50 ms while it lives.
class RssSampler {
 public:
  RssSampler() : thread_([this] { loop(); }) {}
  ~RssSampler() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  uint64_t current_kb() const { return current_.load(); }
  uint64_t median_kb() {
    stop();
    if (samples_.empty()) return proc_status_kb("VmRSS:");
    std::sort(samples_.begin(), samples_.end());
    return samples_[samples_.size() / 2];
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      const uint64_t kb = proc_status_kb("VmRSS:");
      current_ = kb;
      samples_.push_back(kb);
      wake_.wait_for(lock, std::chrono::milliseconds(50));
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<uint64_t> current_{0};
  std::vector<uint64_t> samples_;
  std::thread thread_;
};

// Latency samples weighted by the records they stand for.
class LatencyRecorder {
 public:
  void submitted(Clock::time_point at, uint64_t records) { pending_.push_back({at, records}); }
  // Everything submitted so far is durable now.
  void committed() {
    const auto now = Clock::now();
    for (const auto& [at, n] : pending_)
      samples_.push_back({std::chrono::duration<double, std::milli>(now - at).count(), n});
    pending_.clear();
  }
  LatencySummary summary() {
    LatencySummary s;
    std::sort(samples_.begin(), samples_.end());
    for (const auto& x : samples_) s.samples += x.second;
    if (s.samples == 0) return s;
    auto at = [&](double q) {
      const auto want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(s.samples)));
      uint64_t seen = 0;
      for (const auto& x : samples_)
        if ((seen += x.second) >= std::max<uint64_t>(1, want)) return x.first;
      return samples_.back().first;
    };
    s.p50_ms = at(0.50);
    s.p95_ms = at(0.95);
    s.p99_ms = at(0.99);
    s.max_ms = samples_.back().first;
    return s;
  }

 private:
  std::vector<std::pair<Clock::time_point, uint64_t>> pending_;
  std::vector<std::pair<double, uint64_t>> samples_;
};

// One CSV row per simulated day, taken right after a checkpoint (a barrier: the shards
// have applied everything submitted before it, so the counters are consistent).
class DailyTrace {
 public:
  Status open(const std::string& path) {
    if (path.empty()) return Status::ok();
    out_ = std::fopen(path.c_str(), "w");
    if (!out_) return Status::io_error("cannot write " + path);
    std::fprintf(out_,
                 "simulated_day,records,ticks,item_versions,items_per_tick,tick_ms_total,"
                 "tick_us_per_tick,tick_us_per_item,dedup_ids,customers,rss_mib,peak_rss_mib,wall_s\n");
    start_ = Clock::now();
    return Status::ok();
  }
  bool enabled() const { return out_ != nullptr; }
  // The simulated day the window clock has reached.
  static int64_t day_of(const RouterProbe& m) {
    const int64_t tick = m.last_tick.load();
    return tick == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::min() : floor_div(tick, 288);
  }
  void row(int64_t day, const RouterProbe& m, const ShardProbe& shards) {
    if (!out_) return;
    const uint64_t read = m.read, ticks = m.ticks, versions = shards.item_versions, nanos = shards.tick_nanos;
    const double dticks = static_cast<double>(ticks - ticks_), dversions = static_cast<double>(versions - versions_);
    const double dms = static_cast<double>(nanos - nanos_) / 1e6;
    if (first_day_ == std::numeric_limits<int64_t>::min()) first_day_ = day;
    std::fprintf(out_, "%lld,%llu,%llu,%llu,%.2f,%.3f,%.3f,%.3f,%lld,%lld,%.1f,%.1f,%.2f\n",
                 static_cast<long long>(day - first_day_), static_cast<unsigned long long>(read - read_),
                 static_cast<unsigned long long>(ticks - ticks_), static_cast<unsigned long long>(versions - versions_),
                 dticks > 0 ? dversions / dticks : 0.0, dms, dticks > 0 ? dms * 1000 / dticks : 0.0,
                 dversions > 0 ? dms * 1000 / dversions : 0.0, static_cast<long long>(shards.dedup_ids.load()),
                 static_cast<long long>(shards.customers.load()), static_cast<double>(proc_status_kb("VmRSS:")) / 1024,
                 static_cast<double>(proc_status_kb("VmHWM:")) / 1024, seconds_since(start_));
    std::fflush(out_);
    read_ = read, ticks_ = ticks, versions_ = versions, nanos_ = nanos;
  }
  ~DailyTrace() {
    if (out_) std::fclose(out_);
  }

 private:
  std::FILE* out_ = nullptr;
  Clock::time_point start_;
  int64_t first_day_ = std::numeric_limits<int64_t>::min();
  uint64_t read_ = 0, ticks_ = 0, versions_ = 0, nanos_ = 0;
};

// A directory for the state: the one given (must be empty or absent) or a temp dir
// that is removed at the end.
class WorkDir {
 public:
  Status open(const std::string& given) {
    std::error_code ec;
    if (!given.empty()) {
      if (fs::exists(given, ec) && !fs::is_empty(given, ec))
        return Status::invalid_argument("--state " + given + ": not empty (stress starts from scratch)");
      fs::create_directories(given, ec);
      if (ec) return Status::io_error("--state " + given + ": " + ec.message());
      path_ = fs::absolute(given).string();
      return Status::ok();
    }
    std::string pattern = (fs::temp_directory_path(ec) / "streamscore-stress-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return Status::io_error("cannot create a temp dir");
    path_ = pattern;
    remove_ = true;
    return Status::ok();
  }
  ~WorkDir() {
    std::error_code ec;
    if (remove_) fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
  bool remove_ = false;
};

ReferenceOptions reference_options(const EngineOptions& engine, int64_t now_ns) {
  ReferenceOptions r;
  r.allowed_lateness_ns = engine.allowed_lateness_ns;
  r.max_event_ns = now_ns + engine.max_future_skew_ns;
  return r;
}

int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The same stream again, through the reference model.
ReferenceModel reference_of(const GeneratorOptions& g, const ReferenceOptions& r) {
  ReferenceModel model(r);
  EventGenerator generator(g);
  std::string line;
  while (generator.next(&line)) model.feed_line(line);
  model.finish();
  return model;
}

std::vector<std::string> exported(StateStore& store) {
  std::vector<std::string> items;
  store.scan([&](const ItemRecord& r) {
    if (!r.item_json.empty()) items.push_back(r.item_json);
    return true;
  });
  return items;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err);

// --- model-swap: two models trained by `streamscore train`, swapped under load ---------

struct SwapModels {
  std::vector<std::shared_ptr<const LoadedModel>> models;  // v1, v2
};

Status train_two_models(const StressOptions& o, const std::string& dir, SwapModels* out) {
  if (o.binary.empty()) return Status::invalid_argument("model-swap needs the streamscore binary (train)");
  const std::string log = (fs::path(dir) / "training.jsonl").string();
  const std::string models = (fs::path(dir) / "models").string();
  {
    GeneratorOptions g;  // a separate training log: 45 days, as `train` needs more than 32
    g.customers = std::min<int64_t>(o.customers, 5000);
    g.events = 100000;
    g.seed = o.seed + 1;
    std::ofstream file(log, std::ios::binary);
    EventGenerator generator(g);
    std::string line;
    while (generator.next(&line)) file << line << '\n';
    if (!file) return Status::io_error("cannot write " + log);
  }
  for (const char* rounds : {"4", "12"}) {  // two different models: v1, v2
    const pid_t pid =
        spawn({o.binary, "train", "--events", log, "--models", models, "--rounds", rounds, "--nthread", "1"},
              (fs::path(dir) / "train.out").string(), (fs::path(dir) / "train.err").string());
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Status::io_error("streamscore train failed");
  }
  for (int version = 1; version <= 2; ++version) {
    auto model = std::make_shared<LoadedModel>();
    Status s = load_model(models, version, 1, model.get());
    if (!s.is_ok()) return s;
    out->models.push_back(std::move(model));
  }
  return Status::ok();
}

// Without score, model_version and version: what must equal the reference when
// re-scores after swaps add versions.
std::string without_model_fields(std::string item) {
  const auto score = item.find(",\"score\":");
  if (score != std::string::npos) {
    const auto mv = item.find("\"model_version\":\"", score);
    const auto end = mv == std::string::npos ? std::string::npos : item.find('"', mv + 17);
    if (end != std::string::npos) item.erase(score, end + 1 - score);
  }
  const auto version = item.rfind(",\"version\":");
  if (version != std::string::npos) item.erase(version, item.find('}', version) - version);
  return item;
}

// Every scored item's score must be what its model_version computes for its features.
std::string check_scores(const std::vector<std::string>& items, const SwapModels& models, uint64_t* checked) {
  for (const std::string& item : items) {
    float score = 0;
    int32_t version = 0;
    if (!read_score(item, &score, &version)) return "item with a malformed score: " + item;
    if (version == 0) continue;  // written while no model was active
    if (version < 1 || version > static_cast<int32_t>(models.models.size()))
      return "item scored by an unknown model v" + std::to_string(version) + ": " + item;
    boost::system::error_code ec;
    const auto v = boost::json::parse(item, ec);
    if (ec) return "item is not JSON: " + item;
    const auto& f = v.at("features");
    const int64_t txn = f.at("total_txn_30d").to_number<int64_t>();
    const auto cents = static_cast<int64_t>(std::llround(f.at("total_amount_30d").to_number<double>() * 100));
    std::vector<float> want;
    Status s = score_rows(*models.models[static_cast<std::size_t>(version - 1)], {feature_row(txn, cents)}, &want);
    if (!s.is_ok()) return "scoring failed: " + s.to_string();
    if (want.empty() || want[0] != score)
      return "item scored " + std::to_string(score) + " but v" + std::to_string(version) + " gives " +
             (want.empty() ? std::string("nothing") : std::to_string(want[0])) + ": " + item;
    ++*checked;
  }
  return "";
}

// --- in-process scenarios --------------------------------------------------------------

Status run_in_process(const StressOptions& o, StressReport* report) {
  WorkDir dir;
  Status s = dir.open(o.state_dir);
  if (!s.is_ok()) return s;
  const int64_t records = records_for(o);
  report->generator = generator_for(o, records);
  DailyTrace trace;
  if (!(s = trace.open(o.daily_csv)).is_ok()) return s;

  const bool swapping = o.scenario == "model-swap";
  SwapModels models;
  if (swapping && !(s = train_two_models(o, dir / "", &models)).is_ok()) return s;

  std::unique_ptr<StateStore> store;
  if (!(s = open_store("rocksdb", dir / "state", &store)).is_ok()) return s;
  EngineOptions options;
  if (swapping) {
    options.scoring = true;
    options.initial_model = models.models[0];
  }
  options.shards = o.shards;
  options.threads = o.threads;
  options.dead_letter_path = dir / "dead-letter.jsonl";
  const int64_t now_ns = wall_now_ns();
  options.now_ns = [now_ns] { return now_ns; };  // the same instant for the reference
  std::unique_ptr<Engine> engine;
  if (!(s = Engine::start(options, store.get(), &engine)).is_ok()) return s;
  const RouterProbe& m = engine->router_probe();
  const ShardProbe& shards = engine->shard_probe();

  std::size_t batch_size = o.batch_size;
  if (batch_size == 0)
    batch_size = o.rate > 0 ? static_cast<std::size_t>(std::clamp<int64_t>(o.rate / 100, 1, 65536)) : 65536;
  RssSampler rss;
  LatencyRecorder latency;
  ProgressLine progress("stress " + o.scenario);  // only on a terminal
  EventGenerator generator(report->generator);
  std::string line;
  uint64_t produced = 0;
  bool more = true;
  int64_t day = std::numeric_limits<int64_t>::min();
  const auto interval = std::chrono::milliseconds(o.checkpoint_interval_ms);
  const auto start = Clock::now();
  auto last_checkpoint = start;
  while (more) {
    auto buffer = std::make_shared<std::string>();
    RawBatch batch;
    batch.source = "stress";
    while (batch.lines.size() < batch_size && (more = generator.next(&line))) {
      batch.lines.push_back(
          LineRef{static_cast<uint32_t>(buffer->size()), static_cast<uint32_t>(line.size()), ++produced});
      buffer->append(line);
    }
    batch.buffer = std::move(buffer);
    if (batch.lines.empty()) break;
    if (o.rate > 0)  // offer the batch when its last record is due
      while (records_due(o, seconds_since(start)) < static_cast<double>(produced))
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    const auto n = batch.lines.size();
    latency.submitted(Clock::now(), n);
    if (!(s = engine->submit(std::move(batch))).is_ok()) return s;
    progress.update(m);
    const uint64_t through = m.accepted + m.duplicates + m.dead_lettered_total() + m.out_of_range;
    report->max_queued_records = std::max<uint64_t>(report->max_queued_records, produced - std::min(produced, through));
    for (int i = 0; i < std::min<int>(shards.shard_count, static_cast<int>(kMaxShardMetrics)); ++i)
      report->max_shard_mailbox = std::max<int64_t>(report->max_shard_mailbox, shards.shard_queue_depth(i));
    const int64_t now_day = trace.enabled() ? DailyTrace::day_of(m) : day;
    if (Clock::now() - last_checkpoint >= interval || now_day != day) {
      if (!(s = engine->checkpoint({})).is_ok()) return s;
      latency.committed();
      last_checkpoint = Clock::now();
      if (swapping) {  // v1 -> v2 (a rollout), then v2 -> v1 (a rollback), and again
        ++report->swaps;
        engine->swap_model(models.models[static_cast<std::size_t>(report->swaps % 2)]);
      }
      if (now_day != day) {
        if (day != std::numeric_limits<int64_t>::min()) trace.row(day, m, shards);
        day = now_day;
      }
    }
  }
  report->offered = generator.counts();
  RunStats stats;
  if (!(s = engine->finish(/*final_tick=*/true, &stats)).is_ok()) return s;
  latency.committed();
  progress.done();
  report->seconds = seconds_since(start);
  if (day != std::numeric_limits<int64_t>::min()) trace.row(day, m, shards);
  report->checkpoints = engine->checkpoint_probe().checkpoints;
  report->median_rss_kb = rss.median_kb();
  report->peak_rss_kb = proc_status_kb("VmHWM:");
  engine.reset();
  report->records = produced;
  report->records_per_second = report->seconds > 0 ? produced / report->seconds : 0;
  report->latency = latency.summary();
  report->stats = stats;
  if (!o.verify) return Status::ok();

  const auto verify_start = Clock::now();
  const ReferenceModel ref = reference_of(report->generator, reference_options(options, now_ns));
  if (!swapping) {
    report->first_difference = first_difference(stats, exported(*store), ref.stats(), ref.items());
  } else {
    // Re-scores after a swap are versions of their own: compare everything else, then
    // check every score against the model it names.
    const std::vector<std::string> items = exported(*store);
    std::vector<std::string> got, want;
    for (const auto& i : items) got.push_back(without_model_fields(i));
    for (const auto& i : ref.items()) want.push_back(without_model_fields(i));
    RunStats got_stats = stats, want_stats = ref.stats();
    got_stats.logical_writes = want_stats.logical_writes = 0;
    report->first_difference = first_difference(got_stats, got, want_stats, want);
    if (report->first_difference.empty())
      report->first_difference = check_scores(items, models, &report->scores_checked);
  }
  report->verified = true;
  report->verify_seconds = seconds_since(verify_start);
  return Status::ok();
}

// --- crash-restart: a daemon on a file source, killed and resumed ------------------------

pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  std::vector<std::string> words = args;
  std::vector<char*> argv;
  for (auto& a : words) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// How far process `pid` has read `path` (0 while it has not opened it).
uint64_t read_offset(pid_t pid, const std::string& path) {
  std::error_code ec;
  const fs::path fds = fs::path("/proc") / std::to_string(pid) / "fd";
  for (const auto& entry : fs::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(entry.path(), link_ec) != path) continue;
    std::ifstream info(fs::path("/proc") / std::to_string(pid) / "fdinfo" / entry.path().filename());
    std::string key;
    uint64_t value = 0;
    while (info >> key >> value)
      if (key == "pos:") return value;
  }
  return 0;
}

// Dead-letter lines per reason, from the file the daemons left.
std::map<std::string, uint64_t> reasons_in(const std::string& path) {
  std::map<std::string, uint64_t> counts;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* r = o ? o->if_contains("reason") : nullptr;
    ++counts[r && r->is_string() ? std::string(r->as_string()) : std::string("(unreadable line)")];
  }
  return counts;
}

Status run_crash_restart(const StressOptions& o, StressReport* report) {
  if (o.binary.empty()) return Status::invalid_argument("crash-restart needs the streamscore binary");
  WorkDir dir;
  Status s = dir.open(o.state_dir);
  if (!s.is_ok()) return s;
  report->generator = generator_for(o, records_for(o));
  const std::string log = dir / "events.jsonl", dead_letter = dir / "dead-letter.jsonl";
  {
    std::ofstream out(log, std::ios::binary);
    EventGenerator generator(report->generator);
    std::string line;
    while (generator.next(&line)) out << line << '\n';
    if (!out) return Status::io_error("cannot write " + log);
    report->records = static_cast<uint64_t>(generator.produced());
    report->offered = generator.counts();
  }
  std::error_code size_ec;
  const uint64_t log_bytes = fs::file_size(log, size_ec);
  std::vector<std::string> args = {
      o.binary, "run", "--json", "--top", "0", "--set", "source.kind=file", "--set", "source.path=" + log, "--set",
      "source.exit_at_end=true", "--set", "state.path=" + (dir / "state"), "--set", "dead_letter.path=" + dead_letter,
      "--set", "checkpoint.interval=" + std::to_string(std::max<int64_t>(1, o.checkpoint_interval_ms)) + "ms", "--set",
      "engine.shards=" + std::to_string(o.shards),
      // Small batches, so that a kill lands between many checkpoints.
      "--set", "engine.batch_size=" + std::to_string(o.batch_size > 0 ? o.batch_size : 4096)};
  if (o.threads > 0) args.insert(args.end(), {"--set", "engine.threads=" + std::to_string(o.threads)});
  std::mt19937_64 rng(o.seed);
  const int64_t now_ns = wall_now_ns();
  const auto start = Clock::now();
  int exit_code = -1;
  std::string summary;
  for (int attempt = 0;; ++attempt) {
    const std::string out = dir / ("run-" + std::to_string(attempt) + ".json");
    const std::string err = dir / ("run-" + std::to_string(attempt) + ".err");
    const pid_t pid = spawn(args, out, err);
    if (pid < 0) return Status::io_error("cannot start " + o.binary);
    int status = 0;
    if (report->kills < o.kills) {
      // Kill when the daemon has read past a random point of the log (its read offset,
      // from /proc), so that every kill lands mid-run however fast the machine is: kill
      // k aims at the k-th of `kills` equal parts of the log.
      const uint64_t part = log_bytes / static_cast<uint64_t>(o.kills + 1);
      const uint64_t target =
          part * static_cast<uint64_t>(report->kills) + part / 2 + rng() % std::max<uint64_t>(1, part);
      bool exited = false;
      while (!(exited = ::waitpid(pid, &status, WNOHANG) == pid) && read_offset(pid, log) < target)
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ++report->kills;
        continue;
      }
    } else {
      ::waitpid(pid, &status, 0);
    }
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    summary = slurp(out);
    if (exit_code != 0)
      return Status::io_error("the daemon exited with " + std::to_string(exit_code) + ": " + slurp(err));
    break;
  }
  report->seconds = seconds_since(start);
  report->records_per_second = report->seconds > 0 ? report->records / report->seconds : 0;
  // The last daemon's summary: its counters cover what it read after its checkpoint.
  boost::system::error_code ec;
  const auto v = boost::json::parse(summary, ec);
  const auto* o_json = ec ? nullptr : v.if_object();
  if (!o_json) return Status::io_error("the daemon's summary is not JSON: " + summary);
  auto field = [&](const char* name) -> uint64_t {
    const auto* f = o_json->if_contains(name);
    return f && f->is_int64() ? static_cast<uint64_t>(f->as_int64()) : f && f->is_uint64() ? f->as_uint64() : 0;
  };
  report->stats.read = field("read");
  report->stats.accepted = field("accepted");
  report->stats.duplicates = field("duplicates");
  report->stats.customers = field("customers");
  report->stats.ticks = field("ticks");
  report->peak_rss_kb = field("peak_rss_kb");
  const auto* balanced = o_json->if_contains("balanced");
  const auto* recovery = o_json->if_contains("recovery_seconds");
  if (recovery && recovery->is_number()) report->last_recovery_seconds = recovery->to_number<double>();
  if (!o.verify) return Status::ok();

  const auto verify_start = Clock::now();
  EngineOptions defaults;
  const ReferenceModel ref = reference_of(report->generator, reference_options(defaults, now_ns));
  std::unique_ptr<StateStore> store;
  if (!(s = open_store("rocksdb", dir / "state", &store)).is_ok()) return s;
  std::string diff = first_item_difference(exported(*store), ref.items());
  if (diff.empty() && !(balanced && balanced->is_bool() && balanced->as_bool()))
    diff = "the last daemon's counters do not balance: " + summary;
  if (diff.empty()) {  // the dead letter is cut back at every restart: nothing lost or doubled
    const auto got = reasons_in(dead_letter);
    for (int r = 0; r < kReasonCount && diff.empty(); ++r) {
      const std::string name(reason_name(static_cast<Reason>(r)));
      const uint64_t want = ref.stats().dead_lettered[r];
      const auto it = got.find(name);
      const uint64_t have = it == got.end() ? 0 : it->second;
      report->stats.dead_lettered[r] = have;
      if (have != want)
        diff = "dead letter " + name + ": " + std::to_string(have) + " lines, reference " + std::to_string(want);
    }
    uint64_t lines = 0;
    for (const auto& [name, n] : got) lines += n;
    if (diff.empty() && lines != ref.stats().dead_lettered_total())
      diff = "dead letter: " + std::to_string(lines) + " lines, reference " +
             std::to_string(ref.stats().dead_lettered_total());
  }
  report->first_difference = diff;
  report->verified = true;
  report->verify_seconds = seconds_since(verify_start);
  return Status::ok();
}

}  // namespace

Status run_stress(const StressOptions& o, StressReport* report) {
  const auto& names = stress_scenarios();
  if (std::find(names.begin(), names.end(), o.scenario) == names.end())
    return Status::invalid_argument("--scenario " + o.scenario + ": unknown");
  if (o.rate < 0 || o.duration_s <= 0 || o.customers < 1 || o.customers > 9999999 || o.days < 1)
    return Status::invalid_argument("--rate >= 0, --duration > 0, --customers 1..9999999, --days >= 1");
  report->scenario = o.scenario;
  return o.scenario == "crash-restart" ? run_crash_restart(o, report) : run_in_process(o, report);
}

void print_stress_report(const StressReport& r, bool as_json) {
  const auto& g = r.generator;
  const char* verdict = !r.verified ? "not checked" : r.first_difference.empty() ? "ok" : "FAILED";
  if (as_json) {
    std::string diff;
    if (!r.first_difference.empty())
      diff = ",\"first_difference\":" + boost::json::serialize(boost::json::value(r.first_difference));
    std::printf(
        "{\"scenario\":\"%s\",\"records\":%llu,\"offered\":{\"valid\":%lld,\"late\":%lld,"
        "\"duplicates\":%lld,\"malformed\":%lld},\"customers\":%lld,\"days\":%lld,\"seconds\":%.3f,"
        "\"records_per_second\":%.0f,\"latency_ms\":{\"records\":%llu,\"p50\":%.1f,\"p95\":%.1f,"
        "\"p99\":%.1f,\"max\":%.1f},\"checkpoints\":%llu,\"max_queued_records\":%llu,\"max_shard_mailbox\":%lld,"
        "\"peak_rss_kb\":%llu,\"median_rss_kb\":%llu,\"kills\":%d,\"swaps\":%d,\"scores_checked\":%llu,\"last_recovery_"
        "seconds\":%.3f,"
        "\"read\":%llu,\"accepted\":%llu,\"duplicates\":%llu,\"dead_lettered\":%llu,"
        "\"item_versions\":%llu,\"invariant\":\"%s\",\"verify_seconds\":%.3f%s}\n",
        r.scenario.c_str(), static_cast<unsigned long long>(r.records), static_cast<long long>(r.offered.valid),
        static_cast<long long>(r.offered.late), static_cast<long long>(r.offered.duplicates),
        static_cast<long long>(r.offered.bad), static_cast<long long>(g.customers), static_cast<long long>(g.days),
        r.seconds, r.records_per_second, static_cast<unsigned long long>(r.latency.samples), r.latency.p50_ms,
        r.latency.p95_ms, r.latency.p99_ms, r.latency.max_ms, static_cast<unsigned long long>(r.checkpoints),
        static_cast<unsigned long long>(r.max_queued_records), static_cast<long long>(r.max_shard_mailbox),
        static_cast<unsigned long long>(r.peak_rss_kb), static_cast<unsigned long long>(r.median_rss_kb), r.kills,
        r.swaps, static_cast<unsigned long long>(r.scores_checked), r.last_recovery_seconds,
        static_cast<unsigned long long>(r.stats.read), static_cast<unsigned long long>(r.stats.accepted),
        static_cast<unsigned long long>(r.stats.duplicates),
        static_cast<unsigned long long>(r.stats.dead_lettered_total()),
        static_cast<unsigned long long>(r.stats.logical_writes), verdict, r.verify_seconds, diff.c_str());
    return;
  }
  std::printf("stress %s: %llu records, %lld customers over %lld simulated days, %.2f s (%.0f records/s)\n",
              r.scenario.c_str(), static_cast<unsigned long long>(r.records), static_cast<long long>(g.customers),
              static_cast<long long>(g.days), r.seconds, r.records_per_second);
  std::printf("  offered                %lld new in order, %lld late, %lld redeliveries, %lld malformed\n",
              static_cast<long long>(r.offered.valid), static_cast<long long>(r.offered.late),
              static_cast<long long>(r.offered.duplicates), static_cast<long long>(r.offered.bad));
  if (r.scenario == "crash-restart") {
    std::printf("  SIGKILLs delivered     %d; the last daemon resumed after record %llu (state loaded in %.3f s)\n",
                r.kills, static_cast<unsigned long long>(r.records - std::min(r.records, r.stats.read)),
                r.last_recovery_seconds);
  } else {
    std::printf("  latency to durable     p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms   (%llu checkpoints)\n",
                r.latency.p50_ms, r.latency.p95_ms, r.latency.p99_ms, r.latency.max_ms,
                static_cast<unsigned long long>(r.checkpoints));
    std::printf(
        "  queues                 at most %llu records before the window clock, %lld batches queued at a shard\n",
        static_cast<unsigned long long>(r.max_queued_records), static_cast<long long>(r.max_shard_mailbox));
    std::printf("  read %llu = accepted %llu + duplicates %llu + dead-lettered %llu\n",
                static_cast<unsigned long long>(r.stats.read), static_cast<unsigned long long>(r.stats.accepted),
                static_cast<unsigned long long>(r.stats.duplicates),
                static_cast<unsigned long long>(r.stats.dead_lettered_total()));
  }
  if (r.scenario == "model-swap")
    std::printf("  model swaps            %d under load (v1 -> v2, rollback to v1, ...); %llu scores recomputed\n",
                r.swaps, static_cast<unsigned long long>(r.scores_checked));
  if (r.scenario == "crash-restart")
    std::printf("  RSS                    peak %.0f MiB (the last daemon)\n", r.peak_rss_kb / 1024.0);
  else
    std::printf("  RSS                    peak %.0f MiB, median %.0f MiB\n", r.peak_rss_kb / 1024.0,
                r.median_rss_kb / 1024.0);
  std::printf("  invariant              %s", verdict);
  if (r.verified) std::printf(" (reference recomputed in %.2f s)", r.verify_seconds);
  std::printf("\n");
  if (!r.first_difference.empty()) std::printf("  first difference: %s\n", r.first_difference.c_str());
}

}  // namespace streamscore
