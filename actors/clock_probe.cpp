#include "actors/clock_probe.hpp"

#include <fmt/format.h>

namespace streamscore {

namespace {
double seconds(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}
}  // namespace

void ClockProbe::render(std::string& out, int64_t now_unix_ns) const {
  const bool clock = started.load() != 0;
  render_gauge(out, "streamscore_event_clock_started", "1 once an event has been accepted.", clock ? 1 : 0);
  if (clock) {
    const int64_t watermark = watermark_ns.load();
    render_gauge(out, "streamscore_max_event_time_seconds", "Largest accepted event time (Unix seconds).",
                 seconds(max_event_time_ns.load()));
    render_gauge(out, "streamscore_watermark_seconds", "Event-time watermark (Unix seconds).", seconds(watermark));
    render_gauge(out, "streamscore_watermark_lag_seconds", "Wall clock minus the watermark.",
                 seconds(now_unix_ns - watermark));
  }
  const std::map<int32_t, int64_t> partitions = partition_watermarks();
  if (partitions.empty()) return;
  render_family(out, "streamscore_partition_watermark_seconds", "gauge",
                "Event-time watermark of each Kafka partition this daemon holds (Unix seconds).");
  for (const auto& [partition, watermark] : partitions)
    out +=
        fmt::format("streamscore_partition_watermark_seconds{{partition=\"{}\"}} {}\n", partition, seconds(watermark));
}

}  // namespace streamscore
