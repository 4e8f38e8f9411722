// The StateStore contract (tests/store_contract.hpp) on the memory and RocksDB
// backends, plus RocksDB-only tests (persistence, LOCK, corruption).
#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <rocksdb/db.h>
#include <boost/mpl/list.hpp>

#include "common/codec.hpp"
#include "state/served_items.hpp"
#include "state/store.hpp"
#include "tests/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace streamscore;

using streamscore::testing::TempDir;

// Outside the anonymous namespace so test names read "case<MemoryBackend>".
struct MemoryBackend {
  static constexpr bool binary_keys = true;
  static constexpr int race_rounds = 20;
  std::unique_ptr<StateStore> store = make_memory_store();
};

struct RocksBackend {
  static constexpr bool binary_keys = true;
  static constexpr int race_rounds = 20;
  TempDir dir;  // declared first: destroyed after the store has closed the DB
  std::unique_ptr<StateStore> store;
  RocksBackend() {
    Status s = open_rocksdb_store(dir / "db", &store);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  }
};

// The RocksDB store behind the daemon's lookups (state/served_items.hpp): it must keep
// the whole contract while it mirrors the public items.
struct ServingBackend {
  static constexpr bool binary_keys = true;
  static constexpr int race_rounds = 20;
  TempDir dir;
  std::unique_ptr<StateStore> store;
  ServingBackend() {
    std::unique_ptr<StateStore> inner;
    Status s = open_rocksdb_store(dir / "db", &inner);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
    store = std::make_unique<ServingStore>(std::move(inner));
  }
};

using ContractBackends = boost::mpl::list<MemoryBackend, RocksBackend, ServingBackend>;

#include "tests/store_contract.hpp"

// ------------------------------------------------------------ RocksDB only

BOOST_AUTO_TEST_CASE(rocksdb_creates_missing_parent_dirs) {
  TempDir dir;
  std::unique_ptr<StateStore> store;
  Status s = open_rocksdb_store(dir / "a/b/c", &store);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(fs::exists(dir / "a/b/c/CURRENT"));
}

BOOST_AUTO_TEST_CASE(rocksdb_data_survives_reopen) {
  TempDir dir;
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &store).is_ok());
    write(*store, {put("CUSTOMER#A", 0, "a1", "ia"), put("CUSTOMER#B", 0, "b1")});
    write(*store, {put("CUSTOMER#A", 1, "a2", "ia2")});
    BOOST_TEST(store->put_meta("clock", "t1").is_ok());
    BOOST_TEST(store->sync().is_ok());
  }
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &store).is_ok());
  ItemRecord a = read(*store, "CUSTOMER#A");
  BOOST_TEST(a.version == 2);
  BOOST_TEST(a.item_json == "a2");
  BOOST_TEST(a.internal == "ia2");
  std::string v;
  BOOST_TEST(store->get_meta("clock", &v).is_ok());
  BOOST_TEST(v == "t1");
  BOOST_TEST(scan_pks(*store) == (std::vector<std::string>{"CUSTOMER#A", "CUSTOMER#B"}));
  // The condition still holds against what was reloaded.
  BOOST_TEST(write(*store, {put("CUSTOMER#A", 1, "stale")}) == Conflicts{0});
}

BOOST_AUTO_TEST_CASE(rocksdb_second_open_of_same_dir_fails_clearly) {
  TempDir dir;
  std::unique_ptr<StateStore> first, second;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &first).is_ok());
  Status s = open_rocksdb_store(dir.path.string(), &second);
  BOOST_TEST(s.code() == Status::Code::io_error);
  BOOST_TEST(s.message().find("in use") != std::string::npos, s.message());
  BOOST_TEST(s.message().find(dir.path.string()) != std::string::npos, s.message());
  BOOST_TEST(!second);
  // Still usable, and the directory opens again once the first store is gone.
  write(*first, {put("CUSTOMER#A", 0)});
  first.reset();
  BOOST_TEST(open_rocksdb_store(dir.path.string(), &second).is_ok());
}

BOOST_AUTO_TEST_CASE(rocksdb_malformed_value_is_corruption_naming_pk) {
  TempDir dir;
  {
    // Write a bad value under the item key layout ("I" + pk) behind the store's back.
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    BOOST_TEST_REQUIRE(rocksdb::DB::Open(o, dir.path.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    BOOST_TEST(db->Put(rocksdb::WriteOptions(), "ICUSTOMER#bad", "\x01short").ok());
    BOOST_TEST(db->Close().ok());
  }
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &store).is_ok());
  ItemRecord r;
  Status g = store->get("CUSTOMER#bad", &r);
  BOOST_TEST(g.code() == Status::Code::corruption);
  BOOST_TEST(g.message().find("CUSTOMER#bad") != std::string::npos, g.message());
  Status s = store->scan([](const ItemRecord&) { return true; });
  BOOST_TEST(s.code() == Status::Code::corruption);
  Conflicts c;
  Status p = store->put_batch({put("CUSTOMER#bad", 1)}, &c);
  BOOST_TEST(p.code() == Status::Code::corruption);
}

// ------------------------------------------------------------ ServingStore

namespace {

// What GET /v1/customers/{id} must answer for `pk`: the stored public item, or nothing.
std::string stored_public_item(StateStore& store, const std::string& pk) {
  ItemRecord r;
  Status s = store.get(pk, &r);
  BOOST_TEST_REQUIRE((s.is_ok() || s.is_not_found()), s.to_string());
  return s.is_ok() && r.version > 0 ? r.item_json : std::string();
}

std::string served_item(const ServedItems& items, const std::string& pk) {
  std::string json;
  return items.get(customer_id_of_pk(pk), &json) ? json : std::string();
}

}  // namespace

BOOST_AUTO_TEST_CASE(serving_store_mirrors_the_public_items_through_commits_and_conflicts) {
  ServingBackend b;
  auto& serving = static_cast<ServingStore&>(*b.store);
  std::mt19937 rng(7);
  std::vector<std::string> pks;
  for (int i = 0; i < 40; ++i) pks.push_back(customer_pk("C" + std::to_string(i)));
  std::map<std::string, int64_t> version;  // what the store holds
  std::size_t conflicted = 0, unpublished = 0, same_version = 0;
  for (int round = 0; round < 300; ++round) {
    WriteSet writes;
    std::set<std::string> in_batch;
    for (int k = 0; k < 5; ++k) {
      const std::string& pk = pks[rng() % pks.size()];
      if (!in_batch.insert(pk).second) continue;
      ConditionalPut p = put(pk, version[pk], "{\"pk\":\"" + pk + "\",\"round\":" + std::to_string(round) + "}");
      if (rng() % 10 == 0) p.expected_version += 1;  // stale: the whole commit is refused
      if (version[pk] == 0 && rng() % 3 == 0) {      // no public item yet (version 0, empty item), as the engine writes
        p.record.version = p.expected_version;
        p.record.item_json.clear();
      } else if (version[pk] > 0 && rng() % 6 == 0) {
        p.record.version = p.expected_version;  // another item under the stored version
      }
      writes.puts.push_back(p);
    }
    std::vector<std::size_t> conflicts;
    Status s = serving.commit(writes, &conflicts);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
    if (!conflicts.empty())
      ++conflicted;
    else
      for (const ConditionalPut& p : writes.puts) {
        if (p.record.version > 0 && p.record.version == version[p.record.pk]) ++same_version;
        version[p.record.pk] = p.record.version;
      }
    for (const std::string& pk : pks) {
      const std::string stored = stored_public_item(serving, pk);
      BOOST_TEST_REQUIRE(served_item(serving.items(), pk) == stored, pk << " after round " << round);
      if (stored.empty()) ++unpublished;
    }
  }
  BOOST_TEST(conflicted > 10u);    // the refused commits were exercised
  BOOST_TEST(unpublished > 100u);  // and customers without a public item
  BOOST_TEST(same_version > 10u);  // and new items under the same version
  std::size_t bytes = 0, items = 0;
  for (const std::string& pk : pks) {
    const std::string stored = stored_public_item(serving, pk);
    if (!stored.empty()) ++items, bytes += stored.size();
  }
  BOOST_TEST(serving.items().items() == items);
  BOOST_TEST(serving.items().bytes() == bytes);
  BOOST_TEST(serving.clear().is_ok());
  BOOST_TEST(serving.items().items() == 0u);
  BOOST_TEST(served_item(serving.items(), pks[0]).empty());
}

BOOST_AUTO_TEST_CASE(serving_store_takes_the_items_a_scan_reads) {
  TempDir dir;
  {
    std::unique_ptr<StateStore> plain;
    BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &plain).is_ok());
    write(*plain, {put("CUSTOMER#A", 0, "a1"), put("CUSTOMER#B", 0, "b1")});
    write(*plain, {put("CUSTOMER#A", 1, "a2")});
    ConditionalPut hidden = put("CUSTOMER#Z", 0, "");
    hidden.record.version = 0;  // stored, but no public item yet
    write(*plain, {hidden});
  }
  std::unique_ptr<StateStore> inner;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &inner).is_ok());
  ServingStore serving(std::move(inner));
  BOOST_TEST(serving.items().items() == 0u);  // nothing until the engine's load reads them
  BOOST_TEST(scan_pks(serving).size() == 3u);
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#A") == "a2");
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#B") == "b1");
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#Z").empty());
  BOOST_TEST(serving.items().items() == 2u);
  // A load's scan that races a newer commit does not bring the old item back.
  write(serving, {put("CUSTOMER#B", 1, "b2")});
  ServedItems& items = const_cast<ServedItems&>(serving.items());
  items.offer("B", 1, "b1");
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#B") == "b2");
}

BOOST_AUTO_TEST_CASE(served_items_readers_see_whole_items_in_version_order_while_written) {
  ServedItems items;
  constexpr int kCustomers = 64, kVersions = 2000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> checked{0}, wrong{0};  // Boost.Test asserts only on the main thread
  auto reader = [&] {
    std::vector<int64_t> seen(kCustomers, 0);
    std::string json;
    while (!done.load()) {
      for (int c = 0; c < kCustomers; ++c) {
        if (!items.get("C" + std::to_string(c), &json)) continue;
        // Written as "<version>:<version repeated>" so that a torn copy would show.
        const int64_t v = std::stoll(json.substr(0, json.find(':')));
        if (json != std::to_string(v) + ":" + std::string(static_cast<std::size_t>(v % 97), 'x') || v < seen[c])
          wrong.fetch_add(1);
        seen[c] = v;
        checked.fetch_add(1);
      }
    }
  };
  std::thread r1(reader), r2(reader);
  for (int v = 1; v <= kVersions; ++v)
    for (int c = 0; c < kCustomers; ++c)
      items.offer("C" + std::to_string(c), v,
                  std::to_string(v) + ":" + std::string(static_cast<std::size_t>(v % 97), 'x'));
  done.store(true);
  r1.join();
  r2.join();
  BOOST_TEST(checked.load() > 0u);
  BOOST_TEST(wrong.load() == 0u);
  BOOST_TEST(items.items() == static_cast<uint64_t>(kCustomers));
}

// The byte codec (common/codec.hpp) writes what is on disk and in tables: these bytes are
// the encodings of stores written before it was shared, so a change to it that would stop
// existing stores from opening fails here.
BOOST_AUTO_TEST_CASE(codec_fixed_words_keep_their_byte_order) {
  std::string le, be, prefixed;
  put_fixed_le(le, 0x0102030405060708, 8);
  put_fixed_le(le, 0xa0b0c0d0, 4);
  put_fixed_be(be, 0x0102030405060708, 8);
  put_fixed_be(be, 0xa0b0c0d0, 4);
  put_fixed64_string(prefixed, "ab");
  BOOST_TEST(le == std::string("\x08\x07\x06\x05\x04\x03\x02\x01\xd0\xc0\xb0\xa0", 12));
  BOOST_TEST(be == std::string("\x01\x02\x03\x04\x05\x06\x07\x08\xa0\xb0\xc0\xd0", 12));
  BOOST_TEST(prefixed == std::string("\x02\0\0\0\0\0\0\0ab", 10));
  BOOST_TEST(get_fixed_le(le.data(), 8) == 0x0102030405060708u);
  BOOST_TEST(get_fixed_le(le.data() + 8, 4) == 0xa0b0c0d0u);
  BOOST_TEST(get_fixed_be(be.data(), 8) == 0x0102030405060708u);
  BOOST_TEST(get_fixed_be(be.data() + 8, 4) == 0xa0b0c0d0u);
  Decoder d(prefixed);
  std::string_view text;
  BOOST_TEST_REQUIRE(d.fixed64_string(&text));
  BOOST_TEST(text == "ab");
  BOOST_TEST(d.at_end());
  Decoder truncated(std::string_view(prefixed.data(), 9));
  BOOST_TEST(!truncated.fixed64_string(&text));
}

BOOST_AUTO_TEST_CASE(dedup_record_key_is_byte_identical_to_the_stored_one) {
  DedupRecord r;
  r.day = -2;
  r.sequence = 0x0102030405060708;
  r.part = 0x0a0b0c0d;
  const std::string golden("\x7f\xff\xff\xff\xff\xff\xff\xfe\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d", 20);
  BOOST_TEST(dedup_record_key(r) == golden);
  DedupRecord back;
  BOOST_TEST_REQUIRE(parse_dedup_record_key(golden, &back));
  BOOST_TEST(back.day == -2);
  BOOST_TEST(back.sequence == r.sequence);
  BOOST_TEST(back.part == r.part);
}

// A RocksDB item as stored before the codec was shared: format byte 1, the version (8 bytes,
// little-endian), the item_json length (4 bytes, little-endian), item_json, internal.
BOOST_AUTO_TEST_CASE(rocksdb_item_bytes_are_unchanged_both_ways) {
  TempDir dir;
  const std::string old_value("\x01\x05\0\0\0\0\0\0\0\x02\0\0\0{}int", 18);
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    BOOST_TEST_REQUIRE(rocksdb::DB::Open(o, dir.path.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    BOOST_TEST(db->Put(rocksdb::WriteOptions(), "ICUSTOMER#old", old_value).ok());
    BOOST_TEST(db->Close().ok());
  }
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &store).is_ok());
    ItemRecord r;
    BOOST_TEST_REQUIRE(store->get("CUSTOMER#old", &r).is_ok());
    BOOST_TEST(r.version == 5);
    BOOST_TEST(r.item_json == "{}");
    BOOST_TEST(r.internal == "int");
    WriteSet w;
    w.puts.push_back(ConditionalPut{ItemRecord{"CUSTOMER#new", 5, "{}", "int"}, 0});
    std::vector<std::size_t> conflicts;
    BOOST_TEST_REQUIRE(store->commit(w, &conflicts).is_ok());
  }
  rocksdb::DB* raw = nullptr;
  BOOST_TEST_REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir.path.string(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string written;
  BOOST_TEST_REQUIRE(db->Get(rocksdb::ReadOptions(), "ICUSTOMER#new", &written).ok());
  BOOST_TEST(written == old_value);
}

// ------------------------------------------------------------ bulk loads (replay)

namespace {

std::vector<std::string> dedup_scan(StateStore& store) {
  std::vector<std::string> out;
  Status s = store.scan_dedup([&](const DedupRecord& r) {
    out.push_back(r.data + "@" + std::to_string(r.day) + "/" + std::to_string(r.part));
    return true;
  });
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return out;
}

// Part `part` of a bulk load: the given PKs (in order) and one dedup record per day.
void write_part(StateStore& store, uint32_t part, const std::vector<std::string>& pks,
                const std::vector<int64_t>& days) {
  std::unique_ptr<BulkPart> bulk;
  BOOST_TEST_REQUIRE(store.open_bulk_part(part, &bulk).is_ok());
  BOOST_TEST_REQUIRE(static_cast<bool>(bulk));
  std::vector<ConditionalPut> puts;
  for (const auto& pk : pks) puts.push_back(put(pk, 0, "{\"" + pk + "\"}", "internal of " + pk));
  std::vector<DedupRecord> records;
  for (int64_t day : days) records.push_back(DedupRecord{day, 1, part, "ids of " + std::to_string(part)});
  BOOST_TEST_REQUIRE(bulk->add_puts(puts).is_ok());
  BOOST_TEST_REQUIRE(bulk->add_dedup(records).is_ok());
  BOOST_TEST_REQUIRE(bulk->finish().is_ok());
}

std::size_t files_in(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    n += it->is_regular_file() ? 1 : 0;
  return n;
}

}  // namespace

// Parts built apart (the shards' SST files, in parallel) show nothing until they are
// ingested, then read exactly like committed items and dedup records, across a reopen.
BOOST_AUTO_TEST_CASE(rocksdb_bulk_parts_show_up_at_once_when_ingested) {
  TempDir dir;
  const std::string db = dir / "db";
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store, RocksDbOptions{/*bulk_load=*/true}).is_ok());
    BOOST_TEST_REQUIRE(store->clear().is_ok());
    write_part(*store, 1, {"CUSTOMER#a", "CUSTOMER#c"}, {-3, 7});
    write_part(*store, 0, {"CUSTOMER#b", "CUSTOMER#d"}, {7});
    std::unique_ptr<BulkPart> empty;  // a shard without customers
    BOOST_TEST_REQUIRE(store->open_bulk_part(2, &empty).is_ok());
    BOOST_TEST_REQUIRE(empty->finish().is_ok());
    BOOST_TEST(scan_pks(*store).empty());
    BOOST_TEST(dedup_scan(*store).empty());
    BOOST_TEST_REQUIRE(store->ingest_bulk_parts({}).is_ok());
    BOOST_TEST(!fs::exists(db + "/bulk-load"), "ingested files are moved into the database");
    BOOST_TEST(store->sync().is_ok());
  }
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store).is_ok());
  BOOST_TEST(scan_pks(*store) == (std::vector<std::string>{"CUSTOMER#a", "CUSTOMER#b", "CUSTOMER#c", "CUSTOMER#d"}));
  const ItemRecord c = read(*store, "CUSTOMER#c");
  BOOST_TEST(c.version == 1);
  BOOST_TEST(c.item_json == "{\"CUSTOMER#c\"}");
  BOOST_TEST(c.internal == "internal of CUSTOMER#c");
  BOOST_TEST(dedup_scan(*store) == (std::vector<std::string>{"ids of 1@-3/1", "ids of 0@7/0", "ids of 1@7/1"}));
  // Later commits go on from the ingested versions.
  BOOST_TEST(write(*store, {put("CUSTOMER#c", 0)}) == Conflicts{0});
  BOOST_TEST(write(*store, {put("CUSTOMER#c", 1)}).empty());
}

// A bulk load cut short (the process died before the ingestion) leaves nothing visible,
// and its files go at the next clear (the next replay), which then loads normally.
BOOST_AUTO_TEST_CASE(rocksdb_a_bulk_load_cut_short_leaves_no_item_and_no_file_behind) {
  TempDir dir;
  const std::string db = dir / "db";
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store, RocksDbOptions{/*bulk_load=*/true}).is_ok());
    write_part(*store, 0, {"CUSTOMER#a"}, {1});
    BOOST_TEST(store->sync().is_ok());
  }
  BOOST_TEST(files_in(db + "/bulk-load") == 2u);
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store, RocksDbOptions{/*bulk_load=*/true}).is_ok());
  BOOST_TEST(scan_pks(*store).empty());
  BOOST_TEST(store->ingest_bulk_parts({}).is_ok());  // the parts of another process are not taken
  BOOST_TEST(scan_pks(*store).empty());
  BOOST_TEST_REQUIRE(store->clear().is_ok());
  BOOST_TEST(!fs::exists(db + "/bulk-load"));
  write_part(*store, 0, {"CUSTOMER#b"}, {2});
  BOOST_TEST_REQUIRE(store->ingest_bulk_parts({}).is_ok());
  BOOST_TEST(scan_pks(*store) == (std::vector<std::string>{"CUSTOMER#b"}));
  BOOST_TEST(dedup_scan(*store) == (std::vector<std::string>{"ids of 0@2/0"}));
}

// A daemon's last commit goes through bulk parts too: on a store that holds items, the
// parts' puts expect the versions stored, and the commit's meta and forgotten dedup days
// become visible with them, at once.
BOOST_AUTO_TEST_CASE(rocksdb_a_live_bulk_commit_takes_the_parts_with_its_meta) {
  TempDir dir;
  const std::string db = dir / "db";
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store).is_ok());
    WriteSet before;
    before.puts = {put("CUSTOMER#a", 0, "a1"), put("CUSTOMER#b", 0, "b1")};
    before.meta = {{"clock", "1"}};
    before.dedup = {DedupRecord{3, 1, 0, "old ids"}, DedupRecord{9, 1, 0, "kept ids"}};
    std::vector<std::size_t> conflicts;
    BOOST_TEST_REQUIRE(store->commit(before, &conflicts).is_ok());
    BOOST_TEST_REQUIRE(conflicts.empty());
    std::unique_ptr<BulkPart> bulk;
    BOOST_TEST_REQUIRE(store->open_bulk_part(0, &bulk).is_ok());
    BOOST_TEST_REQUIRE(static_cast<bool>(bulk));
    BOOST_TEST_REQUIRE(bulk->add_puts({put("CUSTOMER#a", 1, "a2"), put("CUSTOMER#c", 0, "c1")}).is_ok());
    BOOST_TEST_REQUIRE(bulk->add_dedup({DedupRecord{9, 2, 0, "new ids"}}).is_ok());
    BOOST_TEST_REQUIRE(bulk->finish().is_ok());
    WriteSet with;
    with.meta = {{"clock", "2"}, {"checkpoint", "2"}};
    with.forget_dedup_before_day = 5;
    BOOST_TEST(read(*store, "CUSTOMER#a").item_json == "a1");  // nothing shows before the ingestion
    Status s = store->ingest_bulk_parts(with);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
    BOOST_TEST(!fs::exists(db + "/bulk-load"));
    BOOST_TEST(store->sync().is_ok());
  }
  std::unique_ptr<StateStore> store;  // survives a reopen
  BOOST_TEST_REQUIRE(open_rocksdb_store(db, &store).is_ok());
  BOOST_TEST(scan_pks(*store) == (std::vector<std::string>{"CUSTOMER#a", "CUSTOMER#b", "CUSTOMER#c"}));
  BOOST_TEST(read(*store, "CUSTOMER#a").item_json == "a2");
  BOOST_TEST(read(*store, "CUSTOMER#a").version == 2);
  BOOST_TEST(read(*store, "CUSTOMER#b").item_json == "b1");
  std::string value;
  BOOST_TEST_REQUIRE(store->get_meta("clock", &value).is_ok());
  BOOST_TEST(value == "2");
  BOOST_TEST_REQUIRE(store->get_meta("checkpoint", &value).is_ok());
  BOOST_TEST(value == "2");
  BOOST_TEST(dedup_scan(*store) == (std::vector<std::string>{"kept ids@9/0", "new ids@9/0"}));
  BOOST_TEST(write(*store, {put("CUSTOMER#c", 1, "c2")}).empty());  // later commits go on from there
}

// A part's put that does not find the version it expects (another writer moved it) is
// refused when the part takes it, naming the item.
BOOST_AUTO_TEST_CASE(rocksdb_a_live_bulk_part_refuses_a_stale_version) {
  TempDir dir;
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir / "db", &store).is_ok());
  BOOST_TEST(write(*store, {put("CUSTOMER#a", 0, "a1"), put("CUSTOMER#b", 0, "b1")}).empty());
  BOOST_TEST(write(*store, {put("CUSTOMER#b", 1, "b2")}).empty());  // the other writer
  std::unique_ptr<BulkPart> bulk;
  BOOST_TEST_REQUIRE(store->open_bulk_part(0, &bulk).is_ok());
  Status s = bulk->add_puts({put("CUSTOMER#a", 1, "a2"), put("CUSTOMER#b", 1, "b-lost")});
  BOOST_TEST(s.code() == Status::Code::conflict, s.to_string());
  BOOST_TEST(s.message().find("CUSTOMER#b") != std::string::npos, s.message());
}

// A write between the parts and their ingestion that moves a version they expect fails
// the whole bulk commit: no item, no meta, no file of it is left.
BOOST_AUTO_TEST_CASE(rocksdb_a_live_bulk_commit_overtaken_by_a_write_writes_nothing) {
  TempDir dir;
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir / "db", &store).is_ok());
  BOOST_TEST(write(*store, {put("CUSTOMER#a", 0, "a1"), put("CUSTOMER#b", 0, "b1")}).empty());
  for (uint32_t part : {0u, 1u}) {
    std::unique_ptr<BulkPart> bulk;
    BOOST_TEST_REQUIRE(store->open_bulk_part(part, &bulk).is_ok());
    BOOST_TEST_REQUIRE(
        bulk->add_puts({part == 0 ? put("CUSTOMER#a", 1, "a2") : put("CUSTOMER#b", 1, "b-lost")}).is_ok());
    BOOST_TEST_REQUIRE(bulk->finish().is_ok());
  }
  BOOST_TEST(write(*store, {put("CUSTOMER#b", 1, "b2")}).empty());  // the other writer, after the parts
  WriteSet with;
  with.meta = {{"clock", "2"}};
  Status s = store->ingest_bulk_parts(with);
  BOOST_TEST(s.code() == Status::Code::conflict, s.to_string());
  BOOST_TEST(s.message().find("CUSTOMER#b") != std::string::npos, s.message());
  BOOST_TEST(read(*store, "CUSTOMER#a").item_json == "a1");
  BOOST_TEST(read(*store, "CUSTOMER#b").item_json == "b2");
  std::string value;
  BOOST_TEST(store->get_meta("clock", &value).is_not_found());
  BOOST_TEST(!fs::exists(dir.path / "db" / "bulk-load"));
}

// The serving store publishes a bulk commit's items once the store took them, as a
// commit's, and none of a refused one.
BOOST_AUTO_TEST_CASE(serving_store_serves_a_bulk_commits_items_once_ingested) {
  TempDir dir;
  std::unique_ptr<StateStore> inner;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.path.string(), &inner).is_ok());
  ServingStore serving(std::move(inner));
  BOOST_TEST_REQUIRE(serving.takes_bulk_parts());
  std::unique_ptr<BulkPart> bulk;
  BOOST_TEST_REQUIRE(serving.open_bulk_part(0, &bulk).is_ok());
  BOOST_TEST_REQUIRE(bulk->add_puts({put("CUSTOMER#A", 0, "a1")}).is_ok());
  BOOST_TEST_REQUIRE(bulk->finish().is_ok());
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#A").empty());  // not before the store holds it
  BOOST_TEST_REQUIRE(serving.ingest_bulk_parts({}).is_ok());
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#A") == "a1");
  BOOST_TEST_REQUIRE(serving.open_bulk_part(0, &bulk).is_ok());
  BOOST_TEST_REQUIRE(bulk->add_puts({put("CUSTOMER#A", 1, "lost")}).is_ok());
  BOOST_TEST_REQUIRE(bulk->finish().is_ok());
  BOOST_TEST(write(serving, {put("CUSTOMER#A", 1, "a2")}).empty());  // the same version, written first
  BOOST_TEST(serving.ingest_bulk_parts({}).is_conflict());
  BOOST_TEST(served_item(serving.items(), "CUSTOMER#A") == "a2");
}

// The puts of a bulk load fill a cleared store: one that expects a stored version, or
// that breaks the PK order, is refused with a message naming it.
BOOST_AUTO_TEST_CASE(rocksdb_bulk_parts_refuse_what_a_cleared_store_cannot_take) {
  TempDir dir;
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir / "db", &store, RocksDbOptions{/*bulk_load=*/true}).is_ok());
  std::unique_ptr<BulkPart> bulk;
  BOOST_TEST_REQUIRE(store->open_bulk_part(0, &bulk).is_ok());
  BOOST_TEST_REQUIRE(static_cast<bool>(bulk));
  Status s = bulk->add_puts({put("CUSTOMER#a", 2)});
  BOOST_TEST(s.code() == Status::Code::invalid_argument);
  BOOST_TEST(s.message().find("CUSTOMER#a") != std::string::npos, s.message());
  BOOST_TEST_REQUIRE(store->open_bulk_part(1, &bulk).is_ok());
  s = bulk->add_puts({put("CUSTOMER#b", 0), put("CUSTOMER#a", 0)});
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find(dir.path.string()) != std::string::npos, s.message());
}
