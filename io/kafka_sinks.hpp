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
#include "io/kafka_sink_probe.hpp"

namespace streamscore {

// One message per dead letter: the value is the dead-letter JSON object (the file's line
// without its newline), no key, headers `reason` and `source` (as in the value); for a
// record read from Kafka also `source_topic`, `source_partition` and `source_offset`.
// Both sinks count into `probe` (its dead_letters and items); null: counted nowhere.
Status make_kafka_dead_letter_sink(const KafkaConfig& kafka, const std::string& topic, KafkaSinkProbe* probe,
                                   std::shared_ptr<DeadLetterSink>* out);

// One message per written item: key = customer_id, value = the item JSON as `export`
// prints it.
Status make_kafka_item_sink(const KafkaConfig& kafka, const std::string& topic, KafkaSinkProbe* probe,
                            std::unique_ptr<ItemSink>* out);

}  // namespace streamscore
