// What every Kafka client of streamscore shares (the source's consumer, the dead-letter
// and output producers, `generate --kafka`): librdkafka handles owned by unique_ptr, and
// one way to build a client configuration from [kafka].
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"

namespace streamscore {

// The partition Kafka's default partitioner (the Java client's, and librdkafka's
// "murmur2_random") gives a message with this non-empty key.
int32_t kafka_partition_of_key(std::string_view key, int32_t partition_count);

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
};
struct KafkaTopicPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
struct KafkaMessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;
using KafkaHandlePtr = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;
using KafkaPartitionsPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaTopicPartitionListDeleter>;
using KafkaMessagePtr = std::unique_ptr<rd_kafka_message_t, KafkaMessageDeleter>;

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// A client configuration: bootstrap servers, then `defaults` (this client's choices that
// an operator may change), then the [kafka] pass-through properties, then `own` (the
// properties this client needs, which win). An error names the property.
Status make_kafka_conf(const KafkaConfig& kafka, const KafkaProperties& own, KafkaConfPtr* out,
                       const KafkaProperties& defaults = {});

// Creates a producer or consumer from `conf` (which it takes over, also on failure).
Status make_kafka_handle(rd_kafka_type_t type, KafkaConfPtr conf, KafkaHandlePtr* out);

}  // namespace streamscore
