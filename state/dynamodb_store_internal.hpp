// Internals of the DynamoDB StateStore. Table layout (PK and SK are strings):
//   PK "CUSTOMER#<id>", SK "STATE"  one item per customer: version (N), data (B: zstd of the
//                                    public item verbatim, what export prints, and the
//                                    internal data; tables of the previous format have
//                                    item_json and state instead), the contract's attributes
//                                    projected from the public item (features M of N,
//                                    last_event_time, as_of, score, model_version), and
//                                    "w#<writer>" (N): the last redo-log sequence of that
//                                    writer applied to the item
//   PK "META",  SK hex(key)           value (B)
//   PK "DEDUP", SK hex(record key)#chunk  data (B), n (N: chunks of the record)
//   PK "LOG#<writer>", SK "commit"    the commit marker: seq, pending, chunks, inline payload,
//                                    format (2: compressed, deltas), lease (the writer's, 0
//                                    once fenced), commit_lease
//   PK "OWNERS", SK "partition.<topic>.<p>"  writer, lease: who holds a shared table's partition
//   PK "OWNERS", SK "lease"           n: the last lease handed out
//   PK "LOG#<writer>#<i mod 16>", SK "chunk#<seq>#<i>"  the redo log of one commit, in chunks
//   PK "PART#<count>#<p>", SK "C#<id>" / "D#..."  a shared table's index by source partition
//                                    (state/dynamodb_partitions.hpp): customers, dedup records
// Why a redo log, and the argument that it is all-or-nothing: docs/semantics.md, "State in
// DynamoDB". In short: check versions, write the log, put the marker (the commit point),
// apply idempotently, mark applied; open() finishes a marked but unapplied log.
//
// The store's parts, one concern each: attribute mapping (state/dynamodb_attributes.cpp),
// the commit and its redo log, leases and recovery (state/dynamodb_redo_log.cpp), the rest of
// the store (state/dynamodb_store.cpp). Internal to them; the public header is
// state/dynamodb_store.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/codec.hpp"
#include "state/dynamodb_client.hpp"
#include "state/dynamodb_encoding.hpp"
#include "state/dynamodb_gc.hpp"
#include "state/dynamodb_partitions.hpp"
#include "state/dynamodb_store.hpp"
#include "state/shard_state.hpp"

namespace streamscore::dynamodb_detail {

namespace json = boost::json;

constexpr std::string_view kItemSk = "STATE";
constexpr std::string_view kMetaPk = "META";        // table meta; a writer's own: "META#<writer>"
constexpr std::string_view kWritersPk = "WRITERS";  // SK: the name of every writer of the table
// A shared table's partition owners (SK: the partition's offset key) and the lease counter.
constexpr std::string_view kOwnersPk = "OWNERS";
constexpr std::string_view kLeaseCounterSk = "lease";
// Table meta naming this layout (per-writer meta and dedup records). Tables written before
// it kept every writer's meta under META and the dedup ids under DEDUP.
constexpr std::string_view kLayoutKey = "dynamodb_layout";
constexpr std::string_view kLayout = "per-writer";
constexpr std::string_view kMarkerSk = "commit";
constexpr std::string_view kPartInfix = ".part-";  // a backfill part's writer: "<writer>.part-K-of-P"
constexpr std::size_t kItemLimit = 400 * 1024;     // DynamoDB's item size limit
constexpr std::size_t kChunkBytes = 300 * 1024;    // log and dedup chunks: well under it
constexpr std::size_t kBatchWrite = 25;            // BatchWriteItem's limit
constexpr std::size_t kBatchGet = 100;             // BatchGetItem's limit
constexpr int kMaxRebases = 100;
// The redo log's format (marker attribute `format`): 2 is compressed, with each item's
// internal data as a delta against the version it replaces; markers without it are of
// the previous format (the whole write set, uncompressed), which recovery still reads.
constexpr int64_t kLogFormat = 2;
// A redo log's chunks go round-robin to this many partition keys: one partition key takes
// at most 1,000 WCU/s (about 1 MB/s), so one key would cap a writer's log at that.
constexpr std::size_t kLogPartitions = 16;

// ---------------------------------------------------------------- attribute mapping

json::object attr_s(std::string_view s);

json::object attr_n(int64_t v);

json::object attr_b(std::string_view bytes);

json::object key_of(std::string_view pk, std::string_view sk);

std::string hex(std::string_view bytes);

bool unhex(std::string_view text, std::string* bytes);

std::string hex_number(uint64_t v, int width);

// Reads attribute `name` of type `type` ("S", "N", "B", "BOOL") of an answer's item.
const json::value* attr(const json::object& item, std::string_view name, std::string_view type);

bool get_s(const json::object& item, std::string_view name, std::string* out);

bool get_n(const json::object& item, std::string_view name, int64_t* out);

bool get_b(const json::object& item, std::string_view name, std::string* out);

bool is_true(const json::object& item, std::string_view name);

// PKs are DynamoDB strings, which must be UTF-8; customer ids come from JSON strings.
bool is_utf8(std::string_view s);

std::string printable(std::string_view s);

// A JSON number as DynamoDB's N: integers as they are, doubles as the shortest decimal
// that reads back the same (fixed notation: DynamoDB keeps the value, not the spelling).
std::string number_text(const json::value& v);

// The contract's attributes (section 4) out of the public item, so that DynamoDB readers
// see numbers and strings; attributes the item lacks are listed in `absent`.
void project_item(const std::string& item_json, json::object* set, std::vector<std::string>* absent);

// An upper bound of the stored item's size as DynamoDB counts it (names + values): the
// projection repeats at most the public item's bytes, and zstd grows incompressible
// data by at most 1/128 plus a header.
std::size_t item_size_bound(const ItemRecord& r, std::size_t writer_len);

// ---------------------------------------------------------------- redo log payloads

// The redo log of the previous format (markers without `format`): the checked write set,
// uncompressed, each put in full. Read to finish a commit an older streamscore left.
bool decode_writes(std::string_view bytes, WriteSet* w);

std::vector<std::string_view> split(std::string_view bytes, std::size_t size);

// ---------------------------------------------------------------- the store

// The keys one writer's data lives under.
struct WriterKeys {
  std::string name;
  std::string log_pk;    // "LOG#<writer>": the marker; its chunks under "LOG#<writer>#<p>"
  std::string stamp;     // "w#<writer>": the attribute of the items it wrote
  std::string dedup_pk;  // "DEDUP#<writer>"
  std::string meta_pk;   // "META#<writer>": its own meta values (clock, checkpoint, ...)
};

WriterKeys keys_of_writer(const std::string& name);

class DynamoDbStore final : public StateStore, private GcTable {
 public:
  DynamoDbStore(const DynamoDbOptions& options, AwsCredentials credentials)
      : client_(options, std::move(credentials)), self_(keys_of_writer(options.writer)) {}

  Status open();

  // A daemon taking over partitions finishes the commits that dead writers left
  // between their commit point and the end of their apply, before it reads.
  Status recover_other_writers() override;

  // Fencing (semantics.md, section 21): a new lease for this writer, then each partition
  // claimed under it, and the writer that held it under an older lease fenced. The writer's
  // commit point requires its marker to still carry its lease, so a fenced writer's commit
  // that has not reached it never lands; one that has is finished by recover_other_writers().
  // A partition kept from its previous takeover is claimed again only while it still names
  // this writer: one stopped past its session may not take it back from its new holder.
  Status take_over(const std::vector<std::string>& partitions) override;

  Status get(std::string_view pk, ItemRecord* out) override;

  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override;

  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override;

  Status scan(const std::function<bool(const ItemRecord&)>& fn) override;

  Status scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                         const std::function<bool(const DedupRecord&)>& dedup_fn) override;

  Status put_meta(std::string_view key, std::string_view value) override;

  Status get_meta(std::string_view key, std::string* value) override;

  Status clear() override;

  bool local_scans() const override { return false; }

  // Every acknowledged DynamoDB write is durable already.
  Status sync() override { return Status::ok(); }

  std::vector<Counter> counters() const override;

 private:
  const DynamoDbOptions& options() const { return client_.options(); }
  std::string table() const { return options().table; }
  DynamoDbProbe& metrics() { return client_.metrics(); }

  template <class F>
  Status guarded(const char* what, F&& fn) {
    try {
      return fn();
    } catch (const std::exception& e) {
      return Status::io_error("DynamoDB " + std::string(what) + ": " + e.what());
    } catch (...) {
      return Status::io_error("DynamoDB " + std::string(what) + ": unknown exception");
    }
  }

  Status check_table();

  // ------------------------------------------------------------ single items

  Status get_raw(std::string_view pk, std::string_view sk, json::object* item);

  // Items of this format keep the public item and the internal data in `data`; those of
  // the previous one in `item_json` and `state` (rewritten in this format when written).
  Status decode_item(const json::object& item, ItemRecord* out);

  Status get_item(std::string_view pk, ItemRecord* out);

  static std::string meta_pk(const WriterKeys& w, std::string_view key);

  // `seq`: the commit (or, for put_meta, a sequence above the last commit) that wrote the
  // value, so that finishing another writer's older commit never moves a value back.
  json::object meta_item(const WriterKeys& w, std::string_view key, std::string_view value, uint64_t seq);

  Status check_meta(std::string_view key, std::string_view value);

  // ------------------------------------------------------------ batches

  // Sends `pending` with `send` until nothing comes back unprocessed (a batch's throttled
  // part is a success answer), backing off before each round like a throttled request.
  Status until_processed(const char* op, json::array pending,
                         const std::function<Status(json::array batch, json::array* unprocessed)>& send);

  // `reply[field][table]` (the part of a batch answer about this table), or null.
  json::value* table_part(json::object& reply, const char* field);

  // Runs `fn` on slices of at most `size` of `all`, in parallel.
  Status in_groups(const std::vector<json::object>& all, std::size_t size,
                   const std::function<Status(json::array group)>& fn);

  // BatchWriteItem in requests of 25, in parallel.
  Status batch_write(const std::vector<json::object>& requests);

  static json::object put_request(json::object item) { return {{"PutRequest", {{"Item", std::move(item)}}}}; }
  static json::object delete_request(json::object key) { return {{"DeleteRequest", {{"Key", std::move(key)}}}}; }

  // BatchGetItem of the (distinct) keys, 100 per request, in parallel; `fn` gets each item
  // found (from several threads: it locks what it shares).
  Status batch_get(const std::vector<json::object>& keys, const char* projection,
                   const std::function<void(json::object&)>& fn);

  // The customer items of `keys` (a batch_get), decoded into `found` by PK; absent ones are
  // left as they are. A malformed item is its corruption error.
  Status get_items(const std::vector<json::object>& keys, std::map<std::string, ItemRecord>* found);

  // Query of one partition (ascending SK), every page; `fn` gets each item.
  Status query(json::object request, const std::function<Status(json::object&)>& fn);

  // What a Scan or Query page read (and is billed for), filtered out or not.
  void count_rows_read(const json::object& reply);

  // Scan of the whole table, every page, keys only; `items_only`: the rows with SK
  // "STATE" (no META, DEDUP or LOG row has that SK).
  Status scan_keys(bool items_only, std::vector<std::pair<std::string, std::string>>* keys);

  // ------------------------------------------------------------ commit

  // validate_puts, plus what a DynamoDB item can hold.
  Status validate(const WriteSet& w);

  // The stored items of the distinct PKs of `puts` (absent: version 0, no internal data),
  // one consistent read each. Whole items: DynamoDB bills a read by the item's size, not
  // by what it returns, and the redo log needs their internal data (the deltas' bases).
  Status read_stored(const std::vector<ConditionalPut>& puts, std::map<std::string, ItemRecord>* stored);

  // The sequential check of StateStore::commit; also collapses the puts to one per PK
  // (expected: the first put's, record: the last put's). `bases`: the stored internal data
  // each checked put replaces.
  Status check(const WriteSet& writes, std::vector<std::size_t>* conflicts, WriteSet* checked,
               std::vector<std::string>* bases);

  Status do_commit(const WriteSet& writes, std::vector<std::size_t>* conflicts);

  Status put_alone(const ConditionalPut& put, std::vector<std::size_t>* conflicts);

  // The item write of a put: every attribute it owns set (or removed), conditional on the
  // expected version and, for a redo-log sequence `seq` > 0, on not being applied yet.
  json::object update_request(const WriterKeys& w, const ConditionalPut& put, uint64_t seq);

  // ------------------------------------------------------------ leases (fencing)

  // The table's lease counter, one up: leases only grow, whoever takes them.
  Status next_lease(int64_t* lease);

  // This writer's marker carries its lease; other attributes (a commit in progress) stay.
  Status set_own_lease(int64_t lease);

  // Records this writer as `partition`'s holder under `lease`, returning the previous holder
  // and its lease. A holder under a newer lease means this takeover is already outdated; so
  // does another holder of a partition `kept` from this writer's previous takeover.
  Status claim(const std::string& partition, int64_t lease, bool kept, std::string* holder, int64_t* held_under);

  // Takes `holder`'s lease away if it still is the one it held the partition under (a
  // holder that took a new lease since has let the partition go, through a revocation).
  Status fence(const std::string& holder, int64_t held_under);

  // Takes this writer's own `lease` away (as another writer's fence would), returning `why`.
  Status fence_self(int64_t lease, const Status& why);

  // Why the commit point's condition failed: this writer's lease was taken (fenced), or
  // another process commits under its name.
  Status marker_refused();

  // This writer was found gone and removed (or is being removed) by another writer
  // (semantics.md, section 21). Its next commit starts a new marker; a group member rejoins
  // as a fenced one does, anything else stops: its clock and positions went with it.
  Status collected();

  // ------------------------------------------------------------ the redo log

  uint64_t next_sequence();

  static std::string chunk_pk(const WriterKeys& w, std::size_t i);

  std::string chunk_sk(uint64_t seq, std::size_t i) const;

  Status stopped(CommitStage stage);

  Status commit_logged(const WriteSet& checked, const std::vector<std::string>& bases);

  // Marks commit `seq` of writer `w` applied and drops its log. For another writer's
  // commit (a takeover), a marker that moved means its owner finished it: nothing to do.
  Status finish(const WriterKeys& w, uint64_t seq, std::size_t chunks);

  // Applies a checked write set; idempotent for seq > 0 (a redo after a crash skips what
  // is stamped already). Dedup records first (forget, then new ones: the order RocksDB's
  // batch gives), then items, then meta last, so that a bulk load's "complete" comes last.
  Status apply(const WriterKeys& writer, const WriteSet& w, uint64_t seq, int64_t lease);

  // Each value is written only over one from an older (or the same) commit: a commit
  // finished by another writer may be redone by its own, alive and further on meanwhile.
  // The table's values (the partitions' offsets) go by lease first: a fenced writer's
  // redo never moves an offset that the partition's new holder has written back.
  Status put_meta_if_newer(const WriterKeys& w, const std::vector<MetaPut>& meta, uint64_t seq, int64_t lease);

  // A put after the commit point must land. If its condition fails, either this very
  // sequence applied it before (a redo: skip) or another writer wrote the item since the
  // check: move the put on top of that version, as commit_with_retry does (counted).
  Status apply_put(const WriterKeys& w, ConditionalPut put, uint64_t seq);

  // The writer's own records under its key, by the earliest of its clocks. Its records in
  // a partition's index are not its to forget: that partition's holder forgets them by the
  // partition's clock (forget_partition_dedup), which may lag behind this writer's.
  Status forget_dedup(const WriterKeys& w, int64_t before_day);

  // Every writer's records of days before each partition's bound in that partition's index
  // (this writer holds the partitions; records of writers long gone included).
  Status forget_partition_dedup(const std::map<int32_t, int64_t>& before_day);

  // Delete requests for the dedup records under `pk` (SKs: `prefix` + hex record key ...)
  // of days before `before_day`.
  Status below_day(const std::string& pk, const std::string& prefix, int64_t before_day,
                   std::vector<json::object>* deletes);

  // The SK prefix of the first writer with dedup records in index `pk` at or after `from`.
  Status first_dedup_writer(const std::string& pk, const std::string& from, std::string* prefix, bool* found);

  // The lowest SK after every one beginning with `prefix` (ending in '#': "D#", "D#<hex>#").
  static std::string next_writer_after(const std::string& prefix);

  // ------------------------------------------------------------ gone writers (dynamodb_gc.hpp)

  // A collection pass after a commit. Whether a writer is gone changes when this writer's
  // clock enters a new day (its forget bound moves); a pass cut short by its budget goes
  // on at the next commit. A failed pass fails nothing: it is tried again.
  void collect_garbage(int64_t forget_day);

  Status sight(const std::string& name, WriterSighting* out) override;

  // Folds the day of the newest dedup record under `pk` (SKs beginning with `prefix`) into
  // `out`'s newest_dedup_day.
  Status newest_dedup_day(const std::string& pk, const std::string& prefix, WriterSighting* out);

  // Narrows a Query on one partition key to the SKs beginning with `prefix` (none: all).
  static void with_sk_prefix(const std::string& prefix, json::object* request);

  Status finish_commit(const std::string& name) override { return recover_writer(keys_of_writer(name), false); }

  Status mark_collecting(const std::string& name, uint64_t last_commit_us) override;

  Status delete_leftovers(const std::string& name, std::size_t budget, std::size_t* deleted) override;

  // Delete requests for the first `limit` items of partition key `pk` whose SKs begin
  // with `prefix`.
  Status first_keys(const std::string& pk, const std::string& prefix, std::size_t limit,
                    std::vector<json::object>* deletes);

  // The WRITERS entry, then the marker: until the marker goes, the mark refuses the
  // writer's commits. A collector killed in between leaves the marker (one item).
  Status forget_writer(const std::string& name) override;

  // ------------------------------------------------------------ recovery

  // Finishes writer `w`'s committed but unapplied commit. For this process's own writer
  // (`own`, at open) it also takes the marker's sequence and drops the log chunks of
  // finished (or abandoned, uncommitted) commits.
  Status recover_writer(const WriterKeys& w, bool own);

  // The write set of writer `w`'s commit `seq`, whose log is `payload`, in the marker's
  // format: the previous one holds every put in full; this one the deltas of the internal
  // data, rebuilt here against the stored items.
  Status writes_of_log(const WriterKeys& w, const json::object& marker, const std::string& payload, uint64_t seq,
                       WriteSet* writes);

  // Each logged put's internal data out of its delta and the item it replaces, as stored
  // now. Puts this commit already applied (stamped) are dropped: their base is gone, and
  // the apply would skip them anyway. An item another writer wrote since the check keeps
  // its internal data when that writer only changed the public item (a re-score), so the
  // delta still applies and the put is rebased as usual.
  Status rebuild_puts(const WriterKeys& w, uint64_t seq, RedoLog* log);

  // Whether writer `w`'s marker is no longer commit `seq` pending (its owner went on).
  bool marker_moved(const WriterKeys& w, uint64_t seq);

  // A table of this layout, or an empty one (which becomes one), or a refusal.
  Status check_layout();

  Status put_layout();

  Status register_writer();

  // The parts of a backfill in parts by this writer's name (backfill_part_writer), which
  // this writer continues from: semantics.md, section 14.
  Status find_backfill_parts();

  Status list_writers(std::vector<std::string>* writers) override;

  Status load_payload(const WriterKeys& w, const json::object& marker, uint64_t seq, int64_t chunks,
                      std::string* payload);

  // Chunks of sequences up to the marker's are finished or were never committed. Newer
  // ones may belong to a commit in progress elsewhere (e.g. a daemon, while this process
  // exports): left alone, and dropped by a later open once the marker has passed them.
  Status sweep_log();

  // ------------------------------------------------------------ reads

  // Keys first (the whole table has to be read to find them), sorted bytewise, then the
  // items in that order, a window of batch reads at a time: memory stays at one window.
  Status do_scan(const std::function<bool(const ItemRecord&)>& fn);

  // The items of `pks` in bytewise PK order, a window of batch reads at a time.
  Status read_items(std::vector<std::string> pks, const std::function<bool(const ItemRecord&)>& fn, bool* stopped);

  // This writer's records and its backfill parts'; with dedup_of_all_writers every
  // writer's: ids move with their customers between the daemons of a group (semantics.md,
  // section 21).
  Status do_scan_dedup(const std::function<bool(const DedupRecord&)>& fn);

  Status scan_writer_dedup(const WriterKeys& w, const std::function<bool(const DedupRecord&)>& fn, bool* stopped);

  // The dedup records under `pk` whose SKs begin with `prefix`, assembled from their chunks
  // (SK: [prefix][...#]<hex record key>#<chunk>). `sks`, when given, gets every SK read.
  Status query_dedup(const std::string& pk, const std::string& prefix,
                     const std::function<bool(const DedupRecord&)>& fn, bool* stopped,
                     std::vector<std::string>* sks = nullptr);

  // ------------------------------------------------------------ the index by partition

  // SK prefix of writer `w`'s dedup records in a partition's index (hex: no '#' inside).
  static std::string dedup_entry_prefix(const WriterKeys& w);

  static json::object index_entry(std::string_view customer_id, int32_t count);

  // An index entry for every customer the puts may create (expected version 0): written
  // in the apply of the commit that creates it, so that a redo writes it too.
  static void index_new_customers(const std::vector<ConditionalPut>& puts, int32_t count,
                                  std::vector<json::object>* out);

  // The items of dedup record `r` of writer `w`: under the writer's own key, or (`count` >
  // 0) split by its customers' partitions into their indexes.
  Status dedup_items(const WriterKeys& w, const DedupRecord& r, int32_t count, std::vector<json::object>* out);

  static void append_dedup_chunks(const std::string& pk, const std::string& key, std::string_view data,
                                  std::vector<json::object>* out);

  // The count of table meta "partition_index" (0: the table is not indexed).
  Status read_partition_index(int32_t* count);

  // Every writer that opens an indexed table indexes what it creates.
  Status load_partition_index();

  Status put_partition_index(int32_t count);

  // A takeover's load (section 21): the partitions' customers and dedup records from their
  // indexes (Queries), then any dedup records still under a writer's own key (moved into
  // the index on the way). A table not indexed under this partition count is read whole
  // once and indexed.
  Status do_scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                            const std::function<bool(const DedupRecord&)>& dedup_fn);

  // The PKs of the customers in one partition's index.
  Status indexed_customers(const std::string& index_pk, std::vector<std::string>* pks);

  // The first takeover of a table not indexed under `count` partitions (written before a
  // group shared it, or indexed under another partition count): reads it whole, as every
  // takeover did before the index, indexes every customer, moves every dedup record into
  // the index, and only then marks the table indexed.
  Status index_table(int32_t count, int32_t indexed_before, const std::function<bool(const ItemRecord&)>& item_fn,
                     const std::function<bool(const DedupRecord&)>& dedup_fn);

  // Every writer's dedup records under its own key, moved into the index.
  Status move_into_index(int32_t count, const std::function<bool(const DedupRecord&)>& fn, bool* stop);

  // Writer `w`'s dedup records under `pk` (SKs beginning with `prefix`), handed to `fn` and
  // moved into the index under `count` partitions: the copies are written before the
  // originals read go (records written meanwhile stay, for the next move).
  Status move_dedup(const WriterKeys& w, const std::string& pk, const std::string& prefix, int32_t count,
                    const std::function<bool(const DedupRecord&)>& fn, bool* stop);

  Status do_clear();

  DynamoDbClient client_;
  const WriterKeys self_;          // this process's writer
  std::vector<WriterKeys> parts_;  // the backfill parts it continues from (find_backfill_parts)
  std::mutex commit_mu_;           // one commit (one log sequence) at a time
  uint64_t last_seq_ = 0;          // the sequence of this writer's last commit marker
  int64_t lease_ = 0;              // the lease its commits need on the marker (0: never took partitions)
  std::set<std::string> claimed_;  // the partitions of its last takeover (take_over)
  // The partition count its commits index new customers and dedup ids under (0: none):
  // the table's (meta "partition_index") at open, a takeover's from then on.
  std::atomic<int32_t> partition_count_{0};
  int64_t gc_day_ = kNoDay;  // the forget bound of its last collection pass
  bool gc_more_ = false;     // a collection pass is due (the bound moved, or one was cut short)
};

}  // namespace streamscore::dynamodb_detail
