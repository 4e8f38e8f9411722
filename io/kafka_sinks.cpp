#include "io/kafka_sinks.hpp"

#include <chrono>
#include <optional>

#include "io/kafka_producer.hpp"
#include "state/store.hpp"

namespace streamscore {

namespace {

// A safety net only: librdkafka's message.timeout.ms (5 minutes by default) ends every
// delivery before this, with a failure the flush reports.
constexpr auto kFlushTimeout = std::chrono::minutes(15);
constexpr uint64_t kPollEvery = 1024;  // serve delivery reports while producing a burst

class KafkaDeadLetterSink : public DeadLetterSink {
 public:
  KafkaDeadLetterSink(std::unique_ptr<KafkaProducer> producer, std::string topic, bool kafka_source)
      : producer_(std::move(producer)), topic_(std::move(topic)), kafka_source_(kafka_source) {}

  Status write(const DeadLetterBatch& batch) override {
    std::string topic, partition;
    const bool from_kafka = kafka_source_ && split_kafka_source(batch.source, &topic, &partition);
    std::size_t begin = 0;
    for (const DeadLetterEntry& entry : batch.entries) {
      // The line without its '\n': a message is already one record.
      const std::string_view value(batch.lines.data() + begin, entry.end - begin - 1);
      begin = entry.end;
      const std::string position = std::to_string(entry.position);
      std::vector<KafkaHeader> headers = {{"reason", std::string(reason_name(entry.reason))},
                                          {"source", batch.source + ":" + position}};
      if (from_kafka) {
        headers.push_back({"source_topic", topic});
        headers.push_back({"source_partition", partition});
        headers.push_back({"source_offset", position});
      }
      Status s = producer_->produce(topic_, std::nullopt, value, headers);
      if (!s.is_ok()) return s;
    }
    producer_->poll();
    return Status::ok();
  }
  Status flush() override { return producer_->flush(kFlushTimeout); }
  std::string identity() const override { return "kafka:" + topic_; }
  // Messages delivered by this process (a restart counts from 0 again).
  uint64_t position() const override { return producer_->delivered(); }
  bool blocking() const override { return true; }

 private:
  std::unique_ptr<KafkaProducer> producer_;
  std::string topic_;
  bool kafka_source_;
};

class KafkaItemSink : public ItemSink {
 public:
  KafkaItemSink(std::unique_ptr<KafkaProducer> producer, std::string topic)
      : producer_(std::move(producer)), topic_(std::move(topic)) {}

  Status publish(const ItemRecord& item) override {
    const std::string_view customer_id = std::string_view(item.pk).substr(kCustomerPrefix.size());
    Status s = producer_->produce(topic_, customer_id, item.item_json);
    if (s.is_ok() && ++published_ % kPollEvery == 0) producer_->poll();
    return s;
  }
  Status flush() override { return producer_->flush(kFlushTimeout); }
  std::string identity() const override { return "kafka:" + topic_; }

 private:
  std::unique_ptr<KafkaProducer> producer_;
  std::string topic_;
  uint64_t published_ = 0;
};

}  // namespace

bool split_kafka_source(const std::string& source, std::string* topic, std::string* partition) {
  const auto slash = source.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == source.size()) return false;
  for (std::size_t i = slash + 1; i < source.size(); ++i)
    if (source[i] < '0' || source[i] > '9') return false;
  *topic = source.substr(0, slash);
  *partition = source.substr(slash + 1);
  return true;
}

Status make_kafka_dead_letter_sink(const KafkaConfig& kafka, const std::string& topic, bool kafka_source,
                                   std::shared_ptr<DeadLetterSink>* out) {
  std::unique_ptr<KafkaProducer> producer;
  Status s = KafkaProducer::create(kafka, &producer);
  if (!s.is_ok()) return s;
  *out = std::make_shared<KafkaDeadLetterSink>(std::move(producer), topic, kafka_source);
  return Status::ok();
}

Status make_kafka_item_sink(const KafkaConfig& kafka, const std::string& topic,
                            std::unique_ptr<ItemSink>* out) {
  std::unique_ptr<KafkaProducer> producer;
  Status s = KafkaProducer::create(kafka, &producer);
  if (!s.is_ok()) return s;
  *out = std::make_unique<KafkaItemSink>(std::move(producer), topic);
  return Status::ok();
}

}  // namespace streamscore
