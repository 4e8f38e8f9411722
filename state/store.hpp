// The state store: table `customer_feature_state`, one item per customer, written
// with optimistic locking (contract, section 4). Backends: memory (tests) and RocksDB.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.hpp"

namespace streamscore {

// One stored item. `item_json` is the public item exactly as `export` prints it (one
// JSON object, no newline); `internal` is the engine's own data needed to continue
// (5-minute buckets, dedup ids), opaque to the store. A customer whose events have
// not reached a tick yet is stored with version 0 and an empty `item_json`: it has no
// public item yet, and `export` skips it.
struct ItemRecord {
  std::string pk;        // "CUSTOMER#<customer_id>", raw bytes (not JSON-escaped)
  int64_t version = 0;   // >= 0; 0 = no public item yet
  std::string item_json;
  std::string internal;
};

// Write `record` only if the stored version equals `expected_version` (an absent
// item counts as version 0). `record.version` must not be below `expected_version`.
struct ConditionalPut {
  ItemRecord record;
  int64_t expected_version = 0;
};

// The rule every backend applies to a batch before writing it: each put names a PK, and
// never moves the version back. A flush may carry several ticks' versions at once (so it
// may skip some), or only new internal data under the same version.
Status validate_puts(const std::vector<ConditionalPut>& puts);

class StateStore {
 public:
  virtual ~StateStore() = default;

  // NotFound when there is no item with this PK.
  virtual Status get(std::string_view pk, ItemRecord* out) = 0;

  // Applies, atomically together, every put whose condition holds. The indexes of
  // the puts whose condition failed (not applied) go to `conflicts` (cleared first).
  // Returns ok even when some puts conflicted; an error means nothing was applied.
  virtual Status put_batch(const std::vector<ConditionalPut>& puts,
                           std::vector<std::size_t>* conflicts) = 0;

  // Calls `fn` for every item in PK order (bytewise); stops early when `fn` returns false.
  virtual Status scan(const std::function<bool(const ItemRecord&)>& fn) = 0;

  // Small engine metadata (clock position, source position, format version).
  virtual Status put_meta(std::string_view key, std::string_view value) = 0;
  virtual Status get_meta(std::string_view key, std::string* value) = 0;  // NotFound if absent

  // Removes every item and every meta key.
  virtual Status clear() = 0;

  // Makes everything written so far durable (fsync for RocksDB, no-op in memory).
  virtual Status sync() = 0;
};

std::unique_ptr<StateStore> make_memory_store();

struct RocksDbOptions {
  // For rebuilding a whole state at once (`replay`): writes skip the write-ahead log
  // and sync() flushes the memtables to disk instead. A crash mid-way loses the
  // rebuild, which is simply run again.
  bool bulk_load = false;
};

// Opens (creating if needed) a RocksDB store in `dir`.
Status open_rocksdb_store(const std::string& dir, std::unique_ptr<StateStore>* out,
                          RocksDbOptions options = {});

}  // namespace streamscore
