#include "state/served_items.hpp"

#include <xxhash.h>

#include <utility>

namespace streamscore {

ServedItems::Stripe& ServedItems::stripe_of(std::string_view customer_id) const {
  return (*stripes_)[XXH3_64bits(customer_id.data(), customer_id.size()) % kStripes];
}

void ServedItems::offer(std::string_view customer_id, int64_t version, std::string_view item_json) {
  if (version <= 0 || item_json.empty()) return;
  Stripe& stripe = stripe_of(customer_id);
  const std::string key(customer_id);
  {
    std::lock_guard<std::mutex> lock(stripe.mu);
    auto it = stripe.map.find(key);
    // Nothing to copy: an older version, or the item already held (a load's workers
    // each read every item).
    if (it != stripe.map.end() &&
        (version < it->second.version || (version == it->second.version && it->second.json == item_json)))
      return;
  }
  // A one-entry map holds the new node, built (allocated, copied) without the lock.
  Map single;
  single.emplace(key, Entry{version, std::string(item_json)});
  Map::node_type node = single.extract(single.begin());
  std::string replaced;  // freed after the lock is released, like `node` when not inserted
  {
    std::lock_guard<std::mutex> lock(stripe.mu);
    auto it = stripe.map.find(key);
    if (it == stripe.map.end()) {
      stripe.map.insert(std::move(node));
      items_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(item_json.size(), std::memory_order_relaxed);
      return;
    }
    if (version < it->second.version) return;
    // Unsigned wrap-around adds a shrink correctly.
    bytes_.fetch_add(item_json.size() - it->second.json.size(), std::memory_order_relaxed);
    replaced = std::exchange(it->second.json, std::move(node.mapped().json));
    it->second.version = version;
  }
}

bool ServedItems::get(std::string_view customer_id, std::string* item_json) const {
  const Stripe& stripe = stripe_of(customer_id);
  const std::string key(customer_id);  // short ids stay in the string's own buffer
  std::lock_guard<std::mutex> lock(stripe.mu);
  auto it = stripe.map.find(key);
  if (it == stripe.map.end()) return false;
  item_json->assign(it->second.json);
  return true;
}

void ServedItems::clear() {
  for (Stripe& stripe : *stripes_) {
    Map dropped;
    {
      std::lock_guard<std::mutex> lock(stripe.mu);
      dropped.swap(stripe.map);
    }
    uint64_t bytes = 0;
    for (const auto& [id, entry] : dropped) bytes += entry.json.size();
    items_.fetch_sub(dropped.size(), std::memory_order_relaxed);
    bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }
}

void ServingStore::offer(const ItemRecord& record) {
  const std::string_view customer_id = customer_id_of_pk(record.pk);
  if (customer_id.empty()) return;  // not a customer's item
  items_.offer(customer_id, record.version, record.item_json);
}

Status ServingStore::commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
  Status s = inner_->commit(writes, conflicts);
  // Published only once the store holds it: a refused commit (conflicts) wrote nothing.
  if (!s.is_ok() || (conflicts != nullptr && !conflicts->empty())) return s;
  for (const ConditionalPut& put : writes.puts) offer(put.record);
  return s;
}

// A part of the inner store that keeps its items' public JSON until the store takes them.
class ServedBulkPart final : public BulkPart {
 public:
  ServedBulkPart(ServingStore& store, std::unique_ptr<BulkPart> inner) : store_(store), inner_(std::move(inner)) {}

  Status add_puts(const std::vector<ConditionalPut>& puts) override {
    Status s = inner_->add_puts(puts);
    if (!s.is_ok()) return s;
    for (const ConditionalPut& put : puts) {
      if (put.record.item_json.empty()) continue;  // no public item yet: nothing to serve
      ItemRecord item;
      item.pk = put.record.pk;
      item.version = put.record.version;
      item.item_json = put.record.item_json;
      items_.push_back(std::move(item));
    }
    return s;
  }
  Status add_dedup(const std::vector<DedupRecord>& records) override { return inner_->add_dedup(records); }
  Status finish() override {
    Status s = inner_->finish();
    if (s.is_ok()) store_.add_pending(std::move(items_));
    return s;
  }

 private:
  ServingStore& store_;
  std::unique_ptr<BulkPart> inner_;
  std::vector<ItemRecord> items_;
};

Status ServingStore::open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) {
  std::unique_ptr<BulkPart> inner;
  Status s = inner_->open_bulk_part(part, &inner);
  if (!s.is_ok() || !inner) {
    *out = std::move(inner);
    return s;
  }
  *out = std::make_unique<ServedBulkPart>(*this, std::move(inner));
  return s;
}

void ServingStore::add_pending(std::vector<ItemRecord>&& items) {
  std::lock_guard<std::mutex> lock(pending_mu_);
  pending_.insert(pending_.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
}

Status ServingStore::ingest_bulk_parts(const WriteSet& with) {
  Status s = inner_->ingest_bulk_parts(with);
  std::vector<ItemRecord> pending;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending.swap(pending_);
  }
  if (s.is_ok())  // a refused ingestion wrote nothing: its items are not served
    for (const ItemRecord& item : pending) offer(item);
  return s;
}

Status ServingStore::scan(const std::function<bool(const ItemRecord&)>& fn) {
  return inner_->scan([&](const ItemRecord& record) {
    offer(record);
    return fn(record);
  });
}

Status ServingStore::scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                                     const std::function<bool(const DedupRecord&)>& dedup_fn) {
  return inner_->scan_partitions(
      scope,
      [&](const ItemRecord& record) {
        offer(record);
        return item_fn(record);
      },
      dedup_fn);
}

Status ServingStore::clear() {
  Status s = inner_->clear();
  items_.clear();
  return s;
}

}  // namespace streamscore
