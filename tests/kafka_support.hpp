// Helpers for tests on the Kafka path: a mock cluster in the test process (so that the
// test can inject broker faults) and a plain librdkafka producer to fill its topics.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "io/kafka_client.hpp"
#include "io/kafka_mock.hpp"

namespace streamscore::testing {

// The customer_id of a generated record, or "" when the record has none (a bad one).
inline std::string customer_id_of(const std::string& line) {
  const std::string field = "\"customer_id\":\"";
  const auto at = line.find(field);
  if (at == std::string::npos) return {};
  const auto begin = at + field.size();
  const auto end = line.find('"', begin);
  return end == std::string::npos ? std::string() : line.substr(begin, end - begin);
}

struct KafkaRecord {
  std::string key;  // empty with has_key = false: a message without a key
  bool has_key = true;
  std::string value;
  int32_t partition = RD_KAFKA_PARTITION_UA;  // UA: by key (murmur2, as Kafka's default partitioner)
};

// Produces `records` to `topic` (partitioned by key with murmur2, as Kafka's default
// partitioner does, unless a record names its partition; keyless ones at random) and waits until every one is delivered.
inline void produce(const std::string& bootstrap, const std::string& topic,
                    const std::vector<KafkaRecord>& records) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = bootstrap;
  KafkaConfPtr conf;
  BOOST_REQUIRE(make_kafka_conf(kafka, {{"enable.idempotence", "true"}, {"linger.ms", "5"}, {"partitioner", "murmur2_random"}}, &conf).is_ok());
  KafkaHandlePtr producer;
  BOOST_REQUIRE(make_kafka_handle(RD_KAFKA_PRODUCER, std::move(conf), &producer).is_ok());
  for (const KafkaRecord& r : records) {
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
          RD_KAFKA_V_KEY(r.has_key ? const_cast<char*>(r.key.data()) : nullptr, r.has_key ? r.key.size() : 0),
          RD_KAFKA_V_PARTITION(r.partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        BOOST_REQUIRE_MESSAGE(err == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(err));
        break;
      }
      rd_kafka_poll(producer.get(), 50);
    }
  }
  BOOST_REQUIRE(rd_kafka_flush(producer.get(), 60000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

// Lines keyed by their customer_id (bad records without one are sent without a key).
inline std::vector<KafkaRecord> keyed_by_customer(const std::vector<std::string>& lines) {
  std::vector<KafkaRecord> out;
  for (const auto& line : lines) {
    const std::string id = customer_id_of(line);
    out.push_back({id, !id.empty(), line});
  }
  return out;
}

inline std::vector<std::string> lines_of_file(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace streamscore::testing
