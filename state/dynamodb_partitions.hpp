// A shared DynamoDB table's index by source partition (docs/semantics.md, section 21,
// "Assignment"): a daemon taking a Kafka partition over Queries that partition's customers
// and dedup ids instead of Scanning the table. Under PK "PART#<count>#<p>" (the customers
// Kafka's default partitioner puts into partition p of a topic of `count` partitions):
//   SK "C#<customer_id>"                      an entry per customer, written with its first write
//   SK "D#<hex writer>#<hex record key>#<chunk>"  a writer's dedup ids of those customers
// Table meta "partition_index" names the count under which every customer is indexed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace streamscore {

inline constexpr std::string_view kMetaPartitionIndex = "partition_index";
inline constexpr std::string_view kCustomerEntryPrefix = "C#";
inline constexpr std::string_view kDedupEntryPrefix = "D#";

// Kafka's default partitioner (murmur2 of the customer_id), as the producers partition.
int32_t partition_of_customer(std::string_view customer_id, int32_t count);

std::string partition_index_pk(int32_t count, int32_t partition);
std::string customer_entry_sk(std::string_view customer_id);
// The customer of an entry's SK; empty for any other SK.
std::string_view customer_of_entry_sk(std::string_view sk);

// The partition count of meta "partition_index"; false when the value is not one.
bool parse_partition_count(std::string_view value, int32_t* count);

}  // namespace streamscore
