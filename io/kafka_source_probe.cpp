#include "io/kafka_source_probe.hpp"

namespace streamscore {

void KafkaSourceProbe::render(std::string& out, int64_t) const {
  render_counter(out, "streamscore_kafka_errors_total",
                 "Kafka client errors (broker down, request errors), recovered or not.", errors.load());
  render_counter(out, "streamscore_kafka_rebalances_total", "Partition assignments and revocations.",
                 rebalances.load());
  render_counter(out, "streamscore_kafka_offset_commits_total",
                 "Offsets committed to the consumer group after the checkpoint that covers them.",
                 offset_commits.load());
  render_gauge(out, "streamscore_kafka_partitions", "Kafka partitions assigned to this daemon.",
               static_cast<double>(partitions.load()));
  const int64_t behind = lag.load();
  if (behind >= 0)
    render_gauge(out, "streamscore_kafka_lag", "Messages behind the assigned partitions' ends.",
                 static_cast<double>(behind));
}

}  // namespace streamscore
