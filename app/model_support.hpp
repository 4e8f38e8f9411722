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

// Text lines for the end-of-run summary (nothing without scoring).
void print_model_summary(const Engine& engine);

void log_line(const char* command, const std::string& message);

}  // namespace streamscore
