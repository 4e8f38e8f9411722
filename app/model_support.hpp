// Scoring for `replay` and `run`: the active model at start, and for the daemon the
// rollout thread that polls the active reference, swaps models and reports the
// background re-score.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "actors/engine.hpp"
#include "config/config.hpp"
#include "io/http_api.hpp"
#include "model/registry.hpp"
#include "model/watcher.hpp"

namespace streamscore {

// With `model.dir` set: scoring on, and the active model (if any) loaded and checked.
// `*initial_error` is set (and the model left out) when the active model is refused.
Status prepare_scoring(const ModelConfig& model, EngineOptions* options, std::string* initial_error);

// Polls DIR/active.json every poll_interval_ms; a new version is loaded, checked and
// swapped in; a refused one is logged and the previous model stays. Logs the progress of
// the background re-score about once a second, and when it completes.
class ModelRollout {
 public:
  ModelRollout(const ModelConfig& config, Engine* engine, int initial_version);
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
class RegistryModelAdmin final : public ModelAdmin {
 public:
  explicit RegistryModelAdmin(std::string dir) : registry_(std::move(dir)) {}
  Status describe(std::string* json) override;
  Status activate(const std::string& version, std::string* json) override;
  Status rollback(std::string* json) override;

 private:
  ModelRegistry registry_;
};

// Text lines for the end-of-run summary (nothing without scoring).
void print_model_summary(const Engine& engine);

void log_line(const char* command, const std::string& message);

}  // namespace streamscore
