#include "state/dynamodb_partitions.hpp"

#include <charconv>

#include "io/kafka_client.hpp"

namespace streamscore {

int32_t partition_of_customer(std::string_view customer_id, int32_t count) {
  return kafka_partition_of_key(customer_id, count);
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
