// The state store: table `customer_feature_state`, one item per customer, written
// with optimistic locking (contract, section 4). Backends: memory (tests) and RocksDB.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

// Items are keyed by PK "CUSTOMER#<customer_id>" (contract, section 4).
inline constexpr std::string_view kCustomerPrefix = "CUSTOMER#";
inline std::string customer_pk(std::string_view customer_id) {
  std::string pk(kCustomerPrefix);
  pk.append(customer_id);
  return pk;
}
// The customer_id in a PK that customer_pk() made; empty for any other key.
inline std::string_view customer_id_of_pk(std::string_view pk) {
  return pk.substr(0, kCustomerPrefix.size()) == kCustomerPrefix ? pk.substr(kCustomerPrefix.size())
                                                                 : std::string_view();
}

// One stored item. `item_json` is the public item exactly as `export` prints it (one
// JSON object, no newline); `internal` is the engine's own data needed to continue
// (5-minute buckets, dedup ids), opaque to the store. A customer whose events have
// not reached a tick yet is stored with version 0 and an empty `item_json`: it has no
// public item yet, and `export` skips it.
struct ItemRecord {
  std::string pk;       // "CUSTOMER#<customer_id>", raw bytes (not JSON-escaped)
  int64_t version = 0;  // >= 0; 0 = no public item yet
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

// A small engine metadata value written together with items (clock and source
// positions of a checkpoint).
struct MetaPut {
  std::string key;
  std::string value;
};

// New dedup ids, persisted apart from the items so that a checkpoint writes only the
// ids seen since the last one (not every id of every touched customer again). Keyed
// by the UTC day of the ids' event times, so that whole days are forgotten at once
// when they leave the horizon. `data` is opaque to the store (ShardState encodes it).
struct DedupRecord {
  int64_t day = 0;        // event time / 1 day
  uint64_t sequence = 0;  // the checkpoint that wrote it
  uint32_t part = 0;      // the shard that wrote it
  std::string data;
};

constexpr int64_t kNoDay = std::numeric_limits<int64_t>::min();

// Everything one commit writes, atomically.
struct WriteSet {
  std::vector<ConditionalPut> puts;
  std::vector<MetaPut> meta;
  std::vector<DedupRecord> dedup;
  int64_t forget_dedup_before_day = kNoDay;  // drop dedup records of earlier days
  // A table indexed by source partition (DynamoDB, section 21): partition -> day; every
  // writer's records of earlier days in that partition's index are dropped. Only the
  // holder of a partition sends its bound, from that partition's clock.
  std::map<int32_t, int64_t> forget_partition_dedup_before_day;
};

// The customers of some source partitions: those Kafka's default partitioner (murmur2 of
// the customer_id) puts into `partitions` of a topic of `count` partitions.
struct PartitionScope {
  int32_t count = 0;
  std::vector<int32_t> partitions;
};

// One writer's share of a bulk commit (a shard's, at the end of `replay` or of a `run`),
// built apart from the store in parallel with the other parts: nothing of it is visible
// until StateStore::ingest_bulk_parts. Puts come in PK order, dedup records in (day,
// sequence, part) order. A rebuild's store was cleared, so there every put expects
// version 0; a daemon's puts expect the versions it committed before.
class BulkPart {
 public:
  virtual ~BulkPart() = default;
  virtual Status add_puts(const std::vector<ConditionalPut>& puts) = 0;
  virtual Status add_dedup(const std::vector<DedupRecord>& records) = 0;
  // The part is complete: ingest_bulk_parts takes it.
  virtual Status finish() = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Bulk commits: a store that can build parts apart and take them at once (RocksDB: SST
  // files, ingested) gives one part per writer; one that cannot leaves `out` empty, and
  // the writers commit() as usual. `part` names the writer.
  virtual Status open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) {
    (void)part;
    out->reset();
    return Status::ok();
  }
  // Whether open_bulk_part gives parts, so that a commit can go through them.
  virtual bool takes_bulk_parts() const { return false; }
  // Makes every finished part visible together with `with` (its meta and forget bounds;
  // no puts, no dedup records), all or nothing, even across a crash: one commit. Checks
  // the parts' expected versions first, as commit() would; when one fails, nothing is
  // applied, the parts are dropped, and the status is a conflict naming the item.
  virtual Status ingest_bulk_parts(const WriteSet& with) {
    (void)with;
    return Status::invalid_argument("this store takes no bulk parts");
  }

  // NotFound when there is no item with this PK.
  virtual Status get(std::string_view pk, ItemRecord* out) = 0;

  // All or nothing: when every put's condition holds, applies the whole write set
  // atomically (one RocksDB WriteBatch). Otherwise applies nothing and lists the
  // indexes of the failing puts in `conflicts` (cleared first); the status is still ok,
  // so that the caller can re-read those items and retry. An error means nothing was
  // applied. Conditions are checked as if the puts were applied one after another.
  virtual Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) = 0;
  Status put_batch(const std::vector<ConditionalPut>& puts, std::vector<std::size_t>* conflicts) {
    WriteSet writes;
    writes.puts = puts;
    return commit(writes, conflicts);
  }

  // Calls `fn` for every dedup record, by day, then sequence, then part.
  virtual Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) = 0;

  // Calls `fn` for every item in PK order (bytewise); stops early when `fn` returns false.
  virtual Status scan(const std::function<bool(const ItemRecord&)>& fn) = 0;

  // Calls `item_fn` for the stored items, then `dedup_fn` for the dedup records, of at
  // least the customers of `scope` (others may come too: the caller filters). A store that
  // keeps them by partition (DynamoDB, section 21) reads only theirs; the others scan all.
  virtual Status scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                                 const std::function<bool(const DedupRecord&)>& dedup_fn) {
    (void)scope;
    Status s = scan(item_fn);
    return s.is_ok() ? scan_dedup(dedup_fn) : s;
  }

  // Small engine metadata (clock position, source position, format version). A store
  // shared by several writers (DynamoDB) keeps each writer's meta apart, except the keys
  // of is_table_meta(), which describe the table and are one for all.
  virtual Status put_meta(std::string_view key, std::string_view value) = 0;
  virtual Status get_meta(std::string_view key, std::string* value) = 0;  // NotFound if absent

  // Removes every item, dedup record and meta key.
  virtual Status clear() = 0;

  // Finishes the commits other writers of a shared store left half-applied (a daemon
  // killed between its commit point and the end of its apply), so that reads see them.
  // Called before taking over another writer's customers. Nothing to do for one writer.
  virtual Status recover_other_writers() { return Status::ok(); }

  // A shared store's takeover of partitions (their offset keys, "partition.<topic>.<p>"):
  // this writer claims them under a new lease, and fences every writer that held them
  // (its commits are refused from then on: Status::fenced), so that nothing it had not
  // committed yet can land over what the new owner reads. Called before
  // recover_other_writers() and the loads. With no partitions: a fresh lease that holds
  // none (a fenced writer that dropped its work). Nothing to do for one writer.
  virtual Status take_over(const std::vector<std::string>& partitions) {
    (void)partitions;
    return Status::ok();
  }

  // Makes everything written so far durable (fsync for RocksDB, no-op in memory).
  virtual Status sync() = 0;

  // Whether a full scan is cheap enough for several loaders to each read the whole
  // store (local backends). A remote one (DynamoDB: a table Scan costs capacity) is
  // scanned once.
  virtual bool local_scans() const { return true; }

  // Counters of the backend's own work, for /metrics (DynamoDB: requests, retries,
  // throttles...). The local backends have none.
  struct Counter {
    const char* name;  // a Prometheus metric name
    const char* help;
    uint64_t value;
  };
  virtual std::vector<Counter> counters() const { return {}; }
};

// Meta keys that describe the table rather than one writer's progress: the state format,
// the settings and feature definitions it was built with, a rebuild's session
// (actors/engine.hpp names them), and the Kafka partitions' offsets of a shared table
// ("partition.<topic>.<p>", which move with the partitions between the daemons of a group).
bool is_table_meta(std::string_view key);

// How far a conflict moved a customer's versions: another writer wrote `delta`
// versions since this writer read it.
struct VersionShift {
  std::string pk;
  int64_t delta = 0;
};

// Commits `writes` (StateStore::commit); when some puts conflict,
// re-reads those items and moves each put on top of the version found (its own
// versions keep counting from there, and the `version` inside item_json follows),
// then commits again. The writer that owns the features (a shard) keeps its content:
// the retry is from the fresh version, and no write is lost, because every write of
// either writer is a version of its own. Moves are appended to `shifts` (the caller
// shifts its in-memory versions by them); retried conflicts are added to `*conflicts`.
Status commit_with_retry(StateStore& store, WriteSet* writes, std::vector<VersionShift>* shifts, uint64_t* conflicts);

// Moves `put` on top of `stored_version` (what another writer left): the expected version
// becomes the stored one, and the put's own version (and the `version` inside its
// item_json) moves by the same `delta`. The retry step of commit_with_retry, also used by
// stores that must rebase a put themselves (DynamoDB's redo, see dynamodb_store.hpp).
Status rebase_put(ConditionalPut* put, int64_t stored_version, int64_t* delta);

// The byte key of a dedup record: big-endian fields, the day's sign bit flipped, so
// that bytewise order is (day, sequence, part) order. Both backends use it.
std::string dedup_record_key(const DedupRecord& r);
bool parse_dedup_record_key(std::string_view key, DedupRecord* r);

// Optimistic read-modify-write of one item: reads it (absent = version 0), lets
// `change` produce the new record from the fresh one, writes it conditionally on the
// version read, and on a conflict starts again from a fresh read. `change` returns
// false to give up without writing. Conflicts retried are added to `*conflicts`.
Status update_item(StateStore& store, const std::string& pk,
                   const std::function<bool(const ItemRecord* current, ItemRecord* next)>& change,
                   uint64_t* conflicts = nullptr);

std::unique_ptr<StateStore> make_memory_store();

struct RocksDbOptions {
  // For rebuilding a whole state at once (`replay`): writes skip the write-ahead log
  // and sync() flushes the memtables to disk instead. A crash mid-way loses the
  // rebuild, which is simply run again.
  bool bulk_load = false;
  // For reading only (`export`): RocksDB opens the directory without writing to it, so a
  // state on a read-only file system or directory can be read. Still refused while
  // another process has the state open (its LOCK is held).
  bool read_only = false;
};

// Table files RocksDB keeps open at most (its table cache): a fixed share of the
// daemon's open-file budget (app/fd_budget.hpp) beside the HTTP connections, instead of
// RocksDB's default of keeping every table file open.
constexpr int kRocksDbMaxOpenFiles = 256;

// Opens a RocksDB store in `dir`, creating it only when `dir` is empty or absent. A
// directory with files but no CURRENT (damaged, or not a state) is refused untouched.
Status open_rocksdb_store(const std::string& dir, std::unique_ptr<StateStore>* out, RocksDbOptions options = {});

}  // namespace streamscore
