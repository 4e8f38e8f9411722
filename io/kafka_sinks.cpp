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
  KafkaDeadLetterSink(std::unique_ptr<KafkaProducer> producer, std::string topic)
      : producer_(std::move(producer)), topic_(std::move(topic)) {}

  Status write(const DeadLetterBatch& batch) override {
    std::size_t begin = 0;
    for (const DeadLetterEntry& entry : batch.entries) {
      // The line without its '\n': a message is already one record.
      const std::string_view value(batch.lines.data() + begin, entry.end - begin - 1);
      begin = entry.end;
      Status s = producer_->produce(topic_, std::nullopt, value, headers_of(batch.source, entry));
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
  // `source` as the value spells it: file:line, generator:N, or topic/partition:offset.
  static std::vector<KafkaHeader> headers_of(const std::string& source, const DeadLetterEntry& entry) {
    const std::string position = std::to_string(entry.position);
    if (entry.partition < 0)
      return {{"reason", std::string(reason_name(entry.reason))}, {"source", source + ":" + position}};
    const std::string partition = std::to_string(entry.partition);
    return {{"reason", std::string(reason_name(entry.reason))},
            {"source", source + "/" + partition + ":" + position},
            {"source_topic", source},
            {"source_partition", partition},
            {"source_offset", position}};
  }

  std::unique_ptr<KafkaProducer> producer_;
  std::string topic_;
};

class KafkaItemSink : public ItemSink {
 public:
  KafkaItemSink(std::unique_ptr<KafkaProducer> producer, std::string topic)
      : producer_(std::move(producer)), topic_(std::move(topic)) {}

  Status publish(const ItemRecord& item) override {
    const std::string_view customer_id = customer_id_of_pk(item.pk);
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

// A sink of type Sink on its own producer, handed out as `Ptr` (shared or unique); the
// producer counts into `counters`.
template <typename Sink, typename Ptr>
Status make_sink(const KafkaConfig& kafka, const std::string& topic, KafkaDeliveryCounters* counters, Ptr* out) {
  std::unique_ptr<KafkaProducer> producer;
  Status s = KafkaProducer::create(kafka, &producer);
  if (!s.is_ok()) return s;
  producer->count_into(counters);
  out->reset(new Sink(std::move(producer), topic));
  return s;
}

}  // namespace

Status make_kafka_dead_letter_sink(const KafkaConfig& kafka, const std::string& topic, KafkaSinkProbe* probe,
                                   std::shared_ptr<DeadLetterSink>* out) {
  return make_sink<KafkaDeadLetterSink>(kafka, topic, probe ? &probe->dead_letters : nullptr, out);
}

Status make_kafka_item_sink(const KafkaConfig& kafka, const std::string& topic, KafkaSinkProbe* probe,
                            std::unique_ptr<ItemSink>* out) {
  return make_sink<KafkaItemSink>(kafka, topic, probe ? &probe->items : nullptr, out);
}

}  // namespace streamscore
