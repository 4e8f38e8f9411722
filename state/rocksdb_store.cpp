// RocksDB StateStore.
//
// Key layout (one default column family):
//   "I" + pk   -> item value (below); a scan iterates ["I", "J") only, in bytewise PK order
//   "M" + key  -> meta value, raw bytes
//   "D" + dedup_record_key -> dedup ids (DedupRecord::data), by day, sequence, part
// Item value:
//   [0]      format byte (kItemFormat)
//   [1..8]   version, int64 little-endian
//   [9..12]  item_json length, uint32 little-endian
//   item_json bytes, then internal bytes (the rest of the value)
// The fixed-width little-endian header keeps the encoding independent of the host and
// lets commit read a version without parsing any JSON.

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "common/codec.hpp"
#include "state/format.hpp"
#include "state/store.hpp"

namespace streamscore {

namespace {

constexpr char kItemPrefix = 'I';
constexpr char kMetaPrefix = 'M';
constexpr char kDedupPrefix = 'D';
constexpr unsigned char kItemFormat = 1;
constexpr std::size_t kHeaderSize = 1 + 8 + 4;

// ---------------------------------------------------------------- encoding

std::string prefixed(char prefix, std::string_view key) {
  std::string k;
  k.reserve(1 + key.size());
  k.push_back(prefix);
  k.append(key);
  return k;
}

std::string encode_item(const ItemRecord& r) {
  std::string v;
  v.reserve(kHeaderSize + r.item_json.size() + r.internal.size());
  v.push_back(static_cast<char>(kItemFormat));
  put_fixed_le(v, static_cast<uint64_t>(r.version), 8);
  put_fixed_le(v, r.item_json.size(), 4);
  v.append(r.item_json);
  v.append(r.internal);
  return v;
}

// PKs are raw bytes; escape the unprintable ones so an error message stays one line.
std::string printable(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

Status malformed(std::string_view pk, const std::string& why) {
  return Status::corruption("state item '" + printable(pk) + "' is malformed: " + why);
}

// Validates the header against the value size; returns version and item_json length.
Status decode_header(std::string_view pk, rocksdb::Slice v, int64_t* version, uint32_t* json_len) {
  if (v.size() < kHeaderSize)
    return malformed(pk, "value of " + std::to_string(v.size()) + " bytes is shorter than the header");
  if (static_cast<unsigned char>(v[0]) != kItemFormat)
    return malformed(pk, "unknown format byte " + std::to_string(static_cast<unsigned char>(v[0])));
  *version = static_cast<int64_t>(get_fixed_le(v.data() + 1, 8));
  *json_len = static_cast<uint32_t>(get_fixed_le(v.data() + 9, 4));
  if (*version < 0) return malformed(pk, "negative version " + std::to_string(*version));
  if (*json_len > v.size() - kHeaderSize)
    return malformed(pk, "item_json length " + std::to_string(*json_len) + " exceeds the value");
  return Status::ok();
}

Status decode_item(std::string_view pk, rocksdb::Slice v, ItemRecord* out) {
  int64_t version = 0;
  uint32_t json_len = 0;
  Status s = decode_header(pk, v, &version, &json_len);
  if (!s.is_ok()) return s;
  const char* body = v.data() + kHeaderSize;
  out->pk.assign(pk.data(), pk.size());
  out->version = version;
  out->item_json.assign(body, json_len);
  out->internal.assign(body + json_len, v.size() - kHeaderSize - json_len);
  return Status::ok();
}

// ---------------------------------------------------------------- helpers

// What a put of a bulk part expects to find, checked when the parts are ingested.
struct ExpectedVersion {
  std::string pk;
  int64_t version = 0;
};

// No check yet: any sequence number is older.
constexpr rocksdb::SequenceNumber kNotChecked = std::numeric_limits<rocksdb::SequenceNumber>::max();

// validate_puts, plus this backend's own bound: the header stores the JSON length in 32 bits.
Status validate(const std::vector<ConditionalPut>& puts) {
  Status s = validate_puts(puts);
  if (!s.is_ok()) return s;
  for (std::size_t i = 0; i < puts.size(); ++i)
    if (puts[i].record.item_json.size() > std::numeric_limits<uint32_t>::max())
      return Status::invalid_argument("put " + std::to_string(i) + ": item_json longer than 4 GiB");
  return Status::ok();
}

// The lock file is "<dir>/LOCK"; RocksDB reports both another process holding it and
// another DB object of this process holding it as IOError naming that file.
// Not the failure to create the file (a read-only directory), which is no lock held.
bool is_lock_error(const rocksdb::Status& s) {
  const std::string text = s.ToString();
  return s.IsIOError() && text.find("/LOCK:") != std::string::npos &&
         text.find("open a file for lock") == std::string::npos;
}

template <class F>
Status guarded(const std::string& dir, const char* what, F&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::io_error("rocksdb " + std::string(what) + " in " + dir + ": " + e.what());
  } catch (...) {
    return Status::io_error("rocksdb " + std::string(what) + " in " + dir + ": unknown exception");
  }
}

// RocksDB's info log goes to the process's log (stderr), never to a LOG file in the
// state directory: on a full disk Debian's librocksdb asserts (SIGABRT) when it cannot
// append to that file, where the write itself would have returned a clean error; and a
// damaged or read-only state must not be written to at all. Its INFO lines are debug
// lines here, its warnings and errors warnings and errors.
class ForwardingLogger final : public rocksdb::Logger {
 public:
  ForwardingLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum to = level >= rocksdb::InfoLogLevel::HEADER_LEVEL  ? spdlog::level::debug
                                         : level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? spdlog::level::err
                                         : level >= rocksdb::InfoLogLevel::WARN_LEVEL  ? spdlog::level::warn
                                                                                       : spdlog::level::debug;
    if (!spdlog::should_log(to)) return;
    char buffer[1024];
    const int n = std::vsnprintf(buffer, sizeof buffer, format, ap);
    std::string text(buffer, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buffer - 1));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();  // one log line each
    std::string detail;  // quoted and escaped like every other logged value
    append_json_string_lossless(detail, text);
    spdlog::log(to, "msg=\"rocksdb\" detail={}", detail);
  }
};

// Settings for every open, tuned so that bulk loads (replay writes the whole state at
// once) go fast. Everything not set here is RocksDB's default.
rocksdb::Options make_options(const RocksDbOptions& options) {
  rocksdb::Options o;
  o.info_log = std::make_shared<ForwardingLogger>();
  // Bigger memtables mean fewer, larger flushes during a replay; 3 of them let
  // writes continue while one is being flushed. Worst case ~192 MiB of memtables,
  // which keeps a 100k-customer replay well inside its 2 GiB memory budget. A daemon
  // writes a little at every checkpoint instead: small memtables keep its memory flat
  // (the swing between one and three full memtables is most of its RSS noise).
  o.write_buffer_size = options.bulk_load ? 64 << 20 : 16 << 20;
  o.max_write_buffer_number = 3;
  // L1 sized like the L0 it compacts from (4 files x 64 MiB).
  o.max_bytes_for_level_base = 256 << 20;
  o.level_compaction_dynamic_level_bytes = true;
  o.max_background_jobs = 4;                // default 2: flushes and compactions lag a bulk load
  o.max_open_files = kRocksDbMaxOpenFiles;  // its share of the process's fds
  // A writer ingests files built outside the database (a rebuild's state, a daemon's last
  // commit), which have no unique ID in the manifest to verify while they are ingested;
  // RocksDB would warn about each ingestion. A reader (`export`) checks every file.
  o.verify_sst_unique_id_in_manifest = options.read_only;
  // LZ4 is cheap enough not to slow writes; fall back to none if this librocksdb
  // was built without it (checked at run time, not compile time).
  o.compression = rocksdb::kNoCompression;
  for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions())
    if (t == rocksdb::kLZ4Compression) o.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions t;
  // commit reads every key it writes, and most keys of a replay are new: a bloom
  // filter answers "not there" without touching data blocks.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Items are ~2-3 KB; 16 KB blocks hold several, which compresses better than 4 KB.
  t.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

// ---------------------------------------------------------------- bulk loads

// A bulk load's parts are SST files built beside the database, in this directory of the
// state, and moved into it when ingested. A load that died before leaves them behind:
// the next clear() (the next replay) removes them.
constexpr const char* kBulkDirectory = "bulk-load";

// One SST file of a part, opened at its first key (RocksDB refuses an empty one).
class SstFile {
 public:
  SstFile(const rocksdb::Options& options, std::string path) : options_(options), path_(std::move(path)) {}

  rocksdb::Status put(const rocksdb::Slice& key, const rocksdb::Slice& value) {
    rocksdb::Status s = open();
    return s.ok() ? writer_->Put(key, value) : s;
  }

  // Writes the rest and syncs the file; `written` tells whether there is one.
  rocksdb::Status finish(bool* written) {
    *written = writer_ != nullptr;
    return writer_ ? writer_->Finish() : rocksdb::Status::OK();
  }

  rocksdb::Status delete_range(const rocksdb::Slice& begin, const rocksdb::Slice& end) {
    rocksdb::Status s = open();
    return s.ok() ? writer_->DeleteRange(begin, end) : s;
  }

  const std::string& path() const { return path_; }

 private:
  rocksdb::Status open() {
    if (writer_) return rocksdb::Status::OK();
    // The page cache keeps the data, as a memtable flush would: an export or a `run`
    // right after the replay reads it from memory.
    writer_ = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), options_,
                                                       static_cast<rocksdb::ColumnFamilyHandle*>(nullptr),
                                                       /*invalidate_page_cache=*/false);
    return writer_->Open(path_);
  }

  const rocksdb::Options& options_;
  std::string path_;
  std::unique_ptr<rocksdb::SstFileWriter> writer_;
};

// ---------------------------------------------------------------- the store

class SstBulkPart;

class RocksDbStore final : public StateStore {
 public:
  RocksDbStore(std::string dir, std::unique_ptr<rocksdb::DB> db, RocksDbOptions options)
      : dir_(std::move(dir)), options_(options), db_(std::move(db)) {}

  ~RocksDbStore() override {
    // Close() waits for background work and, in bulk-load mode (no WAL), flushes the
    // memtables; an error here has nowhere to go. Callers sync() before closing.
    db_->Close().PermitUncheckedError();
  }

  Status get(std::string_view pk, ItemRecord* out) override {
    return guarded(dir_, "get", [&] { return do_get(pk, out); });
  }

  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override {
    return guarded(dir_, "commit", [&] { return do_commit(writes, conflicts); });
  }

  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override {
    return guarded(dir_, "scan_dedup", [&] { return do_scan_dedup(fn); });
  }

  Status scan(const std::function<bool(const ItemRecord&)>& fn) override {
    return guarded(dir_, "scan", [&] { return do_scan(fn); });
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    return guarded(dir_, "put_meta", [&] {
      rocksdb::Slice v(value.data(), value.size());
      return from_rocks(db_->Put(write_options(), prefixed(kMetaPrefix, key), v), "put_meta");
    });
  }

  Status get_meta(std::string_view key, std::string* value) override {
    return guarded(dir_, "get_meta", [&] {
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), prefixed(kMetaPrefix, key), value);
      if (s.IsNotFound()) return Status::not_found("meta key " + printable(key));
      return from_rocks(s, "get_meta");
    });
  }

  Status clear() override {
    return guarded(dir_, "clear", [&] { return do_clear(); });
  }

  Status open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) override;
  bool takes_bulk_parts() const override { return !options_.read_only; }

  Status ingest_bulk_parts(const WriteSet& with) override {
    return guarded(dir_, "ingest", [&] { return do_ingest_bulk_parts(with); });
  }

  Status sync() override {
    return guarded(dir_, "sync", [&] {
      if (!options_.bulk_load) return from_rocks(db_->FlushWAL(true), "sync");
      rocksdb::FlushOptions fo;
      fo.wait = true;
      return from_rocks(db_->Flush(fo), "sync");
    });
  }

 private:
  // Acknowledged writes go to the WAL in the OS cache; sync() makes them durable.
  rocksdb::WriteOptions write_options() const {
    rocksdb::WriteOptions wo;
    wo.sync = false;
    wo.disableWAL = options_.bulk_load;
    return wo;
  }

  friend class SstBulkPart;

  // A part's finished file, for ingest_bulk_parts.
  void add_bulk_file(std::string path) {
    std::lock_guard<std::mutex> lock(bulk_mu_);
    bulk_files_.push_back(std::move(path));
  }

  // A finished part's puts of a live store: the versions they expect, which the part
  // checked when the database was at sequence number `checked_at` (or later).
  void add_bulk_expectations(std::vector<ExpectedVersion>&& expected, rocksdb::SequenceNumber checked_at) {
    std::lock_guard<std::mutex> lock(bulk_mu_);
    bulk_checked_at_ = std::min(bulk_checked_at_, checked_at);
    if (bulk_expected_.empty()) {
      bulk_expected_ = std::move(expected);
    } else {
      bulk_expected_.insert(bulk_expected_.end(), std::make_move_iterator(expected.begin()),
                            std::make_move_iterator(expected.end()));
    }
  }

  std::string bulk_directory() const { return (std::filesystem::path(dir_) / kBulkDirectory).string(); }

  Status from_rocks(const rocksdb::Status& s, const char* what) const {
    if (s.ok()) return Status::ok();
    std::string msg = "rocksdb " + std::string(what) + " in " + dir_ + ": " + s.ToString();
    return s.IsCorruption() ? Status::corruption(msg) : Status::io_error(msg);
  }

  Status do_get(std::string_view pk, ItemRecord* out) {
    rocksdb::PinnableSlice v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), prefixed(kItemPrefix, pk), &v);
    if (s.IsNotFound()) return Status::not_found("item " + printable(pk));
    if (!s.ok()) return from_rocks(s, "get");
    return decode_item(pk, v, out);
  }

  // Stored versions (0 = absent) of the PKs already in `versions`, one MultiGet.
  Status read_versions(std::map<std::string_view, int64_t>* versions) {
    std::vector<std::string> keys;
    keys.reserve(versions->size());
    for (const auto& kv : *versions) keys.push_back(prefixed(kItemPrefix, kv.first));
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    // Keys come out of the std::map sorted, and "I" + pk keeps that order.
    db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), keys.size(), slices.data(), values.data(),
                  statuses.data(), /*sorted_input=*/true);
    std::size_t i = 0;
    for (auto& kv : *versions) {
      const rocksdb::Status& s = statuses[i];
      if (s.ok()) {
        uint32_t json_len = 0;
        Status d = decode_header(kv.first, values[i], &kv.second, &json_len);
        if (!d.is_ok()) return d;
      } else if (!s.IsNotFound()) {
        return from_rocks(s, "commit read");
      }
      ++i;
    }
    return Status::ok();
  }

  Status do_commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
    conflicts->clear();
    const std::vector<ConditionalPut>& puts = writes.puts;
    Status s = validate(puts);
    if (!s.is_ok()) return s;
    // Encode outside the lock, so that concurrent writers only serialize on the
    // version check and the write.
    rocksdb::WriteBatch batch;
    for (const ConditionalPut& p : puts) {
      rocksdb::Status bs = batch.Put(prefixed(kItemPrefix, p.record.pk), encode_item(p.record));
      if (!bs.ok()) return from_rocks(bs, "commit");
    }
    for (const MetaPut& m : writes.meta) {
      rocksdb::Status bs = batch.Put(prefixed(kMetaPrefix, m.key), m.value);
      if (!bs.ok()) return from_rocks(bs, "commit");
    }
    if (writes.forget_dedup_before_day != kNoDay) {
      DedupRecord bound;
      bound.day = writes.forget_dedup_before_day;
      rocksdb::Status bs =
          batch.DeleteRange(std::string(1, kDedupPrefix), prefixed(kDedupPrefix, dedup_record_key(bound)));
      if (!bs.ok()) return from_rocks(bs, "commit");
    }
    for (const DedupRecord& r : writes.dedup) {
      rocksdb::Status bs = batch.Put(prefixed(kDedupPrefix, dedup_record_key(r)), r.data);
      if (!bs.ok()) return from_rocks(bs, "commit");
    }
    if (batch.Count() == 0) return Status::ok();
    // One writer at a time: the versions read below must still be current when the
    // batch is written. Readers (get, scan) do not take this lock.
    std::lock_guard<std::mutex> lock(write_mu_);
    std::map<std::string_view, int64_t> versions;
    for (const ConditionalPut& p : puts) versions.emplace(p.record.pk, 0);
    if (!puts.empty() && !(s = read_versions(&versions)).is_ok()) return s;
    // Check sequentially, as if applied one after another: a later put of the same PK
    // sees the version of an earlier put. In the WriteBatch the later Put wins.
    for (std::size_t i = 0; i < puts.size(); ++i) {
      int64_t& current = versions[puts[i].record.pk];
      if (current != puts[i].expected_version) {
        conflicts->push_back(i);
        continue;
      }
      current = puts[i].record.version;
    }
    if (!conflicts->empty()) return Status::ok();
    return from_rocks(db_->Write(write_options(), &batch), "commit");
  }

  Status do_scan(const std::function<bool(const ItemRecord&)>& fn) {
    const std::string lower(1, kItemPrefix);
    const std::string upper(1, static_cast<char>(kItemPrefix + 1));
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;  // stop at the end of the item range
    // A full export should not evict the working set of the block cache.
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    ItemRecord record;  // reused: keeps its buffers across items
    for (it->Seek(lower); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      std::string_view pk(k.data() + 1, k.size() - 1);
      Status s = decode_item(pk, it->value(), &record);
      if (!s.is_ok()) return s;
      if (!fn(record)) return Status::ok();
    }
    return from_rocks(it->status(), "scan");
  }

  Status do_scan_dedup(const std::function<bool(const DedupRecord&)>& fn) {
    const std::string lower(1, kDedupPrefix);
    const std::string upper(1, static_cast<char>(kDedupPrefix + 1));
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    DedupRecord record;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (!parse_dedup_record_key(std::string_view(k.data() + 1, k.size() - 1), &record))
        return Status::corruption("dedup record key of " + std::to_string(k.size()) + " bytes is malformed");
      record.data.assign(it->value().data(), it->value().size());
      if (!fn(record)) return Status::ok();
    }
    return from_rocks(it->status(), "scan_dedup");
  }

  // Range tombstones: constant time however large the DB is; the space comes back as
  // compaction drops the covered keys. The parts of a bulk load that died go too.
  Status do_clear() {
    std::lock_guard<std::mutex> lock(write_mu_);
    Status removed = remove_bulk_directory();
    if (!removed.is_ok()) return removed;
    rocksdb::WriteBatch batch;
    for (char prefix : {kItemPrefix, kMetaPrefix, kDedupPrefix}) {
      rocksdb::Status s = batch.DeleteRange(std::string(1, prefix), std::string(1, static_cast<char>(prefix + 1)));
      if (!s.ok()) return from_rocks(s, "clear");
    }
    return from_rocks(db_->Write(write_options(), &batch), "clear");
  }

  Status remove_bulk_directory() {
    std::error_code ec;
    std::filesystem::remove_all(bulk_directory(), ec);
    if (ec) return Status::io_error("cannot remove " + bulk_directory() + ": " + ec.message());
    return Status::ok();
  }

  // The parts' puts must find the versions they expect, as commit() checks them: the
  // first that does not names the conflict. `checked_at`: the sequence number the
  // versions read are at least as new as.
  Status check_expectations(const std::vector<ExpectedVersion>& expected, rocksdb::SequenceNumber* checked_at) {
    *checked_at = db_->GetLatestSequenceNumber();
    std::map<std::string_view, int64_t> versions;
    for (const ExpectedVersion& e : expected) versions.emplace(e.pk, 0);
    Status s = versions.empty() ? Status::ok() : read_versions(&versions);
    if (!s.is_ok()) return s;
    for (const ExpectedVersion& e : expected)
      if (versions[e.pk] != e.version)
        return Status::conflict("bulk commit: item '" + printable(e.pk) + "' is at version " +
                                std::to_string(versions[e.pk]) + ", not the expected " + std::to_string(e.version) +
                                " (another writer changed it); nothing was written");
    return Status::ok();
  }

  // The commit's own keys, as one more file of the ingestion: its meta, and a range
  // deletion of the dedup days it forgets. Keys in order, as SstFileWriter wants them.
  Status write_commit_file(const WriteSet& with, const std::string& path, bool* written) {
    SstFile file(rocks_options_, path);
    rocksdb::Status s;
    if (with.forget_dedup_before_day != kNoDay) {
      DedupRecord bound;
      bound.day = with.forget_dedup_before_day;
      s = file.delete_range(std::string(1, kDedupPrefix), prefixed(kDedupPrefix, dedup_record_key(bound)));
    }
    std::map<std::string, std::string_view> meta;  // the last value of a key wins, as in a WriteBatch
    for (const MetaPut& m : with.meta) meta[prefixed(kMetaPrefix, m.key)] = m.value;
    for (auto it = meta.begin(); s.ok() && it != meta.end(); ++it)
      s = file.put(it->first, rocksdb::Slice(it->second.data(), it->second.size()));
    if (s.ok()) s = file.finish(written);
    return from_rocks(s, "bulk commit");
  }

  // One atomic ingestion of every part's files and the commit's own (all or none, even
  // across a crash). The files are moved (hard links), not copied; those of different
  // parts overlap (the shards split customers by hash), so RocksDB puts them into level 0.
  Status do_ingest_bulk_parts(const WriteSet& with) {
    if (!with.puts.empty() || !with.dedup.empty())
      return Status::invalid_argument("ingest_bulk_parts: puts and dedup records go into the parts");
    std::lock_guard<std::mutex> lock(write_mu_);
    std::vector<std::string> files;
    std::vector<ExpectedVersion> expected;
    rocksdb::SequenceNumber checked_at = kNotChecked;
    {
      std::lock_guard<std::mutex> bulk_lock(bulk_mu_);
      files.swap(bulk_files_);
      expected.swap(bulk_expected_);
      std::swap(checked_at, bulk_checked_at_);
    }
    // The parts checked their puts while they were built, in parallel. Nothing written since
    // (the sequence number has not moved) means those checks still hold; else again, here.
    Status s;
    if (!expected.empty() && db_->GetLatestSequenceNumber() != checked_at)
      s = check_expectations(expected, &checked_at);
    if (!s.is_ok()) {
      Status removed = remove_bulk_directory();  // a refused commit leaves nothing behind
      return removed.is_ok() ? s : removed;
    }
    std::sort(files.begin(), files.end());  // the same order on every run
    s = create_bulk_directory();
    bool written = false;
    const std::string commit_file = (std::filesystem::path(bulk_directory()) / "commit.sst").string();
    if (s.is_ok()) s = write_commit_file(with, commit_file, &written);
    if (!s.is_ok()) return s;
    if (written) files.push_back(commit_file);
    if (files.empty()) return remove_bulk_directory();
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;
    io.write_global_seqno = false;  // no rewrite of the files: read by this RocksDB or a newer one
    s = from_rocks(db_->IngestExternalFile(files, io), "ingest");
    return s.is_ok() ? remove_bulk_directory() : s;
  }

  Status create_bulk_directory() {
    std::error_code ec;
    std::filesystem::create_directories(bulk_directory(), ec);
    if (ec) return Status::io_error("cannot create " + bulk_directory() + ": " + ec.message());
    return Status::ok();
  }

  const std::string dir_;
  const RocksDbOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  const rocksdb::Options rocks_options_ = db_->GetOptions();  // what a bulk part's files are built with
  std::mutex write_mu_;                                       // serializes commit, clear and ingest
  std::mutex bulk_mu_;                                        // guards bulk_files_ and bulk_expected_
  std::vector<std::string> bulk_files_;                       // finished parts' files, not ingested yet
  std::vector<ExpectedVersion> bulk_expected_;                // their puts' expected versions (live store)
  rocksdb::SequenceNumber bulk_checked_at_ = kNotChecked;     // the oldest state the parts checked them against
};

// A shard's part of a bulk load: its items and its dedup records, each an SST file.
class SstBulkPart final : public BulkPart {
 public:
  SstBulkPart(RocksDbStore& store, const std::string& prefix)
      : store_(store),
        dedup_options_(uncompressed(store.rocks_options_)),
        items_(store.rocks_options_, prefix + "-items.sst"),
        dedup_(dedup_options_, prefix + "-dedup.sst") {}

  Status add_puts(const std::vector<ConditionalPut>& puts) override {
    return guarded(items_.path(), "bulk put", [&] {
      Status s = validate(puts);
      if (s.is_ok()) s = expect(puts);
      for (std::size_t i = 0; s.is_ok() && i < puts.size(); ++i) {
        const ItemRecord& r = puts[i].record;
        s = store_.from_rocks(items_.put(prefixed(kItemPrefix, r.pk), encode_item(r)), "bulk put");
      }
      return s;
    });
  }

  Status add_dedup(const std::vector<DedupRecord>& records) override {
    return guarded(dedup_.path(), "bulk put", [&] {
      Status s;
      for (std::size_t i = 0; s.is_ok() && i < records.size(); ++i)
        s = store_.from_rocks(dedup_.put(prefixed(kDedupPrefix, dedup_record_key(records[i])), records[i].data),
                              "bulk put");
      return s;
    });
  }

  Status finish() override {
    return guarded(items_.path(), "bulk finish", [&] {
      for (SstFile* file : {&items_, &dedup_}) {
        bool written = false;
        Status s = store_.from_rocks(file->finish(&written), "bulk finish");
        if (!s.is_ok()) return s;
        if (written) store_.add_bulk_file(file->path());
      }
      store_.add_bulk_expectations(std::move(expected_), checked_at_);
      return Status::ok();
    });
  }

 private:
  // Dedup ids are mostly 128-bit hashes, which do not compress: LZ4 would only spend CPU.
  static rocksdb::Options uncompressed(rocksdb::Options options) {
    options.compression = rocksdb::kNoCompression;
    return options;
  }

  // A rebuild's store was cleared: it holds no item, so any other condition could not
  // hold. A live store's conditions are checked here, on the writer's thread (the parts
  // in parallel), and kept for the ingestion, which checks them again if anything was
  // written since.
  Status expect(const std::vector<ConditionalPut>& puts) {
    if (!store_.options_.bulk_load) {
      std::vector<ExpectedVersion> chunk;
      chunk.reserve(puts.size());
      for (const ConditionalPut& put : puts) chunk.push_back({put.record.pk, put.expected_version});
      rocksdb::SequenceNumber checked_at = kNotChecked;
      Status s = store_.check_expectations(chunk, &checked_at);
      checked_at_ = std::min(checked_at_, checked_at);
      expected_.insert(expected_.end(), std::make_move_iterator(chunk.begin()), std::make_move_iterator(chunk.end()));
      return s;
    }
    for (const ConditionalPut& put : puts)
      if (put.expected_version != 0)
        return Status::invalid_argument("bulk put of '" + printable(put.record.pk) + "' expects version " +
                                        std::to_string(put.expected_version) + " in a cleared store");
    return Status::ok();
  }

  RocksDbStore& store_;
  std::vector<ExpectedVersion> expected_;
  rocksdb::SequenceNumber checked_at_ = kNotChecked;  // the oldest state its chunks were checked against
  const rocksdb::Options dedup_options_;
  SstFile items_;
  SstFile dedup_;
};

Status RocksDbStore::open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) {
  return guarded(dir_, "open bulk part", [&] {
    Status created = create_bulk_directory();
    if (!created.is_ok()) return created;
    const std::string prefix = (std::filesystem::path(bulk_directory()) / ("part-" + std::to_string(part))).string();
    *out = std::make_unique<SstBulkPart>(*this, prefix);
    return Status::ok();
  });
}

// What a state directory holds, decided before RocksDB touches it.
enum class DirectoryState { absent_or_empty, database, incomplete };  // empty: or a creation cut short

// The files RocksDB writes while it creates a database, before CURRENT names it (and
// the info LOG of builds that kept one). A process killed then leaves only these: no
// data was written yet, so the creation is simply done again. A state that lost its
// CURRENT has more (write-ahead logs, SSTs, OPTIONS, a later MANIFEST).
bool is_creation_file(const std::string& name) {
  static const std::regex kNames(R"(LOCK|IDENTITY|MANIFEST-000001|\d+\.dbtmp|LOG(\.old\.\d+)?)");
  return std::regex_match(name, kNames);
}

DirectoryState directory_state(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return DirectoryState::absent_or_empty;
  if (std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) return DirectoryState::database;
  if (!std::filesystem::is_directory(dir, ec)) return DirectoryState::incomplete;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (!is_creation_file(entry.path().filename().string())) return DirectoryState::incomplete;
  return ec ? DirectoryState::incomplete : DirectoryState::absent_or_empty;
}

// A database is created only in an empty or absent directory (or over a creation cut
// short). Anything else without a CURRENT file is someone else's files, or a state whose
// CURRENT was lost: RocksDB would create a new, empty database among them (and delete
// the old SSTs at the next start).
Status check_directory(const std::string& dir, bool read_only, bool* create) {
  switch (directory_state(dir)) {
    case DirectoryState::database:
      *create = false;
      return Status::ok();
    case DirectoryState::absent_or_empty:
      *create = !read_only;
      if (!read_only) return Status::ok();
      return Status::not_found("state directory " + dir + " holds no RocksDB database (it is empty or absent)");
    case DirectoryState::incomplete:
      break;
  }
  return Status::invalid_argument(
      "state directory " + dir +
      " holds files but no RocksDB database (no CURRENT file): it is neither empty nor a "
      "complete state (damaged, or not a streamscore state); refusing to open or change it. Restore it, or move "
      "it away and rebuild it with `streamscore replay`");
}

// A read-only open takes no LOCK, so it asks whether another process holds it: a state
// being written is not read from under its writer.
bool lock_held_elsewhere(const std::string& dir) {
  const int fd = ::open((std::filesystem::path(dir) / "LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

Status open_db(const std::string& dir, RocksDbOptions options, std::unique_ptr<StateStore>* out) {
  bool create = false;
  Status checked = check_directory(dir, options.read_only, &create);
  if (!checked.is_ok()) return checked;
  if (options.read_only && lock_held_elsewhere(dir))
    return Status::io_error("state directory " + dir + " is in use (another process holds its LOCK)");
  std::error_code ec;
  if (create) std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create state directory " + dir + ": " + ec.message());
  rocksdb::Options rocks_options = make_options(options);
  rocks_options.create_if_missing = create;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = options.read_only ? rocksdb::DB::OpenForReadOnly(rocks_options, dir, &db)
                                        : rocksdb::DB::Open(rocks_options, dir, &db);
  if (is_lock_error(s))
    return Status::io_error("state directory " + dir +
                            " is in use (another process or open store holds its LOCK): " + s.ToString());
  if (!s.ok()) {
    std::string msg = "cannot open RocksDB state in " + dir + ": " + s.ToString();
    return s.IsCorruption() ? Status::corruption(msg) : Status::io_error(msg);
  }
  std::unique_ptr<rocksdb::DB> owned(db);  // closed by its destructor if anything below throws
  *out = std::make_unique<RocksDbStore>(dir, std::move(owned), options);
  return Status::ok();
}

}  // namespace

Status open_rocksdb_store(const std::string& dir, std::unique_ptr<StateStore>* out, RocksDbOptions options) {
  if (out == nullptr) return Status::invalid_argument("open_rocksdb_store: null out");
  if (dir.empty()) return Status::invalid_argument("open_rocksdb_store: empty directory");
  return guarded(dir, "open", [&] { return open_db(dir, options, out); });
}

}  // namespace streamscore
