// The committed public items in memory, for GET /v1/customers/{id}.
//
// Why: a lookup that reads the store shares the store's locks with ingestion (RocksDB's
// DB mutex when its SuperVersion moves, the block cache's shard mutexes, the allocator's
// arena of the thread that wrote the block). The HTTP thread runs at real-time priority;
// the lock's holder is an ingesting thread at nice 10 that other work can keep off a
// core for milliseconds, and the request waits all that time (priority inversion,
// BENCHMARKS.md, HTTP serving). Here a lookup takes one of many small stripe locks that
// a writer holds only to swap a string, so it never waits on ingestion's work.
//
// ServingStore wraps the store the engine writes to and keeps ServedItems equal to the
// store's public items: every item a successful commit writes, and every item a scan
// reads (the engine's load at start). So it answers exactly what the store holds, with
// no extra read of the store. That holds only while this process is the store's one
// writer: RocksDB (its LOCK file keeps other processes out) and memory. A DynamoDB
// table can have other writers (a re-scorer, other daemons): lookups read the table.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "state/store.hpp"

namespace streamscore {

class ServedItems {
 public:
  // Keeps `item_json` as the customer's item unless a newer version is already there.
  // The same version may bring another item, as the store allows a put under the stored
  // version: the served item follows what the store holds, whoever wrote it. Ignores
  // version 0 and an empty item (no public item yet). The copy and the allocation
  // happen outside the stripe's lock, which is held only to look up and swap.
  void offer(std::string_view customer_id, int64_t version, std::string_view item_json);

  // Copies the customer's item into `item_json`; false when there is none.
  bool get(std::string_view customer_id, std::string* item_json) const;

  void clear();

  uint64_t items() const { return items_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }  // item JSON only

 private:
  struct Entry {
    int64_t version = 0;
    std::string json;
  };
  using Map = std::unordered_map<std::string, Entry>;
  struct Stripe {
    mutable std::mutex mu;
    Map map;
  };
  static constexpr std::size_t kStripes = 1024;

  Stripe& stripe_of(std::string_view customer_id) const;

  std::unique_ptr<std::array<Stripe, kStripes>> stripes_ = std::make_unique<std::array<Stripe, kStripes>>();
  std::atomic<uint64_t> items_{0};
  std::atomic<uint64_t> bytes_{0};
};

// A StateStore that forwards everything to `inner` and keeps `items()` equal to the
// stored public items (see above).
class ServingStore final : public StateStore {
 public:
  explicit ServingStore(std::unique_ptr<StateStore> inner) : inner_(std::move(inner)) {}

  const ServedItems& items() const { return items_; }

  Status get(std::string_view pk, ItemRecord* out) override { return inner_->get(pk, out); }
  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override;
  // A bulk commit's items are published once the store took them, as a commit's are.
  Status open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) override;
  bool takes_bulk_parts() const override { return inner_->takes_bulk_parts(); }
  Status ingest_bulk_parts(const WriteSet& with) override;
  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override { return inner_->scan_dedup(fn); }
  Status scan(const std::function<bool(const ItemRecord&)>& fn) override;
  Status scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                         const std::function<bool(const DedupRecord&)>& dedup_fn) override;
  Status put_meta(std::string_view key, std::string_view value) override { return inner_->put_meta(key, value); }
  Status get_meta(std::string_view key, std::string* value) override { return inner_->get_meta(key, value); }
  Status clear() override;
  Status recover_other_writers() override { return inner_->recover_other_writers(); }
  Status take_over(const std::vector<std::string>& partitions) override { return inner_->take_over(partitions); }
  Status sync() override { return inner_->sync(); }
  bool local_scans() const override { return inner_->local_scans(); }
  std::vector<Counter> counters() const override { return inner_->counters(); }

 private:
  void offer(const ItemRecord& record);
  friend class ServedBulkPart;
  void add_pending(std::vector<ItemRecord>&& items);

  std::unique_ptr<StateStore> inner_;
  ServedItems items_;
  std::mutex pending_mu_;            // the parts finish on the shards' threads
  std::vector<ItemRecord> pending_;  // finished parts' items, published at ingestion
};

}  // namespace streamscore
