#include "state/dynamodb_partitions.hpp"

#include <librdkafka/rdkafka.h>

#include <charconv>

namespace streamscore {

int32_t partition_of_customer(std::string_view customer_id, int32_t count) {
  // librdkafka's own murmur2 partitioner (it does not use the topic handle), called here
  // and not through io/kafka_client.hpp: the state layer sits below io.
  return rd_kafka_msg_partitioner_murmur2(nullptr, customer_id.data(), customer_id.size(), count, nullptr, nullptr);
}

std::string partition_index_pk(int32_t count, int32_t partition) {
  return "PART#" + std::to_string(count) + "#" + std::to_string(partition);
}

std::string customer_entry_sk(std::string_view customer_id) {
  std::string sk(kCustomerEntryPrefix);
  sk.append(customer_id);
  return sk;
}

std::string_view customer_of_entry_sk(std::string_view sk) {
  return sk.substr(0, kCustomerEntryPrefix.size()) == kCustomerEntryPrefix ? sk.substr(kCustomerEntryPrefix.size())
                                                                           : std::string_view();
}

bool parse_partition_count(std::string_view value, int32_t* count) {
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), *count);
  return ec == std::errc() && end == value.data() + value.size() && *count > 0;
}

}  // namespace streamscore
