// DynamoDB StateStore. Table layout (PK and SK are strings):
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

#include "state/dynamodb_store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "state/dynamodb_client.hpp"
#include "state/dynamodb_encoding.hpp"
#include "state/dynamodb_gc.hpp"
#include "state/dynamodb_partitions.hpp"
#include "state/shard_state.hpp"

namespace streamscore {

namespace json = boost::json;

namespace {

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

// ---------------------------------------------------------------- attribute values

json::object attr_s(std::string_view s) {
  return {{"S", json::string(s)}};
}
json::object attr_n(int64_t v) {
  return {{"N", std::to_string(v)}};
}
json::object attr_b(std::string_view bytes) {
  return {{"B", base64_encode(bytes)}};
}

json::object key_of(std::string_view pk, std::string_view sk) {
  return {{"PK", attr_s(pk)}, {"SK", attr_s(sk)}};
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

bool unhex(std::string_view text, std::string* bytes) {
  if (text.size() % 2) return false;
  bytes->clear();
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    auto r = std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
    if (r.ec != std::errc() || r.ptr != text.data() + i + 2) return false;
    bytes->push_back(static_cast<char>(v));
  }
  return true;
}

std::string hex_number(uint64_t v, int width) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  std::string digits(buf, r.ptr);
  return std::string(static_cast<std::size_t>(std::max(0, width - static_cast<int>(digits.size()))), '0') + digits;
}

// Reads attribute `name` of type `type` ("S", "N", "B", "BOOL") of an answer's item.
const json::value* attr(const json::object& item, std::string_view name, std::string_view type) {
  const json::value* a = item.if_contains(name);
  if (!a || !a->is_object()) return nullptr;
  return a->as_object().if_contains(type);
}

bool get_s(const json::object& item, std::string_view name, std::string* out) {
  const json::value* v = attr(item, name, "S");
  if (!v || !v->is_string()) return false;
  out->assign(v->as_string().data(), v->as_string().size());
  return true;
}

bool get_n(const json::object& item, std::string_view name, int64_t* out) {
  const json::value* v = attr(item, name, "N");
  if (!v || !v->is_string()) return false;
  const json::string& s = v->as_string();
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool get_b(const json::object& item, std::string_view name, std::string* out) {
  const json::value* v = attr(item, name, "B");
  if (!v || !v->is_string()) return false;
  return base64_decode(std::string_view(v->as_string().data(), v->as_string().size()), out);
}

bool is_true(const json::object& item, std::string_view name) {
  const json::value* v = attr(item, name, "BOOL");
  return v && v->is_bool() && v->as_bool();
}

// PKs are DynamoDB strings, which must be UTF-8; customer ids come from JSON strings.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0 || i + extra >= s.size() + (extra == 0 ? 1 : 0)) return false;
    if (c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out.push_back(static_cast<char>(c));
    else
      out += "\\x" + hex(std::string(1, static_cast<char>(c)));
  }
  return out;
}

// ---------------------------------------------------------------- item projection

// A JSON number as DynamoDB's N: integers as they are, doubles as the shortest decimal
// that reads back the same (fixed notation: DynamoDB keeps the value, not the spelling).
std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v.get_double(), std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

// The contract's attributes (section 4) out of the public item, so that DynamoDB readers
// see numbers and strings; attributes the item lacks are listed in `absent`.
void project_item(const std::string& item_json, json::object* set, std::vector<std::string>* absent) {
  static const char* kOptional[] = {"features", "last_event_time", "as_of", "score", "model_version"};
  json::error_code ec;
  json::value v = item_json.empty() ? json::value() : json::parse(item_json, ec);
  const json::object* item = !ec && v.is_object() ? &v.as_object() : nullptr;
  for (const char* name : kOptional) {
    const json::value* f = item ? item->if_contains(name) : nullptr;
    bool done = false;
    if (f && f->is_string()) {
      (*set)[name] = attr_s(f->as_string());
      done = true;
    } else if (f && f->is_number()) {
      (*set)[name] = json::object{{"N", number_text(*f)}};
      done = true;
    } else if (f && f->is_object()) {
      json::object m;
      for (const auto& kv : f->as_object())
        if (kv.value().is_number()) m[kv.key()] = json::object{{"N", number_text(kv.value())}};
      (*set)[name] = json::object{{"M", std::move(m)}};
      done = true;
    }
    if (!done) absent->push_back(name);
  }
}

// An upper bound of the stored item's size as DynamoDB counts it (names + values): the
// projection repeats at most the public item's bytes, and zstd grows incompressible
// data by at most 1/128 plus a header.
std::size_t item_size_bound(const ItemRecord& r, std::size_t writer_len) {
  const std::size_t data = r.item_json.size() + r.internal.size();
  return r.pk.size() + r.item_json.size() + data + data / 128 + writer_len + 512;
}

// ---------------------------------------------------------------- payload encoding

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t u64() {
    if (in.size() < 8) return ok = false, 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return v;
  }
  std::string str() {
    const uint64_t n = u64();
    if (!ok || n > in.size()) return ok = false, std::string();
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

// The redo log of the previous format (markers without `format`): the checked write set,
// uncompressed, each put in full. Read to finish a commit an older streamscore left.
bool decode_writes(std::string_view bytes, WriteSet* w) {
  Reader r{bytes};
  *w = WriteSet{};
  for (uint64_t n = r.u64(); r.ok && n > 0; --n) {
    ConditionalPut p;
    p.record.pk = r.str();
    p.expected_version = static_cast<int64_t>(r.u64());
    p.record.version = static_cast<int64_t>(r.u64());
    p.record.item_json = r.str();
    p.record.internal = r.str();
    w->puts.push_back(std::move(p));
  }
  for (uint64_t n = r.ok ? r.u64() : 0; r.ok && n > 0; --n) {
    MetaPut m;
    m.key = r.str();
    m.value = r.str();
    w->meta.push_back(std::move(m));
  }
  for (uint64_t n = r.ok ? r.u64() : 0; r.ok && n > 0; --n) {
    DedupRecord d;
    const std::string key = r.str();
    if (!parse_dedup_record_key(key, &d)) return false;
    d.data = r.str();
    w->dedup.push_back(std::move(d));
  }
  w->forget_dedup_before_day = static_cast<int64_t>(r.u64());
  return r.ok && r.in.empty();
}

std::vector<std::string_view> split(std::string_view bytes, std::size_t size) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at < bytes.size(); at += size) out.push_back(bytes.substr(at, size));
  if (out.empty()) out.push_back(bytes);
  return out;
}

// ---------------------------------------------------------------- the store

// The keys one writer's data lives under.
struct WriterKeys {
  std::string name;
  std::string log_pk;    // "LOG#<writer>": the marker; its chunks under "LOG#<writer>#<p>"
  std::string stamp;     // "w#<writer>": the attribute of the items it wrote
  std::string dedup_pk;  // "DEDUP#<writer>"
  std::string meta_pk;   // "META#<writer>": its own meta values (clock, checkpoint, ...)
};

WriterKeys keys_of_writer(const std::string& name) {
  return {name, "LOG#" + name, "w#" + name, "DEDUP#" + name, std::string(kMetaPk) + "#" + name};
}

class DynamoDbStore final : public StateStore, private GcTable {
 public:
  DynamoDbStore(const DynamoDbOptions& options, AwsCredentials credentials)
      : client_(options, std::move(credentials)), self_(keys_of_writer(options.writer)) {}

  Status open() {
    return guarded("open", [&] {
      Status s = check_table();
      if (!s.is_ok() || (!options().bulk_load && !(s = check_layout()).is_ok()) || !(s = register_writer()).is_ok() ||
          !(s = load_partition_index()).is_ok())
        return s;
      if (options().bulk_load) return Status::ok();
      if (!(s = find_backfill_parts()).is_ok()) return s;
      return recover_writer(self_, /*own=*/true);
    });
  }

  // A daemon taking over partitions finishes the commits that dead writers left
  // between their commit point and the end of their apply, before it reads.
  Status recover_other_writers() override {
    return guarded("recover_other_writers", [&] {
      std::vector<std::string> writers;
      Status s = list_writers(&writers);
      for (std::size_t i = 0; s.is_ok() && i < writers.size(); ++i)
        if (writers[i] != self_.name) s = recover_writer(keys_of_writer(writers[i]), /*own=*/false);
      return s;
    });
  }

  // Fencing (semantics.md, section 21): a new lease for this writer, then each partition
  // claimed under it, and the writer that held it under an older lease fenced. The writer's
  // commit point requires its marker to still carry its lease, so a fenced writer's commit
  // that has not reached it never lands; one that has is finished by recover_other_writers().
  // A partition kept from its previous takeover is claimed again only while it still names
  // this writer: one stopped past its session may not take it back from its new holder.
  Status take_over(const std::vector<std::string>& partitions) override {
    return guarded("take_over", [&] {
      std::lock_guard<std::mutex> lock(commit_mu_);  // no commit of this writer in between
      int64_t lease = 0;
      Status s = next_lease(&lease);
      if (!s.is_ok() || !(s = set_own_lease(lease)).is_ok()) return s;
      lease_ = lease;
      for (const std::string& partition : partitions) {
        std::string holder;
        int64_t held_under = 0;
        const bool kept = claimed_.count(partition) > 0;
        if (!(s = claim(partition, lease, kept, &holder, &held_under)).is_ok()) {
          if (!s.is_fenced()) return s;
          // Outdated: the marker carries the new lease already, taken away again so that
          // nothing of this writer lands; its rejoin starts from a lease that holds nothing.
          claimed_.clear();
          return fence_self(lease, s);
        }
        if (!holder.empty() && holder != self_.name && !(s = fence(holder, held_under)).is_ok()) return s;
      }
      claimed_ = std::set<std::string>(partitions.begin(), partitions.end());
      return Status::ok();
    });
  }

  Status get(std::string_view pk, ItemRecord* out) override {
    return guarded("get", [&] { return get_item(pk, out); });
  }

  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override {
    return guarded("commit", [&] { return do_commit(writes, conflicts); });
  }

  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override {
    return guarded("scan_dedup", [&] { return do_scan_dedup(fn); });
  }

  Status scan(const std::function<bool(const ItemRecord&)>& fn) override {
    return guarded("scan", [&] { return do_scan(fn); });
  }

  Status scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                         const std::function<bool(const DedupRecord&)>& dedup_fn) override {
    if (scope.count <= 0) return StateStore::scan_partitions(scope, item_fn, dedup_fn);
    return guarded("scan_partitions", [&] { return do_scan_partitions(scope, item_fn, dedup_fn); });
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    return guarded("put_meta", [&] {
      Status s = check_meta(key, value);
      if (!s.is_ok()) return s;
      json::object reply;
      return client_.call("PutItem", {{"TableName", table()}, {"Item", meta_item(self_, key, value, next_sequence())}},
                          &reply);
    });
  }

  Status get_meta(std::string_view key, std::string* value) override {
    return guarded("get_meta", [&] {
      json::object item;
      Status s = get_raw(meta_pk(self_, key), hex(key), &item);
      for (std::size_t i = 0; s.is_not_found() && !is_table_meta(key) && i < parts_.size(); ++i)
        s = get_raw(parts_[i].meta_pk, hex(key), &item);  // not written yet: the backfill's
      if (!s.is_ok()) return s.is_not_found() ? Status::not_found("meta key " + printable(key)) : s;
      if (!get_b(item, "value", value)) return Status::corruption("meta key " + printable(key) + " has no value");
      return Status::ok();
    });
  }

  Status clear() override {
    return guarded("clear", [&] { return do_clear(); });
  }

  bool local_scans() const override { return false; }

  // Every acknowledged DynamoDB write is durable already.
  Status sync() override { return Status::ok(); }

  std::vector<Counter> counters() const override { return options().metrics->counters(); }

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

  Status check_table() {
    json::object reply;
    ApiError e;
    Status s = client_.call("DescribeTable", {{"TableName", table()}}, &reply, &e);
    if (e.type == "ResourceNotFoundException")
      return Status::io_error("DynamoDB table '" + table() + "' does not exist at " + options().endpoint +
                              ": create it with 'streamscore dynamodb create-table'");
    return s;
  }

  // ------------------------------------------------------------ single items

  Status get_raw(std::string_view pk, std::string_view sk, json::object* item) {
    json::object reply;
    Status s =
        client_.call("GetItem", {{"TableName", table()}, {"Key", key_of(pk, sk)}, {"ConsistentRead", true}}, &reply);
    if (!s.is_ok()) return s;
    const json::value* it = reply.if_contains("Item");
    if (!it || !it->is_object()) return Status::not_found();
    *item = std::move(it->as_object());
    return Status::ok();
  }

  // Items of this format keep the public item and the internal data in `data`; those of
  // the previous one in `item_json` and `state` (rewritten in this format when written).
  Status decode_item(const json::object& item, ItemRecord* out) {
    if (!get_s(item, "PK", &out->pk)) return Status::corruption("DynamoDB item without a string PK");
    const bool has_version = get_n(item, "version", &out->version) && out->version >= 0;
    std::string data;
    if (has_version && get_b(item, "data", &data)) {
      Status s = decode_item_data(data, kItemLimit, &out->item_json, &out->internal);
      return s.is_ok() ? s : Status::corruption("DynamoDB item '" + printable(out->pk) + "': " + s.message());
    }
    if (!has_version || !get_b(item, "item_json", &out->item_json) || !get_b(item, "state", &out->internal))
      return Status::corruption("DynamoDB item '" + printable(out->pk) +
                                "' is malformed: needs version (N >= 0) and data (B), or item_json (B) and state (B)");
    return Status::ok();
  }

  Status get_item(std::string_view pk, ItemRecord* out) {
    json::object item;
    Status s = get_raw(pk, kItemSk, &item);
    if (s.is_not_found()) return Status::not_found("item " + printable(pk));
    return s.is_ok() ? decode_item(item, out) : s;
  }

  static std::string meta_pk(const WriterKeys& w, std::string_view key) {
    return is_table_meta(key) ? std::string(kMetaPk) : w.meta_pk;
  }

  // `seq`: the commit (or, for put_meta, a sequence above the last commit) that wrote the
  // value, so that finishing another writer's older commit never moves a value back.
  json::object meta_item(const WriterKeys& w, std::string_view key, std::string_view value, uint64_t seq) {
    json::object item = key_of(meta_pk(w, key), hex(key));
    item["value"] = attr_b(value);
    item["seq"] = attr_n(static_cast<int64_t>(seq));
    return item;
  }

  Status check_meta(std::string_view key, std::string_view value) {
    if (2 * key.size() + value.size() + 64 > kItemLimit)
      return Status::invalid_argument("meta key " + printable(key) + ": " + std::to_string(value.size()) +
                                      " bytes do not fit one DynamoDB item (400 KB)");
    return Status::ok();
  }

  // ------------------------------------------------------------ batches

  // Sends `pending` with `send` until nothing comes back unprocessed (a batch's throttled
  // part is a success answer), backing off before each round like a throttled request.
  Status until_processed(const char* op, json::array pending,
                         const std::function<Status(json::array batch, json::array* unprocessed)>& send) {
    for (int attempt = 1; !pending.empty(); ++attempt) {
      if (attempt > 1) {
        if (attempt > options().max_attempts)
          return Status::io_error("DynamoDB " + std::string(op) + ": still unprocessed after " +
                                  std::to_string(options().max_attempts) + " attempts");
        metrics().throttles.fetch_add(1, std::memory_order_relaxed);
        client_.backoff(attempt - 1);
      }
      json::array unprocessed;
      Status s = send(std::move(pending), &unprocessed);
      if (!s.is_ok()) return s;
      pending = std::move(unprocessed);
    }
    return Status::ok();
  }

  // `reply[field][table]` (the part of a batch answer about this table), or null.
  json::value* table_part(json::object& reply, const char* field) {
    json::value* v = reply.if_contains(field);
    return v && v->is_object() ? v->as_object().if_contains(table()) : nullptr;
  }

  // Runs `fn` on slices of at most `size` of `all`, in parallel.
  Status in_groups(const std::vector<json::object>& all, std::size_t size,
                   const std::function<Status(json::array group)>& fn) {
    const std::size_t groups = (all.size() + size - 1) / size;
    return parallel_for(groups, options().parallel_requests, [&](std::size_t g) {
      json::array group;
      for (std::size_t i = g * size; i < std::min(all.size(), (g + 1) * size); ++i) group.push_back(all[i]);
      return fn(std::move(group));
    });
  }

  // BatchWriteItem in requests of 25, in parallel.
  Status batch_write(const std::vector<json::object>& requests) {
    return in_groups(requests, kBatchWrite, [&](json::array group) {
      return until_processed("BatchWriteItem", std::move(group), [&](json::array batch, json::array* unprocessed) {
        json::object reply;
        Status s = client_.call("BatchWriteItem", {{"RequestItems", {{table(), std::move(batch)}}}}, &reply);
        if (json::value* u = s.is_ok() ? table_part(reply, "UnprocessedItems") : nullptr; u && u->is_array())
          *unprocessed = std::move(u->as_array());
        return s;
      });
    });
  }

  static json::object put_request(json::object item) { return {{"PutRequest", {{"Item", std::move(item)}}}}; }
  static json::object delete_request(json::object key) { return {{"DeleteRequest", {{"Key", std::move(key)}}}}; }

  // BatchGetItem of the (distinct) keys, 100 per request, in parallel; `fn` gets each item
  // found (from several threads: it locks what it shares).
  Status batch_get(const std::vector<json::object>& keys, const char* projection,
                   const std::function<void(json::object&)>& fn) {
    return in_groups(keys, kBatchGet, [&](json::array group) {
      return until_processed("BatchGetItem", std::move(group), [&](json::array batch, json::array* unprocessed) {
        json::object request{{"Keys", std::move(batch)}, {"ConsistentRead", true}};
        if (projection) {
          request["ProjectionExpression"] = projection;
          request["ExpressionAttributeNames"] = {{"#pk", "PK"}, {"#v", "version"}};
        }
        json::object reply;
        Status s = client_.call("BatchGetItem", {{"RequestItems", {{table(), std::move(request)}}}}, &reply);
        if (!s.is_ok()) return s;
        if (json::value* mine = table_part(reply, "Responses"); mine && mine->is_array()) {
          metrics().rows_read.fetch_add(mine->as_array().size(), std::memory_order_relaxed);
          for (json::value& item : mine->as_array())
            if (item.is_object()) fn(item.as_object());
        }
        if (json::value* u = table_part(reply, "UnprocessedKeys"); u && u->is_object())
          if (json::value* k = u->as_object().if_contains("Keys"); k && k->is_array())
            *unprocessed = std::move(k->as_array());
        return Status::ok();
      });
    });
  }

  // Query of one partition (ascending SK), every page; `fn` gets each item.
  Status query(json::object request, const std::function<Status(json::object&)>& fn) {
    request["TableName"] = table();
    request["ConsistentRead"] = true;
    for (;;) {
      json::object reply;
      Status s = client_.call("Query", request, &reply);
      if (!s.is_ok()) return s;
      count_rows_read(reply);
      if (json::value* items = reply.if_contains("Items"); items && items->is_array())
        for (json::value& item : items->as_array())
          if (item.is_object() && !(s = fn(item.as_object())).is_ok()) return s;
      json::value* last = reply.if_contains("LastEvaluatedKey");
      if (!last || !last->is_object()) return Status::ok();
      request["ExclusiveStartKey"] = std::move(*last);
    }
  }

  // What a Scan or Query page read (and is billed for), filtered out or not.
  void count_rows_read(const json::object& reply) {
    int64_t scanned = 0;
    if (const json::value* n = reply.if_contains("ScannedCount"); n && n->is_int64()) scanned = n->as_int64();
    metrics().rows_read.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, scanned)), std::memory_order_relaxed);
  }

  // Scan of the whole table, every page, keys only; `items_only`: the rows with SK
  // "STATE" (no META, DEDUP or LOG row has that SK).
  Status scan_keys(bool items_only, std::vector<std::pair<std::string, std::string>>* keys) {
    json::object request{{"TableName", table()},
                         {"ProjectionExpression", "#pk, #sk"},
                         {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}}};
    if (items_only) {
      request["FilterExpression"] = "#sk = :s";
      request["ExpressionAttributeValues"] = {{":s", attr_s(kItemSk)}};
    }
    for (;;) {
      json::object reply;
      Status s = client_.call("Scan", request, &reply);
      if (!s.is_ok()) return s;
      count_rows_read(reply);
      if (json::value* items = reply.if_contains("Items"); items && items->is_array())
        for (json::value& item : items->as_array()) {
          std::string pk, sk;
          if (item.is_object() && get_s(item.as_object(), "PK", &pk) && get_s(item.as_object(), "SK", &sk))
            keys->emplace_back(std::move(pk), std::move(sk));
        }
      json::value* last = reply.if_contains("LastEvaluatedKey");
      if (!last || !last->is_object()) return Status::ok();
      request["ExclusiveStartKey"] = std::move(*last);
    }
  }

  // ------------------------------------------------------------ commit

  // validate_puts, plus what a DynamoDB item can hold.
  Status validate(const WriteSet& w) {
    Status s = validate_puts(w.puts);
    if (!s.is_ok()) return s;
    for (std::size_t i = 0; i < w.puts.size(); ++i) {
      const ItemRecord& r = w.puts[i].record;
      if (!is_utf8(r.pk))
        return Status::invalid_argument("put " + std::to_string(i) + ": PK '" + printable(r.pk) +
                                        "' is not UTF-8 (DynamoDB keys are strings)");
      const std::size_t size = item_size_bound(r, self_.stamp.size());
      if (size > kItemLimit) {
        const std::string_view customer_id = customer_id_of_pk(r.pk);
        const std::string id(customer_id.empty() ? std::string_view(r.pk) : customer_id);
        return Status::invalid_argument("customer '" + printable(id) + "': its item needs up to " +
                                        std::to_string(size) + " bytes, over DynamoDB's 400 KB item limit");
      }
    }
    for (const MetaPut& m : w.meta)
      if (!(s = check_meta(m.key, m.value)).is_ok()) return s;
    return Status::ok();
  }

  // The stored items of the distinct PKs of `puts` (absent: version 0, no internal data),
  // one consistent read each. Whole items: DynamoDB bills a read by the item's size, not
  // by what it returns, and the redo log needs their internal data (the deltas' bases).
  Status read_stored(const std::vector<ConditionalPut>& puts, std::map<std::string, ItemRecord>* stored) {
    for (const ConditionalPut& p : puts) (*stored)[p.record.pk].pk = p.record.pk;
    std::vector<json::object> keys;
    for (const auto& kv : *stored) keys.push_back(key_of(kv.first, kItemSk));
    std::mutex mu;
    Status bad;
    Status s = batch_get(keys, nullptr, [&](json::object& item) {
      ItemRecord r;
      Status d = decode_item(item, &r);
      std::lock_guard<std::mutex> lock(mu);
      if (!d.is_ok())
        bad = d;
      else
        (*stored)[r.pk] = std::move(r);
    });
    return s.is_ok() ? bad : s;
  }

  // The sequential check of StateStore::commit; also collapses the puts to one per PK
  // (expected: the first put's, record: the last put's). `bases`: the stored internal data
  // each checked put replaces.
  Status check(const WriteSet& writes, std::vector<std::size_t>* conflicts, WriteSet* checked,
               std::vector<std::string>* bases) {
    std::map<std::string, ItemRecord> stored;
    Status s = read_stored(writes.puts, &stored);
    if (!s.is_ok()) return s;
    std::map<std::string, int64_t> versions;
    for (const auto& [pk, record] : stored) versions[pk] = record.version;
    std::map<std::string, std::size_t> index;  // pk -> position in checked->puts
    for (std::size_t i = 0; i < writes.puts.size(); ++i) {
      const ConditionalPut& p = writes.puts[i];
      int64_t& current = versions[p.record.pk];
      if (current != p.expected_version) {
        conflicts->push_back(i);
        continue;
      }
      current = p.record.version;
      auto [it, fresh] = index.emplace(p.record.pk, checked->puts.size());
      if (fresh) {
        checked->puts.push_back(p);
        bases->push_back(std::move(stored[p.record.pk].internal));
      } else {
        checked->puts[it->second].record = p.record;
      }
    }
    // One BatchWriteItem may not name a key twice: the last value of a meta key wins.
    std::map<std::string, std::size_t> meta_at;
    for (const MetaPut& m : writes.meta) {
      auto [it, fresh] = meta_at.emplace(m.key, checked->meta.size());
      if (fresh)
        checked->meta.push_back(m);
      else
        checked->meta[it->second].value = m.value;
    }
    checked->dedup = writes.dedup;
    checked->forget_dedup_before_day = writes.forget_dedup_before_day;
    checked->forget_partition_dedup_before_day = writes.forget_partition_dedup_before_day;
    return Status::ok();
  }

  Status do_commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) {
    conflicts->clear();
    Status s = validate(writes);
    if (!s.is_ok()) return s;
    if (writes.puts.empty() && writes.meta.empty() && writes.dedup.empty() &&
        writes.forget_dedup_before_day == kNoDay && writes.forget_partition_dedup_before_day.empty())
      return Status::ok();
    // One item alone is atomic in DynamoDB: a conditional write, no log.
    if (writes.puts.size() == 1 && writes.meta.empty() && writes.dedup.empty() &&
        writes.forget_dedup_before_day == kNoDay && writes.forget_partition_dedup_before_day.empty())
      return put_alone(writes.puts[0], conflicts);
    WriteSet checked;
    std::vector<std::string> bases;
    if (options().bulk_load) {  // the shards of a rebuild flush disjoint customers in parallel
      if (!(s = check(writes, conflicts, &checked, &bases)).is_ok() || !conflicts->empty()) return s;
      return apply(self_, checked, 0, 0);
    }
    // One commit at a time: one log sequence per writer, and a commit checks against
    // what the previous one of this process applied.
    std::lock_guard<std::mutex> lock(commit_mu_);
    if (!(s = check(writes, conflicts, &checked, &bases)).is_ok() || !conflicts->empty()) return s;
    if ((s = commit_logged(checked, bases)).is_ok()) collect_garbage(checked.forget_dedup_before_day);
    return s;
  }

  Status put_alone(const ConditionalPut& put, std::vector<std::size_t>* conflicts) {
    json::object reply;
    Status s = client_.call("UpdateItem", update_request(self_, put, 0), &reply);
    if (s.is_conflict()) {
      conflicts->push_back(0);
      return Status::ok();
    }
    return s;
  }

  // The item write of a put: every attribute it owns set (or removed), conditional on the
  // expected version and, for a redo-log sequence `seq` > 0, on not being applied yet.
  json::object update_request(const WriterKeys& w, const ConditionalPut& put, uint64_t seq) {
    const ItemRecord& r = put.record;
    json::object set{{"version", attr_n(r.version)}, {"data", attr_b(encode_item_data(r.item_json, r.internal))}};
    std::vector<std::string> absent{"item_json", "state"};  // the previous format's copies
    project_item(r.item_json, &set, &absent);
    json::object names{{"#v", "version"}};
    json::object values{{":e", attr_n(put.expected_version)}};
    std::string update = "SET ";
    int n = 0;
    for (auto& kv : set) {
      const std::string name = "#a" + std::to_string(n), value = ":a" + std::to_string(n);
      update += (n++ ? ", " : "") + name + " = " + value;
      names[name] = kv.key();
      values[value] = std::move(kv.value());
    }
    std::string condition = put.expected_version == 0 ? "(attribute_not_exists(PK) OR #v = :e)" : "#v = :e";
    if (seq > 0) {
      update += ", #w = :seq";
      condition += " AND (attribute_not_exists(#w) OR #w < :seq)";
      names["#w"] = w.stamp;
      values[":seq"] = attr_n(static_cast<int64_t>(seq));
    }
    for (std::size_t i = 0; i < absent.size(); ++i) {
      const std::string name = "#r" + std::to_string(i);
      update += (i ? ", " : " REMOVE ") + name;
      names[name] = absent[i];
    }
    return {{"TableName", table()},
            {"Key", key_of(r.pk, kItemSk)},
            {"UpdateExpression", update},
            {"ConditionExpression", condition},
            {"ExpressionAttributeNames", std::move(names)},
            {"ExpressionAttributeValues", std::move(values)}};
  }

  // ------------------------------------------------------------ leases (fencing)

  // The table's lease counter, one up: leases only grow, whoever takes them.
  Status next_lease(int64_t* lease) {
    json::object reply;
    Status s = client_.call("UpdateItem",
                            {{"TableName", table()},
                             {"Key", key_of(kOwnersPk, kLeaseCounterSk)},
                             {"UpdateExpression", "ADD #n :one"},
                             {"ExpressionAttributeNames", {{"#n", "n"}}},
                             {"ExpressionAttributeValues", {{":one", attr_n(1)}}},
                             {"ReturnValues", "UPDATED_NEW"}},
                            &reply);
    if (!s.is_ok()) return s;
    const json::value* attributes = reply.if_contains("Attributes");
    if (!attributes || !attributes->is_object() || !get_n(attributes->as_object(), "n", lease))
      return Status::corruption("DynamoDB table '" + table() + "': the lease counter is not a number");
    return Status::ok();
  }

  // This writer's marker carries its lease; other attributes (a commit in progress) stay.
  Status set_own_lease(int64_t lease) {
    json::object reply;
    return client_.call("UpdateItem",
                        {{"TableName", table()},
                         {"Key", key_of(self_.log_pk, kMarkerSk)},
                         {"UpdateExpression", "SET #l = :l"},
                         {"ExpressionAttributeNames", {{"#l", "lease"}}},
                         {"ExpressionAttributeValues", {{":l", attr_n(lease)}}}},
                        &reply);
  }

  // Records this writer as `partition`'s holder under `lease`, returning the previous holder
  // and its lease. A holder under a newer lease means this takeover is already outdated; so
  // does another holder of a partition `kept` from this writer's previous takeover.
  Status claim(const std::string& partition, int64_t lease, bool kept, std::string* holder, int64_t* held_under) {
    json::object reply;
    Status s =
        client_.call("UpdateItem",
                     {{"TableName", table()},
                      {"Key", key_of(kOwnersPk, partition)},
                      {"UpdateExpression", "SET #w = :w, #l = :l"},
                      {"ConditionExpression", kept ? "#w = :w AND #l < :l" : "attribute_not_exists(#l) OR #l < :l"},
                      {"ExpressionAttributeNames", {{"#w", "writer"}, {"#l", "lease"}}},
                      {"ExpressionAttributeValues", {{":w", attr_s(self_.name)}, {":l", attr_n(lease)}}},
                      {"ReturnValues", "ALL_OLD"}},
                     &reply);
    if (s.is_conflict()) {
      metrics().fenced.fetch_add(1, std::memory_order_relaxed);
      return Status::fenced("writer '" + self_.name + "' cannot take " + partition +
                            (kept ? ": another writer took it over while this one held it"
                                  : ": another writer took it under a newer lease"));
    }
    if (!s.is_ok()) return s;
    const json::value* old = reply.if_contains("Attributes");
    if (old && old->is_object()) {
      get_s(old->as_object(), "writer", holder);
      get_n(old->as_object(), "lease", held_under);
    }
    return Status::ok();
  }

  // Takes `holder`'s lease away if it still is the one it held the partition under (a
  // holder that took a new lease since has let the partition go, through a revocation).
  Status fence(const std::string& holder, int64_t held_under) {
    json::object reply;
    Status s = client_.call("UpdateItem",
                            {{"TableName", table()},
                             {"Key", key_of(keys_of_writer(holder).log_pk, kMarkerSk)},
                             {"UpdateExpression", "SET #l = :fenced"},
                             {"ConditionExpression", "#l = :held"},
                             {"ExpressionAttributeNames", {{"#l", "lease"}}},
                             {"ExpressionAttributeValues", {{":fenced", attr_n(0)}, {":held", attr_n(held_under)}}}},
                            &reply);
    return s.is_conflict() ? Status::ok() : s;
  }

  // Takes this writer's own `lease` away (as another writer's fence would), returning `why`.
  Status fence_self(int64_t lease, const Status& why) {
    const Status s = fence(self_.name, lease);
    return s.is_ok() ? why : s;
  }

  // Why the commit point's condition failed: this writer's lease was taken (fenced), or
  // another process commits under its name.
  Status marker_refused() {
    json::object marker;
    int64_t lease = 0;
    Status s = get_raw(self_.log_pk, kMarkerSk, &marker);
    if (!s.is_ok() && !s.is_not_found()) return s;
    if (s.is_not_found() || is_true(marker, "gc")) return collected();
    get_n(marker, "lease", &lease);
    if (s.is_ok() && lease != lease_) {
      metrics().fenced.fetch_add(1, std::memory_order_relaxed);
      return Status::fenced("writer '" + self_.name +
                            "' was fenced: another writer took over its partitions; "
                            "the checkpoint was not written");
    }
    return Status::io_error("DynamoDB table '" + table() + "': another process commits as writer '" + options().writer +
                            "' (its commit marker moved); one writer name per process");
  }

  // This writer was found gone and removed (or is being removed) by another writer
  // (semantics.md, section 21). Its next commit starts a new marker; a group member rejoins
  // as a fenced one does, anything else stops: its clock and positions went with it.
  Status collected() {
    last_seq_ = 0;
    const std::string what = "writer '" + self_.name + "' was removed from table '" + table() +
                             "' as gone (no commit for state.gc_idle, its dedup ids past the horizon); "
                             "the checkpoint was not written";
    if (lease_ == 0) return Status::io_error(what + "; its clock and source position went with it");
    metrics().fenced.fetch_add(1, std::memory_order_relaxed);
    return Status::fenced(what);
  }

  // ------------------------------------------------------------ the redo log

  uint64_t next_sequence() {
    // At least the wall clock in microseconds: a marker lost by hand cannot make a new
    // commit reuse a sequence that items were already stamped with.
    const uint64_t now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    return std::max(last_seq_ + 1, now);
  }

  static std::string chunk_pk(const WriterKeys& w, std::size_t i) {
    return w.log_pk + "#" + hex_number(i % kLogPartitions, 1);
  }

  std::string chunk_sk(uint64_t seq, std::size_t i) const {
    return "chunk#" + hex_number(seq, 16) + "#" + hex_number(i, 6);
  }

  Status stopped(CommitStage stage) {
    return Status::io_error(std::string("stopped by the test hook after ") +
                            (stage == CommitStage::log_written ? "writing the log"
                             : stage == CommitStage::committed ? "the commit point"
                                                               : "applying"));
  }

  Status commit_logged(const WriteSet& checked, const std::vector<std::string>& bases) {
    const uint64_t seq = next_sequence();
    const std::string payload = encode_redo_log(checked, bases);
    const bool inline_payload = payload.size() <= kChunkBytes;
    const std::vector<std::string_view> chunks = split(payload, kChunkBytes);
    // (0) a new marker: listed among the writers first (a collector removed the entry of a
    // member that rejoins), or a takeover would never finish a commit of it that stopped
    Status s;
    if (last_seq_ == 0 && !(s = register_writer()).is_ok()) return s;
    // (1) the log, unless the marker can carry it
    if (!inline_payload) {
      std::vector<json::object> puts;
      for (std::size_t i = 0; i < chunks.size(); ++i) {
        json::object item = key_of(chunk_pk(self_, i), chunk_sk(seq, i));
        item["data"] = attr_b(chunks[i]);
        puts.push_back(put_request(std::move(item)));
      }
      if (!(s = batch_write(puts)).is_ok()) return s;
    }
    if (options().test_stop_after == CommitStage::log_written) return stopped(CommitStage::log_written);
    // (2) the commit point: the marker, only over the last marker this process knows of,
    // and only while it still carries this writer's lease (not fenced)
    json::object names{{"#s", "seq"},   {"#p", "pending"},       {"#c", "chunks"}, {"#i", "inline"},
                       {"#l", "lease"}, {"#cl", "commit_lease"}, {"#gc", "gc"},    {"#f", "format"}};
    json::object values{{":seq", attr_n(static_cast<int64_t>(seq))},
                        {":f", attr_n(kLogFormat)},
                        {":yes", {{"BOOL", true}}},
                        {":c", attr_n(inline_payload ? 0 : static_cast<int64_t>(chunks.size()))},
                        {":cl", attr_n(lease_)},
                        {":prev", attr_n(static_cast<int64_t>(last_seq_))},
                        {":no", {{"BOOL", false}}}};
    std::string update = "SET #s = :seq, #p = :yes, #c = :c, #cl = :cl, #f = :f";
    if (inline_payload) {
      update += ", #i = :i";
      values[":i"] = attr_b(payload);
    } else {
      update += " REMOVE #i";
    }
    // A marker that vanished under a writer that has committed or holds a lease was
    // removed by a collector (it was gone): its commit must not land on a fresh marker.
    std::string condition =
        last_seq_ == 0 ? "(attribute_not_exists(#s) OR (#s = :prev AND #p = :no))" : "#s = :prev AND #p = :no";
    condition += lease_ == 0 ? " AND (attribute_not_exists(#l) OR #l = :cl)" : " AND #l = :cl";
    condition += " AND attribute_not_exists(#gc)";  // not marked gone by a collector
    json::object reply;
    s = client_.call("UpdateItem",
                     {{"TableName", table()},
                      {"Key", key_of(self_.log_pk, kMarkerSk)},
                      {"UpdateExpression", update},
                      {"ConditionExpression", condition},
                      {"ExpressionAttributeNames", std::move(names)},
                      {"ExpressionAttributeValues", std::move(values)}},
                     &reply);
    if (s.is_conflict()) return marker_refused();
    if (!s.is_ok()) return s;
    last_seq_ = seq;
    if (options().test_stop_after == CommitStage::committed) return stopped(CommitStage::committed);
    // (3) apply, (4) mark applied, drop the log
    if (!(s = apply(self_, checked, seq, lease_)).is_ok()) return s;
    if (options().test_stop_after == CommitStage::applied) return stopped(CommitStage::applied);
    return finish(self_, seq, inline_payload ? 0 : chunks.size());
  }

  // Marks commit `seq` of writer `w` applied and drops its log. For another writer's
  // commit (a takeover), a marker that moved means its owner finished it: nothing to do.
  Status finish(const WriterKeys& w, uint64_t seq, std::size_t chunks) {
    json::object reply;
    Status s = client_.call(
        "UpdateItem",
        {{"TableName", table()},
         {"Key", key_of(w.log_pk, kMarkerSk)},
         {"UpdateExpression", "SET #p = :no REMOVE #i"},
         {"ConditionExpression", "#s = :seq"},
         {"ExpressionAttributeNames", {{"#p", "pending"}, {"#i", "inline"}, {"#s", "seq"}}},
         {"ExpressionAttributeValues", {{":no", {{"BOOL", false}}}, {":seq", attr_n(static_cast<int64_t>(seq))}}}},
        &reply);
    if (s.is_conflict() && w.name != self_.name) return Status::ok();
    if (s.is_conflict())
      return Status::io_error("DynamoDB table '" + table() + "': the commit marker of writer '" + options().writer +
                              "' moved while applying; one writer name per process");
    if (!s.is_ok()) return s;
    std::vector<json::object> deletes;
    for (std::size_t i = 0; i < chunks; ++i)
      deletes.push_back(delete_request(key_of(chunk_pk(w, i), chunk_sk(seq, i))));
    return batch_write(deletes);
  }

  // Applies a checked write set; idempotent for seq > 0 (a redo after a crash skips what
  // is stamped already). Dedup records first (forget, then new ones: the order RocksDB's
  // batch gives), then items, then meta last, so that a bulk load's "complete" comes last.
  Status apply(const WriterKeys& writer, const WriteSet& w, uint64_t seq, int64_t lease) {
    Status s = forget_dedup(writer, w.forget_dedup_before_day);
    if (!s.is_ok() || !(s = forget_partition_dedup(w.forget_partition_dedup_before_day)).is_ok()) return s;
    std::vector<json::object> dedup;
    for (const DedupRecord& r : w.dedup)
      if (!(s = dedup_items(writer, r, partition_count_, &dedup)).is_ok()) return s;
    if (partition_count_ > 0) index_new_customers(w.puts, partition_count_, &dedup);
    if (!(s = batch_write(dedup)).is_ok()) return s;
    s = parallel_for(w.puts.size(), options().parallel_requests,
                     [&](std::size_t i) { return apply_put(writer, w.puts[i], seq); });
    if (!s.is_ok()) return s;
    std::vector<MetaPut> own_meta, table_meta;
    for (const MetaPut& m : w.meta) (is_table_meta(m.key) ? table_meta : own_meta).push_back(m);
    if (!(s = put_meta_if_newer(writer, table_meta, seq, lease)).is_ok()) return s;
    if (writer.name != self_.name) return put_meta_if_newer(writer, own_meta, seq, 0);
    std::vector<json::object> meta;
    for (const MetaPut& m : own_meta) meta.push_back(put_request(meta_item(writer, m.key, m.value, seq)));
    return batch_write(meta);
  }

  // Each value is written only over one from an older (or the same) commit: a commit
  // finished by another writer may be redone by its own, alive and further on meanwhile.
  // The table's values (the partitions' offsets) go by lease first: a fenced writer's
  // redo never moves an offset that the partition's new holder has written back.
  Status put_meta_if_newer(const WriterKeys& w, const std::vector<MetaPut>& meta, uint64_t seq, int64_t lease) {
    return parallel_for(meta.size(), options().parallel_requests, [&](std::size_t i) {
      const MetaPut& m = meta[i];
      json::object item = meta_item(w, m.key, m.value, seq);
      if (lease > 0) item["lease"] = attr_n(lease);
      json::object reply;
      Status s = client_.call(
          "PutItem",
          {{"TableName", table()},
           {"Item", std::move(item)},
           {"ConditionExpression",
            "attribute_not_exists(#l) OR #l < :l OR (#l = :l AND (attribute_not_exists(#s) OR #s <= :seq))"},
           {"ExpressionAttributeNames", {{"#s", "seq"}, {"#l", "lease"}}},
           {"ExpressionAttributeValues", {{":seq", attr_n(static_cast<int64_t>(seq))}, {":l", attr_n(lease)}}}},
          &reply);
      return s.is_conflict() ? Status::ok() : s;
    });
  }

  // A put after the commit point must land. If its condition fails, either this very
  // sequence applied it before (a redo: skip) or another writer wrote the item since the
  // check: move the put on top of that version, as commit_with_retry does (counted).
  Status apply_put(const WriterKeys& w, ConditionalPut put, uint64_t seq) {
    for (int attempt = 0; attempt < kMaxRebases; ++attempt) {
      json::object reply;
      Status s = client_.call("UpdateItem", update_request(w, put, seq), &reply);
      if (!s.is_conflict()) return s;
      json::object item;
      s = get_raw(put.record.pk, kItemSk, &item);
      if (!s.is_ok() && !s.is_not_found()) return s;
      int64_t stored = 0, stamp = 0;
      if (s.is_ok() && !get_n(item, "version", &stored))
        return Status::corruption("DynamoDB item '" + printable(put.record.pk) + "' has no numeric version");
      if (s.is_ok() && seq > 0 && get_n(item, w.stamp, &stamp) && static_cast<uint64_t>(stamp) >= seq)
        return Status::ok();
      int64_t delta = 0;
      if (!rebase_put(&put, stored, &delta).is_ok()) {
        // Not an engine item (its JSON does not end with its version): move the version only.
        put.expected_version = stored;
        put.record.version += delta;
      }
      metrics().rebased.fetch_add(1, std::memory_order_relaxed);
    }
    return Status::io_error("DynamoDB: item '" + printable(put.record.pk) + "' kept moving while applying commit " +
                            std::to_string(seq));
  }

  // The writer's own records under its key, by the earliest of its clocks. Its records in
  // a partition's index are not its to forget: that partition's holder forgets them by the
  // partition's clock (forget_partition_dedup), which may lag behind this writer's.
  Status forget_dedup(const WriterKeys& w, int64_t before_day) {
    if (before_day == kNoDay) return Status::ok();
    std::vector<json::object> deletes;
    Status s = below_day(w.dedup_pk, "", before_day, &deletes);
    return s.is_ok() ? batch_write(deletes) : s;
  }

  // Every writer's records of days before each partition's bound in that partition's index
  // (this writer holds the partitions; records of writers long gone included).
  Status forget_partition_dedup(const std::map<int32_t, int64_t>& before_day) {
    const int32_t count = partition_count_;
    std::vector<json::object> deletes;
    Status s;
    for (auto it = before_day.begin(); s.is_ok() && it != before_day.end(); ++it) {
      if (it->first < 0 || it->first >= count) continue;  // not a partition of the indexed topic
      const std::string pk = partition_index_pk(count, it->first);
      std::string prefix;
      bool found = false;
      // Writer by writer (records sort by writer, then by day): one read to find the next.
      for (std::string from(kDedupEntryPrefix); s.is_ok(); from = next_writer_after(prefix)) {
        if (!(s = first_dedup_writer(pk, from, &prefix, &found)).is_ok() || !found) break;
        s = below_day(pk, prefix, it->second, &deletes);
      }
    }
    return s.is_ok() ? batch_write(deletes) : s;
  }

  // Delete requests for the dedup records under `pk` (SKs: `prefix` + hex record key ...)
  // of days before `before_day`.
  Status below_day(const std::string& pk, const std::string& prefix, int64_t before_day,
                   std::vector<json::object>* deletes) {
    DedupRecord bound;
    bound.day = before_day;
    json::object values{{":p", attr_s(pk)}, {":hi", attr_s(prefix + hex(dedup_record_key(bound)))}};
    if (!prefix.empty()) values[":lo"] = attr_s(prefix);  // a key value may not be empty
    return query(
        {{"KeyConditionExpression", prefix.empty() ? "#pk = :p AND #sk < :hi" : "#pk = :p AND #sk BETWEEN :lo AND :hi"},
         {"ProjectionExpression", "#pk, #sk"},
         {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
         {"ExpressionAttributeValues", std::move(values)}},
        [&](json::object& item) {
          std::string sk;
          if (get_s(item, "SK", &sk)) deletes->push_back(delete_request(key_of(pk, sk)));
          return Status::ok();
        });
  }

  // The SK prefix of the first writer with dedup records in index `pk` at or after `from`.
  Status first_dedup_writer(const std::string& pk, const std::string& from, std::string* prefix, bool* found) {
    const std::string end = next_writer_after(std::string(kDedupEntryPrefix));  // past every "D#..."
    json::object reply;
    Status s = client_.call(
        "Query",
        {{"TableName", table()},
         {"ConsistentRead", true},
         {"KeyConditionExpression", "#pk = :p AND #sk BETWEEN :from AND :end"},
         {"ProjectionExpression", "#sk"},
         {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
         {"ExpressionAttributeValues", {{":p", attr_s(pk)}, {":from", attr_s(from)}, {":end", attr_s(end)}}},
         {"Limit", 1}},
        &reply);
    *found = false;
    const json::value* items = s.is_ok() ? reply.if_contains("Items") : nullptr;
    if (!items || !items->is_array() || items->as_array().empty() || !items->as_array()[0].is_object()) return s;
    std::string sk;
    const std::size_t end_of_writer =
        get_s(items->as_array()[0].as_object(), "SK", &sk) ? sk.find('#', kDedupEntryPrefix.size()) : std::string::npos;
    if (end_of_writer == std::string::npos) return Status::corruption("malformed dedup item '" + printable(sk) + "'");
    *prefix = sk.substr(0, end_of_writer + 1);
    *found = true;
    return Status::ok();
  }

  // The lowest SK after every one beginning with `prefix` (ending in '#': "D#", "D#<hex>#").
  static std::string next_writer_after(const std::string& prefix) {
    return prefix.substr(0, prefix.size() - 1) + static_cast<char>(prefix.back() + 1);
  }

  // ------------------------------------------------------------ gone writers (dynamodb_gc.hpp)

  // A collection pass after a commit. Whether a writer is gone changes when this writer's
  // clock enters a new day (its forget bound moves); a pass cut short by its budget goes
  // on at the next commit. A failed pass fails nothing: it is tried again.
  void collect_garbage(int64_t forget_day) {
    if (forget_day != kNoDay && forget_day > gc_day_) {
      gc_day_ = forget_day;
      gc_more_ = true;
    }
    if (!gc_more_ || options().gc_deletes_per_checkpoint == 0) return;
    const GcPolicy policy{options().gc_deletes_per_checkpoint, static_cast<uint64_t>(options().gc_idle_ms) * 1000};
    const uint64_t now_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    GcPass pass;
    Status s =
        guarded("collect", [&] { return collect_gone_writers(*this, self_.name, gc_day_, now_us, policy, &pass); });
    metrics().gc_deleted.fetch_add(pass.deleted, std::memory_order_relaxed);
    metrics().gc_writers.fetch_add(pass.writers_removed, std::memory_order_relaxed);
    if (!s.is_ok()) metrics().gc_failures.fetch_add(1, std::memory_order_relaxed);
    gc_more_ = pass.more || !s.is_ok();
  }

  Status sight(const std::string& name, WriterSighting* out) override {
    const WriterKeys w = keys_of_writer(name);
    *out = WriterSighting{};
    json::object marker;
    Status s = get_raw(w.log_pk, kMarkerSk, &marker);
    if (s.is_not_found()) return Status::ok();
    int64_t seq = 0;
    if (!s.is_ok() || !get_n(marker, "seq", &seq)) return s;  // a lease alone: no commit yet
    out->has_marker = true;
    out->last_commit_us = static_cast<uint64_t>(seq);
    out->pending = is_true(marker, "pending");
    out->collecting = is_true(marker, "gc");
    // Its newest dedup record, under its own key and in each partition's index (records
    // sort by day first): ids in the index inside the horizon keep it alive as well.
    s = newest_dedup_day(w.dedup_pk, "", out);
    const int32_t count = partition_count_;
    for (int32_t p = 0; s.is_ok() && p < count; ++p)
      s = newest_dedup_day(partition_index_pk(count, p), dedup_entry_prefix(w), out);
    if (s.code() == Status::Code::corruption) return Status::corruption(s.message() + " of writer '" + name + "'");
    return s;
  }

  // Folds the day of the newest dedup record under `pk` (SKs beginning with `prefix`) into
  // `out`'s newest_dedup_day.
  Status newest_dedup_day(const std::string& pk, const std::string& prefix, WriterSighting* out) {
    json::object request{{"TableName", table()},
                         {"ConsistentRead", true},
                         {"KeyConditionExpression", "#pk = :p"},
                         {"ProjectionExpression", "#sk"},
                         {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                         {"ExpressionAttributeValues", {{":p", attr_s(pk)}}},
                         {"ScanIndexForward", false},
                         {"Limit", 1}};
    with_sk_prefix(prefix, &request);
    json::object reply;
    Status s = client_.call("Query", request, &reply);
    const json::value* items = s.is_ok() ? reply.if_contains("Items") : nullptr;
    if (!items || !items->is_array() || items->as_array().empty() || !items->as_array()[0].is_object()) return s;
    std::string sk, key;
    DedupRecord newest;
    const bool named = get_s(items->as_array()[0].as_object(), "SK", &sk) && sk.size() > prefix.size();
    const std::string_view head = named ? std::string_view(sk).substr(prefix.size()) : std::string_view();
    if (!named || !unhex(head.substr(0, head.find('#')), &key) || !parse_dedup_record_key(key, &newest))
      return Status::corruption("malformed dedup item '" + printable(sk) + "'");
    out->newest_dedup_day = out->has_dedup ? std::max(out->newest_dedup_day, newest.day) : newest.day;
    out->has_dedup = true;
    return Status::ok();
  }

  // Narrows a Query on one partition key to the SKs beginning with `prefix` (none: all).
  static void with_sk_prefix(const std::string& prefix, json::object* request) {
    if (prefix.empty()) return;
    (*request)["KeyConditionExpression"] = "#pk = :p AND begins_with(#sk, :prefix)";
    (*request)["ExpressionAttributeNames"].as_object()["#sk"] = "SK";
    (*request)["ExpressionAttributeValues"].as_object()[":prefix"] = attr_s(prefix);
  }

  Status finish_commit(const std::string& name) override { return recover_writer(keys_of_writer(name), false); }

  Status mark_collecting(const std::string& name, uint64_t last_commit_us) override {
    json::object reply;
    return client_.call("UpdateItem",
                        {{"TableName", table()},
                         {"Key", key_of(keys_of_writer(name).log_pk, kMarkerSk)},
                         {"UpdateExpression", "SET #gc = :yes"},
                         {"ConditionExpression", "#s = :seq AND #p = :no"},
                         {"ExpressionAttributeNames", {{"#gc", "gc"}, {"#s", "seq"}, {"#p", "pending"}}},
                         {"ExpressionAttributeValues",
                          {{":yes", {{"BOOL", true}}},
                           {":no", {{"BOOL", false}}},
                           {":seq", attr_n(static_cast<int64_t>(last_commit_us))}}}},
                        &reply);
  }

  Status delete_leftovers(const std::string& name, std::size_t budget, std::size_t* deleted) override {
    const WriterKeys w = keys_of_writer(name);
    // (partition key, SK prefix): its own keys only. Its records in the partitions' index are
    // left to each partition's holder, who forgets them by the partition's clock: the
    // collector's clocks may be ahead of it (gone for the collector is not forgotten there).
    std::vector<std::pair<std::string, std::string>> keys{{w.dedup_pk, ""}};
    keys.emplace_back(w.meta_pk, "");
    for (std::size_t p = 0; p < kLogPartitions; ++p) keys.emplace_back(chunk_pk(w, p), "");
    std::vector<json::object> deletes;
    Status s;
    for (std::size_t i = 0; s.is_ok() && i < keys.size() && deletes.size() < budget; ++i)
      s = first_keys(keys[i].first, keys[i].second, budget - deletes.size(), &deletes);
    if (s.is_ok()) s = batch_write(deletes);
    *deleted = s.is_ok() ? deletes.size() : 0;
    return s;
  }

  // Delete requests for the first `limit` items of partition key `pk` whose SKs begin
  // with `prefix`.
  Status first_keys(const std::string& pk, const std::string& prefix, std::size_t limit,
                    std::vector<json::object>* deletes) {
    json::object request{{"TableName", table()},
                         {"ConsistentRead", true},
                         {"KeyConditionExpression", "#pk = :p"},
                         {"ProjectionExpression", "#pk, #sk"},
                         {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                         {"ExpressionAttributeValues", {{":p", attr_s(pk)}}}};
    with_sk_prefix(prefix, &request);
    for (std::size_t found = 0; found < limit;) {
      request["Limit"] = static_cast<int64_t>(limit - found);
      json::object reply;
      Status s = client_.call("Query", request, &reply);
      if (!s.is_ok()) return s;
      if (json::value* items = reply.if_contains("Items"); items && items->is_array())
        for (json::value& item : items->as_array()) {
          std::string sk;
          if (item.is_object() && get_s(item.as_object(), "SK", &sk) && found < limit) {
            deletes->push_back(delete_request(key_of(pk, sk)));
            ++found;
          }
        }
      json::value* last = reply.if_contains("LastEvaluatedKey");
      if (!last || !last->is_object()) break;
      request["ExclusiveStartKey"] = std::move(*last);
    }
    return Status::ok();
  }

  // The WRITERS entry, then the marker: until the marker goes, the mark refuses the
  // writer's commits. A collector killed in between leaves the marker (one item).
  Status forget_writer(const std::string& name) override {
    json::object reply;
    Status s = client_.call("DeleteItem", {{"TableName", table()}, {"Key", key_of(kWritersPk, name)}}, &reply);
    if (!s.is_ok()) return s;
    s = client_.call("DeleteItem",
                     {{"TableName", table()},
                      {"Key", key_of(keys_of_writer(name).log_pk, kMarkerSk)},
                      {"ConditionExpression", "attribute_exists(#gc)"},
                      {"ExpressionAttributeNames", {{"#gc", "gc"}}}},
                     &reply);
    return s.is_conflict() ? Status::ok() : s;  // removed already, by another collector
  }

  // ------------------------------------------------------------ recovery

  // Finishes writer `w`'s committed but unapplied commit. For this process's own writer
  // (`own`, at open) it also takes the marker's sequence and drops the log chunks of
  // finished (or abandoned, uncommitted) commits.
  Status recover_writer(const WriterKeys& w, bool own) {
    json::object marker;
    Status s = get_raw(w.log_pk, kMarkerSk, &marker);
    if (s.is_not_found()) return own ? sweep_log() : Status::ok();
    if (!s.is_ok()) return s;
    if (own && is_true(marker, "gc"))
      return Status::io_error("writer '" + w.name + "' is being removed from table '" + table() +
                              "' as gone by another writer; start it again once that is done, or under another "
                              "state.writer");
    if (own) get_n(marker, "lease", &lease_);  // a restart holds what its predecessor held, or nothing once fenced
    if (!attr(marker, "seq", "N")) return own ? sweep_log() : Status::ok();  // a lease, no commit yet
    int64_t seq = 0, chunks = 0;
    if (!get_n(marker, "seq", &seq) || !get_n(marker, "chunks", &chunks))
      return Status::corruption("commit marker of writer '" + w.name + "' is malformed");
    if (own) last_seq_ = static_cast<uint64_t>(seq);
    int64_t commit_lease = 0;
    get_n(marker, "commit_lease", &commit_lease);
    const json::value* pending = attr(marker, "pending", "BOOL");
    if (pending && pending->is_bool() && pending->as_bool()) {
      std::string payload;
      s = load_payload(w, marker, static_cast<uint64_t>(seq), chunks, &payload);
      // Another process, alive, may have finished the commit and dropped its chunks meanwhile:
      // its owner, or for this writer's own log a takeover by another writer.
      if (s.code() == Status::Code::corruption && marker_moved(w, static_cast<uint64_t>(seq)))
        return own ? recover_writer(w, own) : Status::ok();
      if (!s.is_ok()) return s;
      WriteSet ws;
      s = writes_of_log(w, marker, payload, static_cast<uint64_t>(seq), &ws);
      // The same: it was finished and its items written further meanwhile.
      if (s.code() == Status::Code::corruption && marker_moved(w, static_cast<uint64_t>(seq)))
        return own ? recover_writer(w, own) : Status::ok();
      if (!s.is_ok()) return s;
      if (!(s = apply(w, ws, static_cast<uint64_t>(seq), commit_lease)).is_ok() ||
          !(s = finish(w, static_cast<uint64_t>(seq), static_cast<std::size_t>(chunks))).is_ok())
        return s;
      metrics().recovered.fetch_add(1, std::memory_order_relaxed);
    }
    return own ? sweep_log() : Status::ok();
  }

  // The write set of writer `w`'s commit `seq`, whose log is `payload`, in the marker's
  // format: the previous one holds every put in full; this one the deltas of the internal
  // data, rebuilt here against the stored items.
  Status writes_of_log(const WriterKeys& w, const json::object& marker, const std::string& payload, uint64_t seq,
                       WriteSet* writes) {
    const std::string which = "redo log " + std::to_string(seq) + " of writer '" + w.name + "'";
    int64_t format = 1;
    get_n(marker, "format", &format);
    if (format == 1)
      return decode_writes(payload, writes) ? Status::ok() : Status::corruption(which + " does not decode");
    if (format != kLogFormat)
      return Status::corruption(which + " has format " + std::to_string(format) +
                                ", written by a newer streamscore: finish it with that version");
    RedoLog log;
    Status s = decode_redo_log(payload, &log);
    if (!s.is_ok()) return Status::corruption(which + ": " + s.message());
    if (!(s = rebuild_puts(w, seq, &log)).is_ok()) return Status::corruption(which + ": " + s.message());
    *writes = std::move(log.writes);
    return Status::ok();
  }

  // Each logged put's internal data out of its delta and the item it replaces, as stored
  // now. Puts this commit already applied (stamped) are dropped: their base is gone, and
  // the apply would skip them anyway. An item another writer wrote since the check keeps
  // its internal data when that writer only changed the public item (a re-score), so the
  // delta still applies and the put is rebased as usual.
  Status rebuild_puts(const WriterKeys& w, uint64_t seq, RedoLog* log) {
    std::vector<ConditionalPut>& puts = log->writes.puts;
    std::vector<char> applied(puts.size(), 0);  // not vector<bool>: written from several threads
    Status s = parallel_for(puts.size(), options().parallel_requests, [&](std::size_t i) {
      json::object item;
      ItemRecord stored;
      int64_t stamp = 0;
      Status r = get_raw(puts[i].record.pk, kItemSk, &item);
      if (r.is_ok() && get_n(item, w.stamp, &stamp) && static_cast<uint64_t>(stamp) >= seq) {
        applied[i] = 1;
        return Status::ok();
      }
      if (r.is_ok()) r = decode_item(item, &stored);
      if (!r.is_ok() && !r.is_not_found()) return r;
      r = rebuild_internal(log->deltas[i], stored.internal, &puts[i].record.internal);
      if (r.is_conflict())
        return Status::corruption(
            "item '" + printable(puts[i].record.pk) +
            "' was rewritten with other internal data by another writer before this commit "
            "was applied; its put cannot be rebuilt (rebuild the table with `streamscore replay`)");
      return r;
    });
    if (!s.is_ok()) return s;
    std::vector<ConditionalPut> left;
    for (std::size_t i = 0; i < puts.size(); ++i)
      if (!applied[i]) left.push_back(std::move(puts[i]));
    puts = std::move(left);
    return Status::ok();
  }

  // Whether writer `w`'s marker is no longer commit `seq` pending (its owner went on).
  bool marker_moved(const WriterKeys& w, uint64_t seq) {
    json::object marker;
    int64_t now = 0;
    if (!get_raw(w.log_pk, kMarkerSk, &marker).is_ok() || !get_n(marker, "seq", &now)) return false;
    const json::value* pending = attr(marker, "pending", "BOOL");
    return static_cast<uint64_t>(now) != seq || !(pending && pending->is_bool() && pending->as_bool());
  }

  // A table of this layout, or an empty one (which becomes one), or a refusal.
  Status check_layout() {
    json::object item;
    Status s = get_raw(kMetaPk, hex(kLayoutKey), &item);
    if (!s.is_not_found()) return s;
    s = get_raw(kMetaPk, hex("format"), &item);
    if (s.is_ok())
      return Status::corruption("DynamoDB table '" + table() +
                                "' was written by an older streamscore (one meta and "
                                "one dedup key for all writers); rebuild it with `streamscore replay`");
    return s.is_not_found() ? put_layout() : s;
  }

  Status put_layout() {
    json::object item = key_of(kMetaPk, hex(kLayoutKey));
    item["value"] = attr_b(kLayout);
    json::object reply;
    return client_.call("PutItem", {{"TableName", table()}, {"Item", std::move(item)}}, &reply);
  }

  Status register_writer() {
    json::object reply;
    return client_.call("PutItem", {{"TableName", table()}, {"Item", key_of(kWritersPk, self_.name)}}, &reply);
  }

  // The parts of a backfill in parts by this writer's name (backfill_part_writer), which
  // this writer continues from: semantics.md, section 14.
  Status find_backfill_parts() {
    std::vector<std::string> writers;
    Status s = list_writers(&writers);
    const std::string prefix = self_.name + std::string(kPartInfix);
    for (const std::string& name : writers)
      if (name.compare(0, prefix.size(), prefix) == 0) parts_.push_back(keys_of_writer(name));
    return s;
  }

  Status list_writers(std::vector<std::string>* writers) override {
    return query({{"KeyConditionExpression", "#pk = :p"},
                  {"ProjectionExpression", "#sk"},
                  {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                  {"ExpressionAttributeValues", {{":p", attr_s(kWritersPk)}}}},
                 [&](json::object& item) {
                   std::string name;
                   if (get_s(item, "SK", &name)) writers->push_back(std::move(name));
                   return Status::ok();
                 });
  }

  Status load_payload(const WriterKeys& w, const json::object& marker, uint64_t seq, int64_t chunks,
                      std::string* payload) {
    if (chunks == 0) {
      return get_b(marker, "inline", payload)
                 ? Status::ok()
                 : Status::corruption("commit marker " + std::to_string(seq) + " has no inline payload");
    }
    std::vector<json::object> keys;
    for (int64_t i = 0; i < chunks; ++i) keys.push_back(key_of(chunk_pk(w, i), chunk_sk(seq, i)));
    std::vector<std::string> parts(static_cast<std::size_t>(chunks));
    std::vector<bool> found(parts.size(), false);
    std::mutex mu;
    Status s = batch_get(keys, nullptr, [&](json::object& item) {
      std::string sk, part;
      const bool ok = get_s(item, "SK", &sk) && get_b(item, "data", &part);
      uint64_t i = 0;
      const std::size_t hash = sk.rfind('#');
      if (!ok || hash == std::string::npos ||
          std::from_chars(sk.data() + hash + 1, sk.data() + sk.size(), i, 16).ec != std::errc() || i >= parts.size())
        return;  // counted as missing below
      std::lock_guard<std::mutex> lock(mu);
      parts[i] = std::move(part);
      found[i] = true;
    });
    if (!s.is_ok()) return s;
    const auto have = std::count(found.begin(), found.end(), true);
    if (have != chunks)
      return Status::corruption("redo log " + std::to_string(seq) + " of writer '" + w.name + "' has " +
                                std::to_string(have) + " of its " + std::to_string(chunks) + " chunks");
    for (const std::string& part : parts) payload->append(part);
    return Status::ok();
  }

  // Chunks of sequences up to the marker's are finished or were never committed. Newer
  // ones may belong to a commit in progress elsewhere (e.g. a daemon, while this process
  // exports): left alone, and dropped by a later open once the marker has passed them.
  Status sweep_log() {
    std::vector<json::object> deletes;
    for (std::size_t p = 0; p < kLogPartitions; ++p) {
      const std::string pk = chunk_pk(self_, p);
      Status s = query({{"KeyConditionExpression", "#pk = :p AND #sk BETWEEN :lo AND :hi"},
                        {"ProjectionExpression", "#pk, #sk"},
                        {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                        {"ExpressionAttributeValues",
                         {{":p", attr_s(pk)},
                          {":lo", attr_s("chunk#")},
                          {":hi", attr_s("chunk#" + hex_number(last_seq_, 16) + "#~")}}}},
                       [&](json::object& item) {
                         std::string sk;
                         if (get_s(item, "SK", &sk)) deletes.push_back(delete_request(key_of(pk, sk)));
                         return Status::ok();
                       });
      if (!s.is_ok()) return s;
    }
    return batch_write(deletes);
  }

  // ------------------------------------------------------------ reads

  // Keys first (the whole table has to be read to find them), sorted bytewise, then the
  // items in that order, a window of batch reads at a time: memory stays at one window.
  Status do_scan(const std::function<bool(const ItemRecord&)>& fn) {
    std::vector<std::pair<std::string, std::string>> keys;
    Status s = scan_keys(/*items_only=*/true, &keys);
    if (!s.is_ok()) return s;
    std::vector<std::string> pks;
    for (auto& [pk, sk] : keys)
      if (sk == kItemSk) pks.push_back(std::move(pk));
    bool stopped = false;
    return read_items(std::move(pks), fn, &stopped);
  }

  // The items of `pks` in bytewise PK order, a window of batch reads at a time.
  Status read_items(std::vector<std::string> pks, const std::function<bool(const ItemRecord&)>& fn, bool* stopped) {
    Status s;
    std::sort(pks.begin(), pks.end());  // std::string compares as unsigned bytes
    const std::size_t window = kBatchGet * static_cast<std::size_t>(std::max(1, options().parallel_requests));
    for (std::size_t at = 0; at < pks.size(); at += window) {
      const std::size_t end = std::min(pks.size(), at + window);
      std::vector<json::object> batch;
      for (std::size_t i = at; i < end; ++i) batch.push_back(key_of(pks[i], kItemSk));
      std::map<std::string, ItemRecord> found;
      std::mutex mu;
      Status bad;
      s = batch_get(batch, nullptr, [&](json::object& item) {
        ItemRecord r;
        Status d = decode_item(item, &r);
        std::lock_guard<std::mutex> lock(mu);
        if (!d.is_ok())
          bad = d;
        else
          found.emplace(r.pk, std::move(r));
      });
      if (!s.is_ok()) return s;
      if (!bad.is_ok()) return bad;
      for (std::size_t i = at; i < end; ++i) {
        auto it = found.find(pks[i]);
        if (it != found.end() && !fn(it->second)) {  // absent: deleted meanwhile
          *stopped = true;
          return Status::ok();
        }
      }
    }
    return Status::ok();
  }

  // This writer's records and its backfill parts'; with dedup_of_all_writers every
  // writer's: ids move with their customers between the daemons of a group (semantics.md,
  // section 21).
  Status do_scan_dedup(const std::function<bool(const DedupRecord&)>& fn) {
    std::vector<std::string> writers{self_.name};
    for (const WriterKeys& part : parts_) writers.push_back(part.name);
    Status s = options().dedup_of_all_writers ? (writers.clear(), list_writers(&writers)) : Status::ok();
    bool stop = false;
    for (std::size_t i = 0; s.is_ok() && !stop && i < writers.size(); ++i)
      s = scan_writer_dedup(keys_of_writer(writers[i]), fn, &stop);
    // And the same writers' records in the partitions' index of a table indexed by partition.
    std::vector<std::string> prefixes;
    if (options().dedup_of_all_writers)
      prefixes.emplace_back(kDedupEntryPrefix);
    else
      for (const std::string& w : writers) prefixes.push_back(dedup_entry_prefix(keys_of_writer(w)));
    const int32_t count = partition_count_;
    for (int32_t p = 0; s.is_ok() && !stop && p < count; ++p)
      for (std::size_t i = 0; s.is_ok() && !stop && i < prefixes.size(); ++i)
        s = query_dedup(partition_index_pk(count, p), prefixes[i], fn, &stop);
    return s;
  }

  Status scan_writer_dedup(const WriterKeys& w, const std::function<bool(const DedupRecord&)>& fn, bool* stopped) {
    return query_dedup(w.dedup_pk, "", fn, stopped);
  }

  // The dedup records under `pk` whose SKs begin with `prefix`, assembled from their chunks
  // (SK: [prefix][...#]<hex record key>#<chunk>). `sks`, when given, gets every SK read.
  Status query_dedup(const std::string& pk, const std::string& prefix,
                     const std::function<bool(const DedupRecord&)>& fn, bool* stopped,
                     std::vector<std::string>* sks = nullptr) {
    DedupRecord record;
    std::string current;  // hex key of the record being assembled
    int64_t expected = 0, seen = 0;
    bool& stop = *stopped;
    auto flush = [&]() -> Status {
      if (current.empty()) return Status::ok();
      if (seen != expected)
        return Status::corruption("dedup record " + current + " has " + std::to_string(seen) + " of its " +
                                  std::to_string(expected) + " chunks");
      stop = !fn(record);
      current.clear();
      return Status::ok();
    };
    json::object request{{"KeyConditionExpression", "#pk = :p"},
                         {"ExpressionAttributeNames", {{"#pk", "PK"}}},
                         {"ExpressionAttributeValues", {{":p", attr_s(pk)}}}};
    with_sk_prefix(prefix, &request);
    Status s = query(std::move(request), [&](json::object& item) {
      if (stop) return Status::ok();
      std::string sk, key, part;
      int64_t n = 0;
      const std::size_t hash = get_s(item, "SK", &sk) ? sk.rfind('#') : std::string::npos;
      if (hash == std::string::npos || hash < prefix.size() || !get_n(item, "n", &n) || !get_b(item, "data", &part))
        return Status::corruption("malformed dedup item '" + printable(sk) + "'");
      if (sks) sks->push_back(sk);
      const std::string head = sk.substr(0, hash);
      if (head != current) {
        Status f = flush();
        if (!f.is_ok() || stop) return f;
        const std::size_t key_at = std::max(prefix.size(), head.rfind('#') + 1);
        if (!unhex(std::string_view(head).substr(key_at), &key) || !parse_dedup_record_key(key, &record))
          return Status::corruption("malformed dedup item '" + printable(sk) + "'");
        record.data.clear();
        current = head;
        expected = n;
        seen = 0;
      }
      record.data += part;
      ++seen;
      return Status::ok();
    });
    if (!s.is_ok() || stop) return s;
    return flush();
  }

  // ------------------------------------------------------------ the index by partition

  // SK prefix of writer `w`'s dedup records in a partition's index (hex: no '#' inside).
  static std::string dedup_entry_prefix(const WriterKeys& w) {
    return std::string(kDedupEntryPrefix) + hex(w.name) + "#";
  }

  static json::object index_entry(std::string_view customer_id, int32_t count) {
    return key_of(partition_index_pk(count, partition_of_customer(customer_id, count)), customer_entry_sk(customer_id));
  }

  // An index entry for every customer the puts may create (expected version 0): written
  // in the apply of the commit that creates it, so that a redo writes it too.
  static void index_new_customers(const std::vector<ConditionalPut>& puts, int32_t count,
                                  std::vector<json::object>* out) {
    for (const ConditionalPut& put : puts) {
      const std::string_view id = customer_id_of_pk(put.record.pk);
      if (put.expected_version == 0 && !id.empty()) out->push_back(put_request(index_entry(id, count)));
    }
  }

  // The items of dedup record `r` of writer `w`: under the writer's own key, or (`count` >
  // 0) split by its customers' partitions into their indexes.
  Status dedup_items(const WriterKeys& w, const DedupRecord& r, int32_t count, std::vector<json::object>* out) {
    if (count == 0) {
      append_dedup_chunks(w.dedup_pk, hex(dedup_record_key(r)), r.data, out);
      return Status::ok();
    }
    std::map<int32_t, DedupRecord> by_partition;
    Status s = split_dedup_record(
        r, [count](std::string_view id) { return partition_of_customer(id, count); }, &by_partition);
    if (!s.is_ok()) return s;
    for (const auto& [p, part] : by_partition)
      append_dedup_chunks(partition_index_pk(count, p), dedup_entry_prefix(w) + hex(dedup_record_key(part)), part.data,
                          out);
    return Status::ok();
  }

  static void append_dedup_chunks(const std::string& pk, const std::string& key, std::string_view data,
                                  std::vector<json::object>* out) {
    const std::vector<std::string_view> parts = split(data, kChunkBytes);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      json::object item = key_of(pk, key + "#" + hex_number(i, 4));
      item["n"] = attr_n(static_cast<int64_t>(parts.size()));
      item["data"] = attr_b(parts[i]);
      out->push_back(put_request(std::move(item)));
    }
  }

  // The count of table meta "partition_index" (0: the table is not indexed).
  Status read_partition_index(int32_t* count) {
    *count = 0;
    json::object item;
    std::string value;
    Status s = get_raw(kMetaPk, hex(kMetaPartitionIndex), &item);
    if (s.is_not_found()) return Status::ok();
    if (!s.is_ok()) return s;
    if (!get_b(item, "value", &value) || !parse_partition_count(value, count))
      return Status::corruption("DynamoDB table '" + table() + "': meta 'partition_index' is not a partition count");
    return Status::ok();
  }

  // Every writer that opens an indexed table indexes what it creates.
  Status load_partition_index() {
    int32_t count = 0;
    Status s = read_partition_index(&count);
    if (s.is_ok()) partition_count_ = count;
    return s;
  }

  Status put_partition_index(int32_t count) {
    json::object item = key_of(kMetaPk, hex(kMetaPartitionIndex));
    item["value"] = attr_b(std::to_string(count));
    json::object reply;
    return client_.call("PutItem", {{"TableName", table()}, {"Item", std::move(item)}}, &reply);
  }

  // A takeover's load (section 21): the partitions' customers and dedup records from their
  // indexes (Queries), then any dedup records still under a writer's own key (moved into
  // the index on the way). A table not indexed under this partition count is read whole
  // once and indexed.
  Status do_scan_partitions(const PartitionScope& scope, const std::function<bool(const ItemRecord&)>& item_fn,
                            const std::function<bool(const DedupRecord&)>& dedup_fn) {
    int32_t indexed = 0;
    Status s = read_partition_index(&indexed);
    if (!s.is_ok()) return s;
    partition_count_ = scope.count;  // this writer's commits index under it from now on
    if (indexed != scope.count) return index_table(scope.count, indexed, item_fn, dedup_fn);
    std::vector<std::string> pks;
    for (std::size_t i = 0; s.is_ok() && i < scope.partitions.size(); ++i)
      s = indexed_customers(partition_index_pk(scope.count, scope.partitions[i]), &pks);
    bool stop = false;
    if (!s.is_ok() || !(s = read_items(std::move(pks), item_fn, &stop)).is_ok() || stop) return s;
    for (std::size_t i = 0; s.is_ok() && !stop && i < scope.partitions.size(); ++i)
      s = query_dedup(partition_index_pk(scope.count, scope.partitions[i]), std::string(kDedupEntryPrefix), dedup_fn,
                      &stop);
    return s.is_ok() && !stop ? move_into_index(scope.count, dedup_fn, &stop) : s;
  }

  // The PKs of the customers in one partition's index.
  Status indexed_customers(const std::string& index_pk, std::vector<std::string>* pks) {
    return query({{"KeyConditionExpression", "#pk = :p AND begins_with(#sk, :c)"},
                  {"ProjectionExpression", "#sk"},
                  {"ExpressionAttributeNames", {{"#pk", "PK"}, {"#sk", "SK"}}},
                  {"ExpressionAttributeValues", {{":p", attr_s(index_pk)}, {":c", attr_s(kCustomerEntryPrefix)}}}},
                 [&](json::object& item) {
                   std::string sk;
                   if (get_s(item, "SK", &sk) && !customer_of_entry_sk(sk).empty())
                     pks->push_back(customer_pk(customer_of_entry_sk(sk)));
                   return Status::ok();
                 });
  }

  // The first takeover of a table not indexed under `count` partitions (written before a
  // group shared it, or indexed under another partition count): reads it whole, as every
  // takeover did before the index, indexes every customer, moves every dedup record into
  // the index, and only then marks the table indexed.
  Status index_table(int32_t count, int32_t indexed_before, const std::function<bool(const ItemRecord&)>& item_fn,
                     const std::function<bool(const DedupRecord&)>& dedup_fn) {
    std::vector<json::object> entries;
    bool stop = false;
    Status s = do_scan([&](const ItemRecord& r) {
      if (const std::string_view id = customer_id_of_pk(r.pk); !id.empty())
        entries.push_back(put_request(index_entry(id, count)));
      stop = !item_fn(r);
      return !stop;
    });
    if (!s.is_ok() || stop || !(s = batch_write(entries)).is_ok() ||
        !(s = move_into_index(count, dedup_fn, &stop)).is_ok())
      return s;
    std::vector<std::string> writers;
    if (indexed_before > 0 && !(s = list_writers(&writers)).is_ok()) return s;
    for (std::size_t i = 0; s.is_ok() && !stop && i < writers.size(); ++i) {
      const WriterKeys w = keys_of_writer(writers[i]);
      for (int32_t p = 0; s.is_ok() && !stop && p < indexed_before; ++p)
        s = move_dedup(w, partition_index_pk(indexed_before, p), dedup_entry_prefix(w), count, dedup_fn, &stop);
    }
    return s.is_ok() && !stop ? put_partition_index(count) : s;
  }

  // Every writer's dedup records under its own key, moved into the index.
  Status move_into_index(int32_t count, const std::function<bool(const DedupRecord&)>& fn, bool* stop) {
    std::vector<std::string> writers;
    Status s = list_writers(&writers);
    for (std::size_t i = 0; s.is_ok() && !*stop && i < writers.size(); ++i) {
      const WriterKeys w = keys_of_writer(writers[i]);
      s = move_dedup(w, w.dedup_pk, "", count, fn, stop);
    }
    return s;
  }

  // Writer `w`'s dedup records under `pk` (SKs beginning with `prefix`), handed to `fn` and
  // moved into the index under `count` partitions: the copies are written before the
  // originals read go (records written meanwhile stay, for the next move).
  Status move_dedup(const WriterKeys& w, const std::string& pk, const std::string& prefix, int32_t count,
                    const std::function<bool(const DedupRecord&)>& fn, bool* stop) {
    std::vector<json::object> copies;
    std::vector<std::string> sks;
    Status bad;
    Status s = query_dedup(
        pk, prefix,
        [&](const DedupRecord& r) {
          bad = dedup_items(w, r, count, &copies);
          return bad.is_ok() && fn(r);
        },
        stop, &sks);
    if (!s.is_ok() || !bad.is_ok()) return s.is_ok() ? bad : s;
    if (*stop || sks.empty() || !(s = batch_write(copies)).is_ok()) return s;
    std::vector<json::object> deletes;
    for (const std::string& sk : sks) deletes.push_back(delete_request(key_of(pk, sk)));
    return batch_write(deletes);
  }

  Status do_clear() {
    std::lock_guard<std::mutex> lock(commit_mu_);
    std::vector<std::pair<std::string, std::string>> keys;
    Status s = scan_keys(/*items_only=*/false, &keys);
    if (!s.is_ok()) return s;
    std::vector<json::object> deletes;
    for (const auto& [pk, sk] : keys) deletes.push_back(delete_request(key_of(pk, sk)));
    if (!(s = batch_write(deletes)).is_ok() || !(s = put_layout()).is_ok()) return s;
    last_seq_ = 0;  // its marker went too: the next commit starts a new one
    lease_ = 0;
    claimed_.clear();  // and its claims
    // Still indexed: everything written from now on is (a replay keeps a group's index).
    if (partition_count_ > 0 && !(s = put_partition_index(partition_count_)).is_ok()) return s;
    return register_writer();
  }

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

bool valid_endpoint(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

}  // namespace

std::string backfill_part_writer(const std::string& writer, int part, int parts) {
  return writer + std::string(kPartInfix) + std::to_string(part) + "-of-" + std::to_string(parts);
}

DynamoDbOptions resolve_dynamodb_options(DynamoDbOptions o) {
  if (o.region.empty())
    for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
      if (const char* v = std::getenv(name); v && *v && o.region.empty()) o.region = v;
  if (o.region.empty()) o.region = "us-east-1";
  if (o.endpoint.empty()) o.endpoint = "https://dynamodb." + o.region + ".amazonaws.com";
  if (!o.metrics) o.metrics = std::make_shared<DynamoDbProbe>();
  return o;
}

namespace {

Status prepare(DynamoDbOptions* options, AwsCredentials* credentials) {
  *options = resolve_dynamodb_options(std::move(*options));
  if (!valid_endpoint(options->endpoint))
    return Status::invalid_argument("state.endpoint '" + options->endpoint + "': expected an http:// or https:// URL");
  if (options->table.size() < 3 || options->table.size() > 255 ||
      options->table.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
          std::string::npos)
    return Status::invalid_argument("state.table '" + options->table +
                                    "': a DynamoDB table name is 3 to 255 of a-z A-Z 0-9 _ . -");
  if (options->writer.empty() || !is_utf8(options->writer))
    return Status::invalid_argument("DynamoDB writer name must be non-empty UTF-8");
  return load_aws_credentials(credentials);
}

}  // namespace

Status open_dynamodb_store(DynamoDbOptions options, std::unique_ptr<StateStore>* out) {
  AwsCredentials credentials;
  Status s = prepare(&options, &credentials);
  if (!s.is_ok()) return s;
  auto store = std::make_unique<DynamoDbStore>(options, std::move(credentials));
  if (!(s = store->open()).is_ok()) return s;
  *out = std::move(store);
  return Status::ok();
}

Status create_dynamodb_table(DynamoDbOptions options, bool* existed) {
  *existed = false;
  AwsCredentials credentials;
  Status s = prepare(&options, &credentials);
  if (!s.is_ok()) return s;
  try {
    DynamoDbClient client(options, std::move(credentials));
    json::object attribute_defs_pk{{"AttributeName", "PK"}, {"AttributeType", "S"}};
    json::object attribute_defs_sk{{"AttributeName", "SK"}, {"AttributeType", "S"}};
    json::object reply;
    ApiError e;
    s = client.call("CreateTable",
                    {{"TableName", options.table},
                     {"AttributeDefinitions", json::array{attribute_defs_pk, attribute_defs_sk}},
                     {"KeySchema", json::array{json::object{{"AttributeName", "PK"}, {"KeyType", "HASH"}},
                                               json::object{{"AttributeName", "SK"}, {"KeyType", "RANGE"}}}},
                     {"BillingMode", "PAY_PER_REQUEST"}},
                    &reply, &e);
    if (e.type == "ResourceInUseException") {
      *existed = true;
      return Status::ok();
    }
    if (!s.is_ok()) return s;
    // A new table takes a moment to become ACTIVE; writes before that fail.
    for (int i = 0; i < 600; ++i) {
      if (!(s = client.call("DescribeTable", {{"TableName", options.table}}, &reply)).is_ok()) return s;
      const json::value* t = reply.if_contains("Table");
      const json::value* st = t && t->is_object() ? t->as_object().if_contains("TableStatus") : nullptr;
      if (st && st->is_string() && st->as_string() == "ACTIVE") return Status::ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Status::io_error("DynamoDB table '" + options.table + "' did not become ACTIVE within 60 s");
  } catch (const std::exception& ex) {
    return Status::io_error(std::string("DynamoDB CreateTable: ") + ex.what());
  }
}

}  // namespace streamscore
