// `streamscore stress`, every scenario but crash-restart: the engine in this process on a
// RocksDB store, offered the scenario's stream at its rate; model-swap swaps two models
// trained by `streamscore train` under load.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <thread>

#include <boost/json.hpp>

#include "app/common.hpp"
#include "common/spawn.hpp"
#include "messages/messages.hpp"
#include "model/artifact.hpp"
#include "model/features.hpp"
#include "model/scorer.hpp"
#include "testkit/stress_internal.hpp"

namespace streamscore::stress_detail {

namespace {

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
        spawn_process({o.binary, "train", "--events", log, "--models", models, "--rounds", rounds, "--nthread", "1"},
                      (fs::path(dir) / "train.out").string(), (fs::path(dir) / "train.err").string());
    if (pid < 0 || wait_for_exit(pid) != 0) return Status::io_error("streamscore train failed");
  }
  for (int version = 1; version <= 2; ++version) {
    auto model = std::make_shared<LoadedModel>();
    Status s = load_model(models, version, 1, FeatureSet::defaults(), model.get());
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
    Status s =
        score_items(*models.models[static_cast<std::size_t>(version - 1)], {default_item_values(txn, cents)}, &want);
    if (!s.is_ok()) return "scoring failed: " + s.to_string();
    if (want.empty() || want[0] != score)
      return "item scored " + std::to_string(score) + " but v" + std::to_string(version) + " gives " +
             (want.empty() ? std::string("nothing") : std::to_string(want[0])) + ": " + item;
    ++*checked;
  }
  return "";
}

}  // namespace

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
  std::vector<std::string> items;
  if (!(s = exported(*store, &items)).is_ok()) return s;
  if (!swapping) {
    report->first_difference = first_difference(stats, items, ref.stats(), ref.items());
  } else {
    // Re-scores after a swap are versions of their own: compare everything else, then
    // check every score against the model it names.
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

}  // namespace streamscore::stress_detail
