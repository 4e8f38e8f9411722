// Open-addressing hash table of seen event ids (one per shard). Keys are 128-bit
// XXH3 hashes of (customer, event_id); entries remember a 32-bit fingerprint of the
// event (to tell conflicting duplicates apart), its event time (ids expire by event
// time) and the owning customer's slot (ids are persisted with the customer's id).
//
// Expired ids are swept in place, and only when the table would otherwise grow: no
// allocation, no periodic full rebuild, and the size stays bounded by the ids still
// inside the horizon.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "state/event.hpp"

namespace streamscore {

struct DedupEntry {
  // The top bit of `customer`: seen since the last checkpoint, not persisted yet.
  static constexpr uint32_t kUnsaved = 1u << 31;

  DedupKey key;  // {0,0} marks an empty slot
  int64_t time_ns = 0;
  uint32_t fingerprint = 0;
  uint32_t customer = 0;  // the owning customer's slot, | kUnsaved

  uint32_t slot() const { return customer & ~kUnsaved; }
};
static_assert(sizeof(DedupEntry) == 32, "dedup entries are packed to 32 bytes");

class DedupTable {
 public:
  DedupTable();

  const DedupEntry* find(DedupKey key) const;
  // A hint: the slot `key` starts probing at will be needed soon.
  void prefetch(DedupKey key) const { __builtin_prefetch(&slots_[normalize(key).lo & mask_]); }
  // Inserts an entry whose key is not in the table yet.
  void insert(DedupEntry entry);
  // Inserts, or replaces the entry with the same key (an id forgotten and seen anew).
  void upsert(DedupEntry entry);
  // Ids with an event time before this may be dropped at the next sweep.
  void set_forget_before(int64_t threshold_ns) { forget_before_ = threshold_ns; }
  // Drops ids with an event time before `threshold_ns` now; returns how many.
  std::size_t prune_older_than(int64_t threshold_ns);
  // Empties the table, keeping its capacity.
  void clear();
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

  template <class F>
  void for_each(F&& fn) const {
    for (const auto& e : slots_)
      if (!is_empty(e)) fn(e);
  }

  // Calls `fn` for every entry marked kUnsaved, and clears the mark.
  template <class F>
  void take_unsaved(F&& fn) {
    for (auto& e : slots_)
      if (!is_empty(e) && (e.customer & DedupEntry::kUnsaved)) {
        e.customer &= ~DedupEntry::kUnsaved;
        fn(e);
      }
  }

 private:
  static DedupKey normalize(DedupKey k) {  // keep {0,0} free as the empty marker
    if (k.lo == 0 && k.hi == 0) k.hi = 1;
    return k;
  }
  static bool is_empty(const DedupEntry& e) { return e.key.lo == 0 && e.key.hi == 0; }
  void make_room();
  void rehash(std::size_t new_capacity);
  void place(const DedupEntry& entry);

  std::vector<DedupEntry> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
  int64_t forget_before_ = std::numeric_limits<int64_t>::min();
  int64_t swept_before_ = std::numeric_limits<int64_t>::min();
};

}  // namespace streamscore
