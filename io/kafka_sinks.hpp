// The Kafka sinks of `run`: dead letters to a topic (dead_letter.kind = "kafka") and
// every committed item to the output topic (output.topic). Both use KafkaProducer and
// plug into the engine through its narrow interfaces (DeadLetterSink, ItemSink); the
// delivery guarantees are in docs/semantics.md, "Kafka sinks".
#pragma once

#include <memory>
#include <string>

#include "common/status.hpp"
#include "config/config.hpp"
#include "io/dead_letter.hpp"
#include "io/item_sink.hpp"
#include "io/kafka_producer.hpp"

namespace streamscore {

// What the Kafka sinks of this process have produced and what their deliveries came to,
// for GET /metrics (`streamscore_kafka_dead_letters_*`, `streamscore_kafka_items_*`,
// `streamscore_kafka_delivery_errors_total`). Process-wide, as the sinks are made by the
// engine through EngineOptions' factories; counts start at 0 with the process. The
// delivery counts move as the sinks serve delivery reports: after every dead-letter
// batch, every 1024 items, and at every flush (each checkpoint).
struct KafkaSinkMetrics {
  KafkaDeliveryCounters dead_letters;  // the dead-letter topic
  KafkaDeliveryCounters items;         // the output topic
};
KafkaSinkMetrics& kafka_sink_metrics();

// One message per dead letter: the value is the dead-letter JSON object (the file's line
// without its newline), no key, headers `reason` and `source` (as in the value); for a
// record read from Kafka also `source_topic`, `source_partition` and `source_offset`.
Status make_kafka_dead_letter_sink(const KafkaConfig& kafka, const std::string& topic,
                                   std::shared_ptr<DeadLetterSink>* out);

// One message per written item: key = customer_id, value = the item JSON as `export`
// prints it.
Status make_kafka_item_sink(const KafkaConfig& kafka, const std::string& topic, std::unique_ptr<ItemSink>* out);

}  // namespace streamscore
