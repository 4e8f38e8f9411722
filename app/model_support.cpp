#include "app/model_support.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include <chrono>
#include <cstdio>

#include "actors/model_actor.hpp"
#include "model/registry.hpp"

namespace streamscore {

void log_line(const char* command, const std::string& message) {
  // On a terminal the progress line is redrawn after it; clear it first.
  std::fprintf(stderr, "%sstreamscore %s: %s\n", ::isatty(STDERR_FILENO) == 1 ? "\r\033[K" : "", command,
               message.c_str());
}

Status prepare_scoring(const ModelConfig& model, const FeatureSet& features, EngineOptions* options) {
  if (model.dir.empty()) return Status::ok();
  std::error_code ec;
  if (!std::filesystem::is_directory(model.dir, ec))
    return Status::invalid_argument("model.dir '" + model.dir + "': no such directory");
  options->scoring = true;
  options->rescore_rate = model.rescore_rate;
  ModelRegistry registry(model.dir);
  ActiveRef ref;
  Status s = registry.read_active(&ref);
  if (!s.is_ok()) return Status::corruption("model.dir '" + model.dir + "': " + s.message());
  if (ref.active == 0) return Status::ok();
  auto loaded = std::make_shared<LoadedModel>();
  if (!(s = load_model(model.dir, ref.active, model.nthread, features, loaded.get())).is_ok()) return s;
  options->initial_model = std::move(loaded);
  return Status::ok();
}

ModelRollout::ModelRollout(const ModelConfig& config, const FeatureSet& features, Engine* engine, int initial_version)
    : config_(config), engine_(engine), watcher_(config.dir, config.nthread, features) {
  watcher_.assume_in_use(initial_version);
  thread_ = std::thread([this] { loop(); });
}

ModelRollout::~ModelRollout() {
  stop();
}

void ModelRollout::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ModelRollout::loop() {
  using clock = std::chrono::steady_clock;
  const ModelProbe& metrics = engine_->model_probe();
  auto last_report = clock::now();
  // A restart on items scored by another version re-scores them to the initial model:
  // that is reported like a swap (a fresh state has nothing to re-score, nothing is said).
  int reported_complete = 0;
  int64_t last_left = -2;
  int swapped_to = metrics.active_version.load();  // the version the last swap asked for
  while (!stop_) {
    std::shared_ptr<const LoadedModel> model;
    std::string error;
    const int before = watcher_.in_use();
    switch (watcher_.poll(&model, &error)) {
      case ActiveModelWatcher::Change::loaded:
        log_line("run", "model: " + model->meta.version_name() + " loaded and checked; swapping (was " +
                            (before ? "v" + std::to_string(before) : std::string("no model")) +
                            "); items are re-scored in the background");
        swapped_to = model->meta.version;
        engine_->swap_model(std::move(model));
        reported_complete = 0;
        last_left = -2;
        break;
      case ActiveModelWatcher::Change::refused:
        log_line("run",
                 error + "; " +
                     (before ? "v" + std::to_string(before) + " stays active" : std::string("no model is active")));
        break;
      case ActiveModelWatcher::Change::none:
        break;
    }
    // Reports refer to the version of the last swap once the model actor has taken it.
    const int active = metrics.active_version.load() == swapped_to ? swapped_to : 0;
    const int64_t left = metrics.stale_total();
    if (active > 0 && reported_complete != active && left == 0) {
      log_line("run", "model: re-score to v" + std::to_string(active) + " complete (" +
                          std::to_string(metrics.rescored.load()) + " items re-scored since start)");
      reported_complete = active;
    } else if (active > 0 && reported_complete != active && left > 0 && left != last_left &&
               clock::now() - last_report >= std::chrono::seconds(1)) {
      log_line("run", "model: re-scoring to v" + std::to_string(active) + ": " + std::to_string(left) + " items left");
      last_report = clock::now();
      last_left = left;
    }
    for (int64_t waited = 0; waited < config_.poll_interval_ms && !stop_; waited += 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

// Refusals are conflicts with the registry's state, not server errors.
Status as_admin_error(const Status& s) {
  if (s.is_ok() || s.is_not_found()) return s;
  if (s.code() == Status::Code::corruption || s.code() == Status::Code::invalid_argument)
    return Status::conflict(s.message());
  return s;
}

}  // namespace

RegistryModelAdmin::RegistryModelAdmin(std::string dir, const FeatureSet& features, int64_t refresh_ms)
    : registry_(std::move(dir), /*wait_for_lock=*/false, features), refresh_(refresh_ms) {
  description_status_ = read_description(&description_);  // before the server starts
  thread_ = std::thread([this] { serve(); });
}

RegistryModelAdmin::~RegistryModelAdmin() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RegistryModelAdmin::serve() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, refresh_, [this] { return stop_ || pending_ || reread_; });
    if (stop_) break;
    reread_ = false;
    Change change = std::move(pending_);
    Done done = std::move(pending_done_);
    pending_ = nullptr;
    pending_done_ = nullptr;
    lock.unlock();  // the slow part: files, the lock, the model check
    Status result;
    if (change) result = as_admin_error(change());
    std::string description;
    const Status read = read_description(&description);
    lock.lock();
    description_status_ = read;
    if (read.is_ok()) description_ = description;
    if (!change) continue;
    in_progress_.clear();
    lock.unlock();  // the callback posts to the HTTP server: never under this lock
    if (!result.is_ok())
      done(result, {});
    else
      done(read, std::move(description));
    lock.lock();
  }
}

void RegistryModelAdmin::hand_off(const std::string& what, Change change, Done done) {
  std::string busy_with;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_progress_.empty()) {
      in_progress_ = what;
      pending_ = std::move(change);
      pending_done_ = std::move(done);
      wake_.notify_all();
      return;
    }
    busy_with = in_progress_;
  }
  done(Status::conflict("a model change is in progress (" + busy_with + "); retry when GET /v1/model shows it done"),
       {});
}

Status RegistryModelAdmin::describe(std::string* json) {
  std::lock_guard<std::mutex> lock(mu_);
  reread_ = true;  // the next answer reflects the directory as of now (no wait here)
  wake_.notify_all();
  if (description_status_.is_ok()) *json = description_;
  return description_status_;
}

Status RegistryModelAdmin::read_description(std::string* json) {
  ActiveRef ref;
  Status s = registry_.read_active(&ref);
  if (!s.is_ok()) return s;
  boost::json::object o;
  o["active"] = ref.active ? boost::json::value("v" + std::to_string(ref.active)) : boost::json::value(nullptr);
  boost::json::array history;
  for (int v : ref.history) history.emplace_back("v" + std::to_string(v));
  o["history"] = std::move(history);
  if (ref.active) {  // the active model's metadata sidecar, as stored
    std::string text;
    boost::system::error_code ec;
    if (read_file((std::filesystem::path(registry_.dir()) / meta_file_name(ref.active)).string(), &text).is_ok()) {
      boost::json::value meta = boost::json::parse(text, ec);
      if (!ec) o["metadata"] = std::move(meta);
    }
  }
  *json = boost::json::serialize(o);
  return Status::ok();
}

void RegistryModelAdmin::activate(const std::string& version, Done done) {
  int n = 0;
  const Status s = parse_version_name(version, &n);
  if (!s.is_ok()) return done(s, {});  // 400
  hand_off(
      "activate " + version,
      [this, n] {
        ActiveRef after;
        return registry_.activate(n, &after);
      },
      std::move(done));
}

void RegistryModelAdmin::rollback(Done done) {
  hand_off(
      "rollback",
      [this] {
        ActiveRef after;
        return registry_.rollback(&after);
      },
      std::move(done));
}

void print_model_summary(const Engine& engine) {
  if (!engine.scoring()) return;
  const ModelProbe& m = engine.model_probe();
  const int active = m.active_version.load();
  const int64_t left = m.stale_total();
  std::printf("  model                %s   (swaps: %llu, rows scored: %llu, items re-scored: %llu%s)\n",
              active ? ("v" + std::to_string(active)).c_str() : "none", (unsigned long long)m.swaps.load(),
              (unsigned long long)m.rows_scored.load(), (unsigned long long)m.rescored.load(),
              left > 0 ? (", " + std::to_string(left) + " items still on another version").c_str() : "");
}

}  // namespace streamscore
