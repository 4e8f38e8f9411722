// The engine: spawns the actor pipeline on a store, takes raw batches from any
// source, and returns the totals at the end. `replay`, `run`, the tests and the
// benchmarks all drive this one class.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/metrics.hpp"
#include "state/status.hpp"
#include "state/store.hpp"

namespace caf {
class actor_system;
class actor_system_config;
class scoped_actor;
class actor;
}  // namespace caf

namespace streamscore {

struct RawBatch;

struct EngineOptions {
  int shards = 8;
  int threads = 0;   // CAF scheduler threads; 0 = number of cores
  int parsers = 0;   // 0 = number of threads
  int64_t allowed_lateness_ns = 10LL * 60 * 1'000'000'000;
  int64_t max_future_skew_ns = 24LL * 3600 * 1'000'000'000;
  int64_t flush_interval_ms = 0;  // 0 = write items only at finish()
  std::string dead_letter_path;   // empty = count dead letters but do not write them
  bool truncate_dead_letter = true;
  std::function<int64_t()> now_ns;  // wall clock for the `future` check; tests pin it
  std::size_t max_batches_in_flight = 4;
};

class Engine {
 public:
  // Loads whatever state `store` holds (an empty store starts from scratch) and
  // starts the pipeline. `store` must outlive the engine.
  static Status start(const EngineOptions& options, StateStore* store, std::unique_ptr<Engine>* out);
  ~Engine();

  // Hands a batch to the router; blocks while max_batches_in_flight are in progress.
  Status submit(RawBatch batch);
  // Waits for everything submitted, emits the final tick when `final_tick` (end of a
  // finite input), writes every changed item, the clock position and `extra_meta`
  // (e.g. the source position), marks the state closed, and returns the totals.
  Status finish(bool final_tick, RunStats* stats,
                const std::vector<std::pair<std::string, std::string>>& extra_meta = {});

  const EngineMetrics& metrics() const { return *metrics_; }

 private:
  Engine() = default;
  Status wait_for_one_ack();

  EngineOptions options_;
  StateStore* store_ = nullptr;
  std::shared_ptr<EngineMetrics> metrics_;
  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<caf::scoped_actor> self_;
  std::unique_ptr<caf::actor> router_;
  std::vector<caf::actor> actors_;
  std::size_t in_flight_ = 0;
  Status failure_;
  bool finished_ = false;
};

// Meta keys the engine keeps in the store.
constexpr const char* kMetaFormat = "format";
constexpr const char* kMetaClock = "clock";
// "open" while an engine runs on the store, "closed" after a clean finish().
constexpr const char* kMetaSession = "session";

}  // namespace streamscore
