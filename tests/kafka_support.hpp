// Helpers for tests on the Kafka path: a mock cluster in the test process (so that the
// test can inject broker faults) and streamscore's KafkaProducer to fill its topics.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/kafka_mock.hpp"
#include "io/kafka_producer.hpp"

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

// Produces `records` to `topic` with streamscore's own KafkaProducer (partitioned by
// key with murmur2, as Kafka's default partitioner does, unless a record names its
// partition; keyless ones spread) and waits until every one is delivered.
inline void produce(const std::string& bootstrap, const std::string& topic, const std::vector<KafkaRecord>& records) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = bootstrap;
  std::unique_ptr<KafkaProducer> producer;
  Status s = KafkaProducer::create(kafka, &producer);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  for (const KafkaRecord& r : records) {
    s = producer->produce(topic, r.has_key ? std::optional<std::string_view>(r.key) : std::nullopt, r.value, {},
                          r.partition);
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  }
  s = producer->flush(std::chrono::seconds(60));
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
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

// The offsets `group` has committed for the first `partitions` partitions of `topic`
// (RD_KAFKA_OFFSET_INVALID: none), read without joining the group.
inline std::map<int32_t, int64_t> committed_offsets(const std::string& bootstrap, const std::string& group,
                                                    const std::string& topic, int32_t partitions) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = bootstrap;
  KafkaConfPtr conf;
  Status s = make_kafka_conf(kafka, {{"group.id", group}, {"enable.auto.commit", "false"}}, &conf);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  KafkaHandlePtr consumer;
  s = make_kafka_handle(RD_KAFKA_CONSUMER, std::move(conf), &consumer);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  KafkaPartitionsPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  const rd_kafka_resp_err_t err = rd_kafka_committed(consumer.get(), list.get(), 10000);
  BOOST_REQUIRE_MESSAGE(err == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(err));
  std::map<int32_t, int64_t> out;
  for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  rd_kafka_consumer_close(consumer.get());
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
