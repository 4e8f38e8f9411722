// In-memory StateStore (tests, dry runs): a std::map guarded by one mutex, because
// several shard actors call the same store from different threads.

#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/store.hpp"

namespace streamscore {

namespace {

struct StoredItem {
  int64_t version = 0;
  std::string item_json;
  std::string internal;
};

// std::less<> gives heterogeneous lookup by string_view. std::string compares with
// char_traits<char>, which orders like memcmp (unsigned bytes): the same order as
// RocksDB's bytewise comparator, so both backends scan identically.
using ItemMap = std::map<std::string, StoredItem, std::less<>>;
using StringMap = std::map<std::string, std::string, std::less<>>;

// Runs `fn` and turns any exception (bad_alloc, a throwing scan callback) into a
// Status, so none escapes through the StateStore interface.
template <class F>
Status guarded(const char* what, F&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::io_error(std::string("memory store ") + what + ": " + e.what());
  } catch (...) {
    return Status::io_error(std::string("memory store ") + what + ": unknown exception");
  }
}

class MemoryStore final : public StateStore {
 public:
  Status get(std::string_view pk, ItemRecord* out) override {
    return guarded("get", [&] { return get_locked(pk, out); });
  }

  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override {
    return guarded("commit", [&] { return commit_locked(writes, conflicts); });
  }

  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override {
    return guarded("scan_dedup", [&] {
      std::vector<DedupRecord> records;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [key, data] : dedup_) {
          DedupRecord r;
          parse_dedup_record_key(key, &r);
          r.data = data;
          records.push_back(std::move(r));
        }
      }
      for (const DedupRecord& r : records)
        if (!fn(r)) break;
      return Status::ok();
    });
  }

  Status scan(const std::function<bool(const ItemRecord&)>& fn) override {
    return guarded("scan", [&] { return scan_in_chunks(fn); });
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    return guarded("put_meta", [&] {
      std::lock_guard<std::mutex> lock(mu_);
      meta_.insert_or_assign(std::string(key), std::string(value));
      return Status::ok();
    });
  }

  Status get_meta(std::string_view key, std::string* value) override {
    return guarded("get_meta", [&] {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = meta_.find(key);
      if (it == meta_.end()) return Status::not_found("meta key " + std::string(key));
      *value = it->second;
      return Status::ok();
    });
  }

  Status clear() override {
    std::lock_guard<std::mutex> lock(mu_);
    items_.clear();
    meta_.clear();
    dedup_.clear();
    return Status::ok();
  }

  Status sync() override { return Status::ok(); }  // nothing is durable anyway

 private:
  Status get_locked(std::string_view pk, ItemRecord* out) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(pk);
    if (it == items_.end()) return Status::not_found("item " + std::string(pk));
    fill(it, out);
    return Status::ok();
  }

  Status commit_locked(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
    const std::vector<ConditionalPut>& puts = writes.puts;
    conflicts->clear();
    Status s = validate_puts(puts);
    if (!s.is_ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    // Check sequentially, as if applied one after another: a later put of the same
    // PK sees the version written by an earlier passing put of this batch.
    ItemMap staged;  // passing puts; a later put of a PK replaces an earlier one
    for (std::size_t i = 0; i < puts.size(); ++i) {
      const ItemRecord& r = puts[i].record;
      auto sit = staged.find(r.pk);
      int64_t current = sit != staged.end() ? sit->second.version : stored_version(r.pk);
      if (current != puts[i].expected_version) {
        conflicts->push_back(i);
        continue;
      }
      staged.insert_or_assign(r.pk, StoredItem{r.version, r.item_json, r.internal});
    }
    if (!conflicts->empty()) return Status::ok();
    StringMap staged_meta, staged_dedup;
    for (const MetaPut& m : writes.meta) staged_meta.insert_or_assign(m.key, m.value);
    for (const DedupRecord& r : writes.dedup) staged_dedup.insert_or_assign(dedup_record_key(r), r.data);
    std::string forget_below;  // empty: nothing to forget
    if (writes.forget_dedup_before_day != kNoDay) {
      DedupRecord bound;
      bound.day = writes.forget_dedup_before_day;
      forget_below = dedup_record_key(bound);
    }
    // All copying happened while staging; moving nodes and swapping strings cannot
    // throw, so a batch is applied entirely or (on bad_alloc while staging) not at all.
    move_into(&staged, &items_);
    move_into(&staged_meta, &meta_);
    dedup_.erase(dedup_.begin(), dedup_.lower_bound(forget_below));
    move_into(&staged_dedup, &dedup_);
    return Status::ok();
  }

  int64_t stored_version(std::string_view pk) const {
    auto it = items_.find(pk);
    return it == items_.end() ? 0 : it->second.version;
  }

  template <class Map>
  static void move_into(Map* staged, Map* target) {
    while (!staged->empty()) {
      auto node = staged->extract(staged->begin());
      auto it = target->find(node.key());
      if (it == target->end()) {
        target->insert(std::move(node));
      } else {
        std::swap(it->second, node.mapped());
      }
    }
  }

  // Copies a few items at a time under the lock and calls `fn` without it, so `fn`
  // may call back into the store (no self-deadlock) and writers are not blocked for a
  // whole scan. Unlike RocksDB's iterator this is not a point-in-time snapshot: items
  // written during the scan may or may not be seen. Each PK is still visited once, in order.
  Status scan_in_chunks(const std::function<bool(const ItemRecord&)>& fn) {
    constexpr std::size_t kChunk = 256;
    std::string after;  // last PK handed out
    bool first = true;
    std::vector<ItemRecord> chunk;
    for (;;) {
      chunk.clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = first ? items_.begin() : items_.upper_bound(after);
        for (; it != items_.end() && chunk.size() < kChunk; ++it) {
          chunk.emplace_back();
          fill(it, &chunk.back());
        }
      }
      if (chunk.empty()) return Status::ok();
      for (const ItemRecord& r : chunk)
        if (!fn(r)) return Status::ok();
      after = chunk.back().pk;
      first = false;
    }
  }

  static void fill(ItemMap::const_iterator it, ItemRecord* out) {
    out->pk = it->first;
    out->version = it->second.version;
    out->item_json = it->second.item_json;
    out->internal = it->second.internal;
  }

  std::mutex mu_;
  ItemMap items_;
  StringMap meta_;
  StringMap dedup_;  // dedup_record_key -> data
};

}  // namespace

std::unique_ptr<StateStore> make_memory_store() {
  return std::make_unique<MemoryStore>();
}

}  // namespace streamscore
