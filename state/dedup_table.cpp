#include "state/dedup_table.hpp"

namespace streamscore {

namespace {
constexpr std::size_t kInitialCapacity = 64;
// Linear probing stays fast below ~75% load.
bool over_load(std::size_t size, std::size_t capacity) { return size * 4 > capacity * 3; }
}  // namespace

DedupTable::DedupTable() { rehash(kInitialCapacity); }

const DedupEntry* DedupTable::find(DedupKey key) const {
  key = normalize(key);
  for (std::size_t i = key.lo & mask_;; i = (i + 1) & mask_) {
    const DedupEntry& e = slots_[i];
    if (e.key == key) return &e;
    if (is_empty(e)) return nullptr;
  }
}

void DedupTable::place(const DedupEntry& entry) {
  std::size_t i = entry.key.lo & mask_;
  while (!is_empty(slots_[i])) i = (i + 1) & mask_;
  slots_[i] = entry;
}

void DedupTable::insert(DedupEntry entry) {
  entry.key = normalize(entry.key);
  if (over_load(size_ + 1, slots_.size())) rehash(slots_.size() * 2);
  place(entry);
  ++size_;
}

void DedupTable::upsert(DedupEntry entry) {
  entry.key = normalize(entry.key);
  for (std::size_t i = entry.key.lo & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == entry.key) {
      slots_[i] = entry;
      return;
    }
    if (is_empty(slots_[i])) break;
  }
  insert(entry);
}

void DedupTable::rehash(std::size_t new_capacity) {
  std::vector<DedupEntry> old;
  old.swap(slots_);
  slots_.assign(new_capacity, DedupEntry{});
  mask_ = new_capacity - 1;
  for (const auto& e : old)
    if (!is_empty(e)) place(e);
}

std::size_t DedupTable::prune_older_than(int64_t threshold_ns) {
  // Rebuilding is simpler than deletion under linear probing, and pruning runs
  // rarely (about once per simulated day), so its cost is spread thin.
  std::vector<DedupEntry> old;
  old.swap(slots_);
  std::size_t kept = 0;
  for (const auto& e : old)
    if (!is_empty(e) && e.time_ns >= threshold_ns) ++kept;
  std::size_t capacity = kInitialCapacity;
  while (over_load(kept, capacity) || capacity < kept * 2) capacity *= 2;
  slots_.assign(capacity, DedupEntry{});
  mask_ = capacity - 1;
  for (const auto& e : old)
    if (!is_empty(e) && e.time_ns >= threshold_ns) place(e);
  std::size_t removed = size_ - kept;
  size_ = kept;
  return removed;
}

void DedupTable::clear() {
  slots_.assign(kInitialCapacity, DedupEntry{});
  mask_ = kInitialCapacity - 1;
  size_ = 0;
}

}  // namespace streamscore
