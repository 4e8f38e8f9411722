// What `streamscore stress` measures while a scenario runs in process (testkit/stress.hpp):
// the process's RSS, the latency from submit to durable, and the per-day trace of the
// load simulation (bench/simulate.sh).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "actors/router_probe.hpp"
#include "actors/shard_probe.hpp"
#include "common/status.hpp"
#include "testkit/stress.hpp"

namespace streamscore::stress_detail {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t);

// A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"); 0 when absent.
uint64_t proc_status_kb(const char* key);

// Samples the process's RSS every 50 ms while it lives.
class RssSampler {
 public:
  RssSampler() : thread_([this] { loop(); }) {}
  ~RssSampler() { stop(); }
  void stop();
  uint64_t current_kb() const { return current_.load(); }
  uint64_t median_kb();

 private:
  void loop();
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
  void committed();
  LatencySummary summary();

 private:
  std::vector<std::pair<Clock::time_point, uint64_t>> pending_;
  std::vector<std::pair<double, uint64_t>> samples_;
};

// One CSV row per simulated day, taken right after a checkpoint (a barrier: the shards
// have applied everything submitted before it, so the counters are consistent).
class DailyTrace {
 public:
  Status open(const std::string& path);
  bool enabled() const { return out_ != nullptr; }
  // The simulated day the window clock has reached.
  static int64_t day_of(const RouterProbe& m);
  void row(int64_t day, const RouterProbe& m, const ShardProbe& shards);
  ~DailyTrace() {
    if (out_) std::fclose(out_);
  }

 private:
  std::FILE* out_ = nullptr;
  Clock::time_point start_;
  int64_t first_day_ = std::numeric_limits<int64_t>::min();
  uint64_t read_ = 0, ticks_ = 0, versions_ = 0, nanos_ = 0;
};

}  // namespace streamscore::stress_detail
