#include "state/served_items.hpp"

#include <xxhash.h>

#include <utility>

namespace streamscore {

ServedItems::Stripe& ServedItems::stripe_of(std::string_view customer_id) const {
  return (*stripes_)[XXH3_64bits(customer_id.data(), customer_id.size()) % kStripes];
}

void ServedItems::offer(std::string_view customer_id, int64_t version, std::string item_json) {
  if (version <= 0 || item_json.empty()) return;
  const auto size = static_cast<int64_t>(item_json.size());
  Stripe& stripe = stripe_of(customer_id);
  std::string key(customer_id), replaced;  // `replaced` is freed after the lock is released
  {
    std::lock_guard<std::mutex> lock(stripe.mu);
    auto it = stripe.map.find(key);
    if (it == stripe.map.end()) {
      stripe.map.emplace(std::move(key), Entry{version, std::move(item_json)});
      items_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(size, std::memory_order_relaxed);
      return;
    }
    if (it->second.version >= version) return;
    // Unsigned wrap-around adds a shrink correctly.
    bytes_.fetch_add(static_cast<uint64_t>(size - static_cast<int64_t>(it->second.json.size())),
                     std::memory_order_relaxed);
    replaced = std::exchange(it->second.json, std::move(item_json));
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
    decltype(stripe.map) dropped;
    {
      std::lock_guard<std::mutex> lock(stripe.mu);
      dropped.swap(stripe.map);
    }
  }
  items_.store(0, std::memory_order_relaxed);
  bytes_.store(0, std::memory_order_relaxed);
}

void ServingStore::offer(const ItemRecord& record) {
  const std::string_view pk = record.pk;
  if (pk.substr(0, kCustomerPrefix.size()) != kCustomerPrefix) return;
  items_.offer(pk.substr(kCustomerPrefix.size()), record.version, record.item_json);
}

Status ServingStore::commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
  Status s = inner_->commit(writes, conflicts);
  // Published only once the store holds it: a refused commit (conflicts) wrote nothing.
  if (!s.is_ok() || (conflicts != nullptr && !conflicts->empty())) return s;
  for (const ConditionalPut& put : writes.puts) offer(put.record);
  return s;
}

Status ServingStore::scan(const std::function<bool(const ItemRecord&)>& fn) {
  return inner_->scan([&](const ItemRecord& record) {
    offer(record);
    return fn(record);
  });
}

Status ServingStore::clear() {
  Status s = inner_->clear();
  items_.clear();
  return s;
}

}  // namespace streamscore
