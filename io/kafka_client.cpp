#include "io/kafka_client.hpp"

namespace streamscore {

int32_t kafka_partition_of_key(std::string_view key, int32_t partition_count) {
  // librdkafka's own murmur2 partitioner; it does not use the topic handle.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partition_count, nullptr, nullptr);
}

namespace {

Status set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char error[512] = {0};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) == RD_KAFKA_CONF_OK)
    return Status::ok();
  return Status::invalid_argument("kafka property '" + name + "': " + error);
}

}  // namespace

Status make_kafka_conf(const KafkaConfig& kafka, const KafkaProperties& own, KafkaConfPtr* out,
                       const KafkaProperties& defaults) {
  if (kafka.bootstrap_servers.empty()) return Status::invalid_argument("kafka.bootstrap_servers is empty");
  KafkaConfPtr conf(rd_kafka_conf_new());
  Status s = set_property(conf.get(), "bootstrap.servers", kafka.bootstrap_servers);
  for (const auto& [name, value] : defaults)
    if (s.is_ok()) s = set_property(conf.get(), name, value);
  for (const auto& [name, value] : kafka.properties)
    if (s.is_ok()) s = set_property(conf.get(), name, value);
  for (const auto& [name, value] : own)
    if (s.is_ok()) s = set_property(conf.get(), name, value);
  if (!s.is_ok()) return s;
  *out = std::move(conf);
  return Status::ok();
}

Status make_kafka_handle(rd_kafka_type_t type, KafkaConfPtr conf, KafkaHandlePtr* out) {
  char error[512] = {0};
  // On success rd_kafka_new owns the configuration; on failure it is still ours.
  rd_kafka_t* handle = rd_kafka_new(type, conf.get(), error, sizeof error);
  if (handle == nullptr) return Status::invalid_argument(std::string("kafka client: ") + error);
  conf.release();
  out->reset(handle);
  return Status::ok();
}

}  // namespace streamscore
