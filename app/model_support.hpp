// Scoring for `replay` and `run`: the active model at start, and for the daemon the
// rollout thread that polls the active reference, swaps models and reports the
// background re-score.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "actors/engine.hpp"
#include "config/config.hpp"
#include "io/http_api.hpp"
#include "model/registry.hpp"
#include "model/watcher.hpp"

namespace streamscore {

// With `model.dir` set: scoring on, and the active model (if any) loaded and checked
// for an engine computing `features`. invalid_argument when model.dir is not a
// directory; any other error is the refusal of the active reference or model (scoring
// stays on, without an initial model).
Status prepare_scoring(const ModelConfig& model, const FeatureSet& features, EngineOptions* options);

// Polls DIR/active.json every poll_interval_ms; a new version is loaded, checked and
// swapped in; a refused one is logged and the previous model stays. Logs the progress of
// the background re-score about once a second, and when it completes.
class ModelRollout {
 public:
  ModelRollout(const ModelConfig& config, const FeatureSet& features, Engine* engine, int initial_version);
  ~ModelRollout();  // stops the thread
  void stop();

 private:
  void loop();
  ModelConfig config_;
  Engine* engine_;
  ActiveModelWatcher watcher_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The HTTP model admin routes (GET /v1/model, POST /v1/model/activate|rollback) over a
// models directory: the same checks as `streamscore model`, and the daemon's watcher of
// active.json picks the change up like one made from the command line. A refused model
// and "nothing to roll back to" answer 409, an unknown version 404, a bad name 400.
//
// The registry's files, its lock and the model check never run on the HTTP thread, nor
// does the HTTP thread wait for them: an admin thread of its own does them and reports
// each change's outcome through its callback once done. A change while another is in
// progress, or while another process holds the registry's lock (`streamscore model
// activate` loading a model), answers 409 at once. GET /v1/model answers the admin
// thread's last reading of the directory (refreshed every `refresh_ms`, after each
// change and after each GET). At destruction a change not started yet is dropped
// (its callback is never called); one under way is finished first.
class RegistryModelAdmin final : public ModelAdmin {
 public:
  RegistryModelAdmin(std::string dir, const FeatureSet& features, int64_t refresh_ms);
  ~RegistryModelAdmin() override;  // joins the admin thread
  Status describe(std::string* json) override;
  void activate(const std::string& version, Done done) override;
  void rollback(Done done) override;

 private:
  using Change = std::function<Status()>;
  // Queues `change` ("activate v3") for the admin thread, which calls `done` with its
  // outcome; `done` gets a 409 at once when another change is in progress.
  void hand_off(const std::string& what, Change change, Done done);
  void serve();                                // the admin thread
  Status read_description(std::string* json);  // admin thread (and the constructor)

  ModelRegistry registry_;
  std::chrono::milliseconds refresh_;
  std::mutex mu_;
  std::condition_variable wake_;
  Change pending_;           // handed off, not started yet
  Done pending_done_;        // its callback
  std::string in_progress_;  // what is handed off or runs now ("" = nothing)
  Status description_status_;
  std::string description_;  // what GET /v1/model answers
  bool reread_ = false;      // GET /v1/model asked for a fresh reading
  bool stop_ = false;
  std::thread thread_;
};

// Text lines for the end-of-run summary (nothing without scoring).
void print_model_summary(const Engine& engine);

void log_line(const char* command, const std::string& message);

}  // namespace streamscore
