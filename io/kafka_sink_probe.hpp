// What the Kafka sinks of a process have produced and what their deliveries came to,
// for GET /metrics (`streamscore_kafka_dead_letters_*`, `streamscore_kafka_items_*`,
// `streamscore_kafka_delivery_errors_total`). Owned by the command that makes the sinks
// and handed to their factories (io/kafka_sinks.hpp); counts start at 0 with it. The
// delivery counts move as the sinks serve delivery reports: after every dead-letter
// batch, every 1024 items, and at every flush (each checkpoint).
#pragma once

#include <string>

#include "io/kafka_producer.hpp"
#include "io/metrics_text.hpp"

namespace streamscore {

struct KafkaSinkProbe final : MetricsProbe {
  KafkaDeliveryCounters dead_letters;  // the dead-letter topic
  KafkaDeliveryCounters items;         // the output topic

  void render(std::string& out, int64_t now_unix_ns) const override;
};

}  // namespace streamscore
