// Open-addressing hash table of seen event ids (one per shard). Keys are 128-bit
// XXH3 hashes of (customer, event_id); entries remember the event's fingerprint (to
// tell conflicting duplicates apart), its event time (ids expire by event time) and
// the owning customer's slot (to persist ids with the customer's item).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "state/event.hpp"

namespace streamscore {

struct DedupEntry {
  DedupKey key;               // {0,0} marks an empty slot
  uint64_t fingerprint = 0;
  int64_t time_ns = 0;
  uint32_t customer = 0;
};

class DedupTable {
 public:
  DedupTable();

  const DedupEntry* find(DedupKey key) const;
  // Inserts an entry whose key is not in the table yet.
  void insert(DedupEntry entry);
  // Inserts, or replaces the entry with the same key (an id forgotten and seen anew).
  void upsert(DedupEntry entry);
  // Forgets ids whose event time is before `threshold_ns`; returns how many.
  std::size_t prune_older_than(int64_t threshold_ns);
  void clear();
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

  template <class F>
  void for_each(F&& fn) const {
    for (const auto& e : slots_)
      if (!is_empty(e)) fn(e);
  }

 private:
  static DedupKey normalize(DedupKey k) {  // keep {0,0} free as the empty marker
    if (k.lo == 0 && k.hi == 0) k.hi = 1;
    return k;
  }
  static bool is_empty(const DedupEntry& e) { return e.key.lo == 0 && e.key.hi == 0; }
  void rehash(std::size_t new_capacity);
  void place(const DedupEntry& entry);

  std::vector<DedupEntry> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace streamscore
