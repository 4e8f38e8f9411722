// The one producer every Kafka sink of streamscore uses (`generate --kafka`, the
// dead-letter topic, the output topic): idempotent, acks from all in-sync replicas,
// backpressure instead of an error when librdkafka's queue is full, and every delivery
// accounted for, so that a message that could not be delivered is an error at the next
// flush() and never a silent loss.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"
#include "io/kafka_client.hpp"

namespace streamscore {

struct KafkaHeader {
  std::string name;
  std::string value;
};

// What one kind of message has come to (GET /metrics): counted by the producers given
// it with count_into(), read from any thread.
struct KafkaDeliveryCounters {
  std::atomic<uint64_t> produced{0};   // queued to librdkafka
  std::atomic<uint64_t> delivered{0};  // acknowledged by the brokers
  std::atomic<uint64_t> failed{0};     // reported not delivered
};

class KafkaProducer {
 public:
  // A producer on [kafka] (brokers and pass-through properties) with streamscore's own
  // properties on top: enable.idempotence=true, acks=all, a small linger.ms.
  static Status create(const KafkaConfig& kafka, std::unique_ptr<KafkaProducer>* out);
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Also counts every message queued and every delivery report into `counters` (which
  // must outlive the producer), besides the producer's own counts below.
  void count_into(KafkaDeliveryCounters* counters) { counters_ = counters; }
  // A wait for room in a full queue ends with an error once `stop` returns true (a
  // command interrupted by a signal): checked every 100 ms.
  void stop_waiting_when(std::function<bool()> stop) { stop_ = std::move(stop); }

  // Queues one message (no key when `key` is empty-optional; to the partition of its key
  // unless `partition` names one). Waits, serving delivery
  // reports, while librdkafka's queue is full. Fails when a delivery has already
  // failed, so that a producer cut off from its brokers stops instead of waiting on.
  Status produce(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
                 const std::vector<KafkaHeader>& headers = {}, int32_t partition = RD_KAFKA_PARTITION_UA);

  // Serves delivery reports without waiting.
  void poll();

  // Waits until every queued message is delivered or has failed (librdkafka's
  // message.timeout.ms bounds each one), at most `timeout`. An error when any delivery
  // failed since the producer was created (it stays failed), or when the timeout
  // passed with messages still in flight.
  Status flush(std::chrono::milliseconds timeout);

  // Messages queued by produce().
  uint64_t produced() const { return produced_; }
  uint64_t delivered() const { return reports_.delivered; }
  uint64_t failed() const { return reports_.failed; }
  // Messages queued and not yet reported.
  uint64_t in_flight() const { return produced_ - reports_.delivered - reports_.failed; }

 private:
  // Filled by the delivery-report callback, which librdkafka runs inside poll()/flush()
  // on the caller's thread: no locking needed.
  struct Reports {
    uint64_t delivered = 0;
    uint64_t failed = 0;
    std::string first_error;  // "topic [partition]: reason" of the first failure
  };
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);

  KafkaProducer() = default;
  Status failure_status() const;

  KafkaHandlePtr handle_;
  Reports reports_;
  uint64_t produced_ = 0;
  KafkaDeliveryCounters* counters_ = nullptr;
  std::function<bool()> stop_;
};

}  // namespace streamscore
