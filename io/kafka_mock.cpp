#include "io/kafka_mock.hpp"

namespace streamscore {

Status MockKafkaCluster::start(const MockKafkaOptions& options, std::unique_ptr<MockKafkaCluster>* out) {
  if (options.brokers < 1) return Status::invalid_argument("mock-kafka: --brokers must be at least 1");
  std::unique_ptr<MockKafkaCluster> cluster(new MockKafkaCluster());
  KafkaConfPtr conf(rd_kafka_conf_new());
  char error[512] = {0};
  // The owning instance never connects anywhere; silence its logs.
  if (rd_kafka_conf_set(conf.get(), "log_level", "0", error, sizeof error) != RD_KAFKA_CONF_OK)
    return Status::invalid_argument(std::string("mock-kafka: ") + error);
  Status s = make_kafka_handle(RD_KAFKA_PRODUCER, std::move(conf), &cluster->owner_);
  if (!s.is_ok()) return s;
  cluster->cluster_ = rd_kafka_mock_cluster_new(cluster->owner_.get(), options.brokers);
  if (cluster->cluster_ == nullptr) return Status::io_error("mock-kafka: cannot start the mock cluster");
  for (const MockTopic& topic : options.topics)
    if (!(s = cluster->create_topic(topic)).is_ok()) return s;
  *out = std::move(cluster);
  return Status::ok();
}

MockKafkaCluster::~MockKafkaCluster() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

std::string MockKafkaCluster::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

Status MockKafkaCluster::create_topic(const MockTopic& topic) {
  if (topic.partitions < 1)
    return Status::invalid_argument("mock-kafka: topic '" + topic.name + "' needs at least 1 partition");
  const rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.name.c_str(), topic.partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::io_error("mock-kafka: cannot create topic '" + topic.name + "': " + rd_kafka_err2str(err));
  return Status::ok();
}

}  // namespace streamscore
