// A Kafka cluster on loopback for development and tests: librdkafka's mock cluster
// (rdkafka_mock.h). It speaks the real Kafka protocol, so any client (kcat, another
// streamscore, a Java consumer) can use it. `streamscore mock-kafka` runs one; tests
// start one in-process so that they can also inject broker faults through handle().
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>  // after rdkafka.h

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "io/kafka_client.hpp"

namespace streamscore {

// Retention of librdkafka's mock cluster: each partition keeps its newest produce batches
// up to 5 MiB or 100,000 batches and deletes older ones as new ones arrive. Fixed in
// librdkafka's source (rd_kafka_mock_partition_init, rdkafka_mock.c): no property or API
// changes it, so mock-kafka states it and `generate --kafka` reports what it deleted.
constexpr std::size_t kMockPartitionMaxBytes = 5 * 1024 * 1024;
constexpr int kMockPartitionMaxBatches = 100000;

struct MockTopic {
  std::string name;
  int partitions = 8;
};

struct MockKafkaOptions {
  int brokers = 3;
  std::vector<MockTopic> topics = {{"customer-events", 8}};
};

class MockKafkaCluster {
 public:
  static Status start(const MockKafkaOptions& options, std::unique_ptr<MockKafkaCluster>* out);
  ~MockKafkaCluster();
  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;

  // "127.0.0.1:port,127.0.0.1:port,...", one per broker.
  std::string bootstrap_servers() const;
  // For fault injection (rd_kafka_mock_broker_set_down, _partition_set_leader, ...).
  rd_kafka_mock_cluster_t* handle() const { return cluster_; }
  Status create_topic(const MockTopic& topic);

 private:
  MockKafkaCluster() = default;
  KafkaHandlePtr owner_;  // the client instance the mock cluster is attached to
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

}  // namespace streamscore
