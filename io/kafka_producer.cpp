#include "io/kafka_producer.hpp"

namespace streamscore {

namespace {

// Idempotence gives exactly-once, in-order writes per partition within one producer
// session (retries never duplicate nor reorder); it needs acks=all. A small linger
// still batches bursts (a checkpoint's items, a generator) without delaying a lone
// dead letter noticeably.
const std::vector<std::pair<std::string, std::string>> kProducerProperties = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"linger.ms", "5"},
    // Kafka's default partitioner (the Java client's): a group sharing a table (state.shared)
    // finds each customer in the partition murmur2 of its id gives.
    {"partitioner", "murmur2_random"},
};

constexpr auto kQueueFullWait = std::chrono::milliseconds(100);

// librdkafka takes over the headers on success only.
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

HeadersPtr make_headers(const std::vector<KafkaHeader>& headers) {
  if (headers.empty()) return nullptr;
  HeadersPtr out(rd_kafka_headers_new(headers.size()));
  for (const KafkaHeader& h : headers)
    rd_kafka_header_add(out.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  return out;
}

}  // namespace

Status KafkaProducer::create(const KafkaConfig& kafka, std::unique_ptr<KafkaProducer>* out) {
  KafkaConfPtr conf;
  Status s = make_kafka_conf(kafka, kProducerProperties, &conf);
  if (!s.is_ok()) return s;
  std::unique_ptr<KafkaProducer> producer(new KafkaProducer());
  // The callback finds its producer through the opaque pointer; the object is on the
  // heap, so the pointer stays valid for the handle's lifetime.
  rd_kafka_conf_set_opaque(conf.get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaProducer::on_delivery);
  if (!(s = make_kafka_handle(RD_KAFKA_PRODUCER, std::move(conf), &producer->handle_)).is_ok()) return s;
  *out = std::move(producer);
  return Status::ok();
}

KafkaProducer::~KafkaProducer() {
  if (!handle_) return;
  // Whatever is still queued was never reported delivered to the caller (a flush would
  // have said so): drop it now rather than let rd_kafka_destroy wait for dead brokers.
  rd_kafka_purge(handle_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(handle_.get(), 0);
}

void KafkaProducer::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  KafkaProducer& producer = *static_cast<KafkaProducer*>(opaque);
  Reports& reports = producer.reports_;
  const bool ok = message->err == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (producer.counters_) (ok ? producer.counters_->delivered : producer.counters_->failed)++;
  if (ok) {
    ++reports.delivered;
    return;
  }
  if (reports.failed++ == 0)
    reports.first_error = std::string(rd_kafka_topic_name(message->rkt)) + " [" + std::to_string(message->partition) +
                          "]: " + rd_kafka_err2str(message->err);
}

Status KafkaProducer::failure_status() const {
  return Status::io_error("kafka: " + std::to_string(reports_.failed) +
                          " message(s) not delivered; first: " + reports_.first_error);
}

Status KafkaProducer::produce(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
                              const std::vector<KafkaHeader>& headers, int32_t partition) {
  HeadersPtr hdrs = make_headers(headers);
  // A null key pointer is a message without a key; an empty key is a key of length 0.
  const void* key_data = key ? key->data() : nullptr;
  const std::size_t key_size = key ? key->size() : 0;
  while (true) {
    if (reports_.failed > 0) return failure_status();
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        handle_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_HEADERS(hdrs.get()), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)hdrs.release();  // now librdkafka's
      ++produced_;
      if (counters_) counters_->produced++;
      return Status::ok();
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      return Status::io_error("kafka: cannot produce to '" + topic + "': " + rd_kafka_err2str(err));
    if (stop_ && stop_()) return Status::io_error("kafka: stopped while waiting for room in the queue");
    // Backpressure: the brokers are slower than we are. Let deliveries drain.
    rd_kafka_poll(handle_.get(), static_cast<int>(kQueueFullWait.count()));
  }
}

void KafkaProducer::poll() {
  rd_kafka_poll(handle_.get(), 0);
}

Status KafkaProducer::flush(std::chrono::milliseconds timeout) {
  const rd_kafka_resp_err_t err = rd_kafka_flush(handle_.get(), static_cast<int>(timeout.count()));
  rd_kafka_poll(handle_.get(), 0);  // reports of the last messages
  if (reports_.failed > 0) return failure_status();
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || in_flight() > 0)
    return Status::io_error("kafka: " + std::to_string(in_flight()) + " message(s) still in flight after " +
                            std::to_string(timeout.count()) + " ms");
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Status::io_error(std::string("kafka: flush: ") + rd_kafka_err2str(err));
  return Status::ok();
}

}  // namespace streamscore
