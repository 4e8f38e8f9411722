#include "testkit/stress_sampling.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "state/event.hpp"

namespace streamscore::stress_detail {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

uint64_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0) return std::strtoull(line.c_str() + n + 1, nullptr, 10);
  return 0;
}

// ---------------------------------------------------------------- RssSampler

void RssSampler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t RssSampler::median_kb() {
  stop();
  if (samples_.empty()) return proc_status_kb("VmRSS:");
  std::sort(samples_.begin(), samples_.end());
  return samples_[samples_.size() / 2];
}

void RssSampler::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const uint64_t kb = proc_status_kb("VmRSS:");
    current_ = kb;
    samples_.push_back(kb);
    wake_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------- LatencyRecorder

void LatencyRecorder::committed() {
  const auto now = Clock::now();
  for (const auto& [at, n] : pending_)
    samples_.push_back({std::chrono::duration<double, std::milli>(now - at).count(), n});
  pending_.clear();
}

LatencySummary LatencyRecorder::summary() {
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

// ---------------------------------------------------------------- DailyTrace

Status DailyTrace::open(const std::string& path) {
  if (path.empty()) return Status::ok();
  out_ = std::fopen(path.c_str(), "w");
  if (!out_) return Status::io_error("cannot write " + path);
  std::fprintf(out_,
               "simulated_day,records,ticks,item_versions,items_per_tick,tick_ms_total,"
               "tick_us_per_tick,tick_us_per_item,dedup_ids,customers,rss_mib,peak_rss_mib,wall_s\n");
  start_ = Clock::now();
  return Status::ok();
}

int64_t DailyTrace::day_of(const RouterProbe& m) {
  const int64_t tick = m.last_tick.load();
  return tick == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::min() : floor_div(tick, 288);
}

void DailyTrace::row(int64_t day, const RouterProbe& m, const ShardProbe& shards) {
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

}  // namespace streamscore::stress_detail
