// Takeover benchmark (bench/takeover.sh, part of `make bench`): what taking one Kafka
// partition over costs a daemon of a group sharing a DynamoDB table, as the table grows
// around the partition. For each multiple M, a fresh table holds M partitions' worth of
// customers (each partition `--partition-customers`, `--ids` dedup ids each, items of about
// `--item-bytes`), written by one writer that held every partition; then another writer
// takes partition 0 over (claim, recovery of other writers' commits, load) in two ways:
//   query: StateStore::scan_partitions, the partition's index (what a takeover does now);
//   scan:  StateStore::scan + scan_dedup of every writer, filtered (what it did before).
// Prints one JSON line per multiple: milliseconds and table rows read for each way.
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "io/event_parser.hpp"
#include "io/kafka_client.hpp"
#include "io/kafka_source.hpp"
#include "state/dynamodb_store.hpp"
#include "state/shard_state.hpp"

using namespace streamscore;

namespace {

constexpr const char* kTopic = "customer-events";

struct Options {
  std::string endpoint;
  int partitions = 100;
  int partition_customers = 100;
  int ids = 5;
  std::size_t item_bytes = 2500;
  std::vector<int> multiples = {1, 10, 100};
};

void fail(const std::string& what, const Status& s) {
  std::cerr << "takeover_bench: " << what << ": " << s.to_string() << "\n";
  std::exit(1);
}

std::unique_ptr<StateStore> open_writer(DynamoDbOptions o, const std::string& writer, bool all_dedup) {
  o.writer = writer;
  o.dedup_of_all_writers = all_dedup;
  o.metrics = nullptr;
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(o, &store);
  if (!s.is_ok()) fail("open " + writer, s);
  return store;
}

uint64_t rows_read(const StateStore& store) {
  for (const StateStore::Counter& c : store.counters())
    if (std::string(c.name) == "streamscore_dynamodb_rows_read_total") return c.value;
  return 0;
}

std::vector<std::string> offset_keys(const std::vector<int32_t>& partitions) {
  std::vector<std::string> keys;
  for (int32_t p : partitions) keys.push_back(partition_offset_key(kTopic, p));
  return keys;
}

// Customer ids filling partitions 0 .. multiple-1 with `per_partition` customers each.
std::vector<std::string> customers_of(const Options& o, int multiple) {
  std::vector<int> filled(static_cast<std::size_t>(o.partitions), 0);
  std::vector<std::string> out;
  const std::size_t wanted = static_cast<std::size_t>(multiple) * static_cast<std::size_t>(o.partition_customers);
  for (int i = 0; out.size() < wanted; ++i) {
    const std::string id = "C" + std::to_string(i);
    const int32_t p = kafka_partition_of_key(id, o.partitions);
    if (p < multiple && filled[static_cast<std::size_t>(p)] < o.partition_customers) {
      ++filled[static_cast<std::size_t>(p)];
      out.push_back(id);
    }
  }
  return out;
}

// One checkpoint creating `ids`' customers, with their dedup ids as the engine encodes them.
WriteSet creating(const Options& o, const std::vector<std::string>& ids, uint64_t sequence) {
  WriteSet w;
  ShardState shard(ShardOptions{});
  for (const std::string& id : ids) {
    const std::string item = "{\"PK\":\"CUSTOMER#" + id + "\",\"version\":1}";
    w.puts.push_back({ItemRecord{customer_pk(id), 1, item, std::string(o.item_bytes, 'x')}, 0});
    for (int k = 0; k < o.ids; ++k) {
      ParsedEvent e;
      e.customer_id = id;
      e.time = EventTime{(1735689600LL + k) * kNanosPerSecond, 0};
      e.customer_hash = XXH3_64bits(id.data(), id.size());
      e.key = dedup_key(id, "event " + std::to_string(k));
      shard.apply_event(e);
    }
  }
  shard.take_unsaved_ids(sequence, 0, &w.dedup);
  return w;
}

void fill(const Options& o, const DynamoDbOptions& table, int multiple) {
  std::vector<int32_t> all;
  for (int32_t p = 0; p < o.partitions; ++p) all.push_back(p);
  auto filler = open_writer(table, "filler", true);
  Status s = filler->take_over(offset_keys(all));
  if (s.is_ok())
    s = filler->scan_partitions(
        PartitionScope{o.partitions, all}, [](const ItemRecord&) { return true; },
        [](const DedupRecord&) { return true; });
  if (!s.is_ok()) fail("fill: take over", s);
  const std::vector<std::string> customers = customers_of(o, multiple);
  constexpr std::size_t kPerCommit = 500;
  for (std::size_t at = 0; at < customers.size(); at += kPerCommit) {
    const std::vector<std::string> some(
        customers.begin() + static_cast<std::ptrdiff_t>(at),
        customers.begin() + static_cast<std::ptrdiff_t>(std::min(customers.size(), at + kPerCommit)));
    std::vector<std::size_t> conflicts;
    if (!(s = filler->commit(creating(o, some, at / kPerCommit + 1), &conflicts)).is_ok() || !conflicts.empty())
      fail("fill: commit", s);
  }
}

struct Measured {
  double ms = 0;
  uint64_t rows = 0, items = 0, ids = 0;
};

// Partition 0 taken over by a new writer: claim, other writers' recovery, then `load`.
template <class Load>
Measured take_partition_0(const Options& o, const DynamoDbOptions& table, const std::string& writer, Load load) {
  auto heir = open_writer(table, writer, true);
  Measured m;
  const uint64_t before = rows_read(*heir);
  const auto start = std::chrono::steady_clock::now();
  Status s = heir->take_over(offset_keys({0}));
  if (s.is_ok()) s = heir->recover_other_writers();
  auto item_fn = [&](const ItemRecord& r) {
    m.items += kafka_partition_of_key(customer_id_of_pk(r.pk), o.partitions) == 0;
    return true;
  };
  auto dedup_fn = [&](const DedupRecord& r) {
    Status d = for_each_dedup_id(
        r, [&](std::string_view id, const DedupEntry&) { m.ids += kafka_partition_of_key(id, o.partitions) == 0; });
    return d.is_ok();
  };
  if (s.is_ok()) s = load(*heir, item_fn, dedup_fn);
  if (!s.is_ok()) fail("take over partition 0", s);
  m.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  m.rows = rows_read(*heir) - before;
  return m;
}

void measure(const Options& o, DynamoDbOptions table, int multiple) {
  static int tables = 0;
  table.table = "takeover" + std::to_string(tables++);
  bool existed = false;
  Status s = create_dynamodb_table(table, &existed);
  if (!s.is_ok()) fail("create table", s);
  fill(o, table, multiple);
  const Measured query = take_partition_0(o, table, "heir-query", [&](StateStore& store, auto& items, auto& ids) {
    return store.scan_partitions(PartitionScope{o.partitions, {0}}, items, ids);
  });
  const Measured scan = take_partition_0(o, table, "heir-scan", [&](StateStore& store, auto& items, auto& ids) {
    Status r = store.scan(items);
    return r.is_ok() ? store.scan_dedup(ids) : r;
  });
  if (query.items != scan.items || query.ids != scan.ids)
    fail("the two loads differ", Status::corruption(std::to_string(query.items) + " vs " + std::to_string(scan.items)));
  std::printf(
      "{\"multiple\":%d,\"table_customers\":%d,\"partition_customers\":%llu,\"partition_ids\":%llu,"
      "\"query_ms\":%.1f,\"query_rows\":%llu,\"scan_ms\":%.1f,\"scan_rows\":%llu}\n",
      multiple, multiple * o.partition_customers, static_cast<unsigned long long>(query.items),
      static_cast<unsigned long long>(query.ids), query.ms, static_cast<unsigned long long>(query.rows), scan.ms,
      static_cast<unsigned long long>(scan.rows));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--endpoint")
      o.endpoint = value;
    else if (flag == "--partitions")
      o.partitions = std::atoi(value.c_str());
    else if (flag == "--partition-customers")
      o.partition_customers = std::atoi(value.c_str());
    else if (flag == "--ids")
      o.ids = std::atoi(value.c_str());
    else if (flag == "--item-bytes")
      o.item_bytes = static_cast<std::size_t>(std::atol(value.c_str()));
    else if (flag == "--multiples") {
      o.multiples.clear();
      for (std::size_t at = 0; at < value.size();) {
        const std::size_t comma = value.find(',', at);
        o.multiples.push_back(std::atoi(value.substr(at, comma - at).c_str()));
        at = comma == std::string::npos ? value.size() : comma + 1;
      }
    } else {
      std::cerr << "takeover_bench: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (o.endpoint.empty() || o.partitions <= 0 || o.partition_customers <= 0) {
    std::cerr << "usage: takeover_bench --endpoint URL [--partitions P] [--partition-customers N] [--ids K] "
                 "[--item-bytes B] [--multiples 1,10,100]\n";
    return 2;
  }
  DynamoDbOptions table;
  table.endpoint = o.endpoint;
  table.region = "us-east-1";
  for (int multiple : o.multiples) {
    if (multiple < 1 || multiple > o.partitions) {
      std::cerr << "takeover_bench: a multiple is between 1 and the partition count\n";
      return 2;
    }
    measure(o, table, multiple);
  }
  return 0;
}
