// Helpers for tests on the Kafka path: a mock cluster in the test process (so that the
// test can inject broker faults) and streamscore's KafkaProducer to fill its topics.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
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

inline std::vector<std::string> lines_of_file(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace streamscore::testing
