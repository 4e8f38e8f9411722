#include "state/dedup_table.hpp"

namespace streamscore {

namespace {
constexpr std::size_t kInitialCapacity = 64;
// Linear probing stays fast below ~75% load.
bool over_load(std::size_t size, std::size_t capacity) {
  return size * 4 > capacity * 3;
}
}  // namespace

DedupTable::DedupTable() {
  rehash(kInitialCapacity);
}

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

// Before growing, sweep ids that are forgotten anyway; grow only if the table stays
// more than half full, so that the next sweep is far away.
void DedupTable::make_room() {
  if (forget_before_ > swept_before_) prune_older_than(forget_before_);
  if (over_load(size_ + 1, slots_.size()) || size_ * 2 > slots_.size()) rehash(slots_.size() * 2);
}

void DedupTable::insert(DedupEntry entry) {
  entry.key = normalize(entry.key);
  if (over_load(size_ + 1, slots_.size())) make_room();
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
    if (is_empty(slots_[i])) {
      if (over_load(size_ + 1, slots_.size())) break;  // make room first, then insert
      slots_[i] = entry;                               // the first empty slot of the chain: where insert would put it
      ++size_;
      return;
    }
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
  swept_before_ = threshold_ns;
  // Start right after a slot that is empty before the sweep: no probe chain crosses it.
  std::size_t start = 0;
  while (!is_empty(slots_[start])) ++start;
  std::size_t removed = 0;
  for (auto& e : slots_) {
    if (!is_empty(e) && e.time_ns < threshold_ns) {
      e = DedupEntry{};
      ++removed;
    }
  }
  size_ -= removed;
  if (removed == 0) return 0;
  // Re-seat the survivors in probe order, so that every chain is unbroken again.
  for (std::size_t k = 1; k <= slots_.size(); ++k) {
    const std::size_t i = (start + k) & mask_;
    if (is_empty(slots_[i])) continue;
    const DedupEntry e = slots_[i];
    slots_[i] = DedupEntry{};
    place(e);
  }
  return removed;
}

void DedupTable::clear() {
  if (size_ == 0) return;
  std::fill(slots_.begin(), slots_.end(), DedupEntry{});
  size_ = 0;
}

}  // namespace streamscore
