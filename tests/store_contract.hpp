// The StateStore contract: the behaviours every backend must share (memory, RocksDB,
// DynamoDB). A test file defines its backend structs (each with a `store` member, and
// `binary_keys`: whether PKs may be any bytes or must be UTF-8; `race_rounds`: how many
// rounds the racing test runs) and the list `ContractBackends`, then includes this file.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "state/store.hpp"

namespace streamscore {
// Lets BOOST_TEST print a Status::Code when a comparison fails (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, Status::Code c) {
  static const char* names[] = {"ok", "not_found", "conflict", "io_error", "corruption", "invalid_argument"};
  return os << names[static_cast<int>(c)];
}
}  // namespace streamscore

using namespace streamscore;

namespace {

// A put that advances `expected` by one, as the engine writes.
ConditionalPut put(const std::string& pk, int64_t expected, const std::string& json = "{}",
                   const std::string& internal = "") {
  ConditionalPut p;
  p.record.pk = pk;
  p.record.version = expected + 1;
  p.record.item_json = json;
  p.record.internal = internal;
  p.expected_version = expected;
  return p;
}

std::vector<std::size_t> write(StateStore& store, const std::vector<ConditionalPut>& puts) {
  std::vector<std::size_t> conflicts;
  Status s = store.put_batch(puts, &conflicts);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return conflicts;
}

ItemRecord read(StateStore& store, const std::string& pk) {
  ItemRecord r;
  Status s = store.get(pk, &r);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return r;
}

std::vector<std::string> scan_pks(StateStore& store) {
  std::vector<std::string> pks;
  Status s = store.scan([&](const ItemRecord& r) {
    pks.push_back(r.pk);
    return true;
  });
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return pks;
}

using Conflicts = std::vector<std::size_t>;

}  // namespace

// ------------------------------------------------------------ both backends

BOOST_AUTO_TEST_CASE_TEMPLATE(get_missing_is_not_found, B, ContractBackends) {
  B b;
  ItemRecord r;
  BOOST_TEST(b.store->get("CUSTOMER#nobody", &r).is_not_found());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(insert_with_expected_zero, B, ContractBackends) {
  B b;
  BOOST_TEST(write(*b.store, {put("CUSTOMER#C1", 0, R"({"PK":"CUSTOMER#C1"})", "buckets")}).empty());
  ItemRecord r = read(*b.store, "CUSTOMER#C1");
  BOOST_TEST(r.pk == "CUSTOMER#C1");
  BOOST_TEST(r.version == 1);
  BOOST_TEST(r.item_json == R"({"PK":"CUSTOMER#C1"})");
  BOOST_TEST(r.internal == "buckets");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conflicting_insert_keeps_old_item, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#C1", 0, "old")});
  BOOST_TEST(write(*b.store, {put("CUSTOMER#C1", 0, "new")}) == Conflicts{0});
  ItemRecord r = read(*b.store, "CUSTOMER#C1");
  BOOST_TEST(r.version == 1);
  BOOST_TEST(r.item_json == "old");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_with_right_version, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#C1", 0, "v1")});
  BOOST_TEST(write(*b.store, {put("CUSTOMER#C1", 1, "v2", "i2")}).empty());
  ItemRecord r = read(*b.store, "CUSTOMER#C1");
  BOOST_TEST(r.version == 2);
  BOOST_TEST(r.item_json == "v2");
  BOOST_TEST(r.internal == "i2");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stale_version_rejected, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#C1", 0, "v1")});
  write(*b.store, {put("CUSTOMER#C1", 1, "v2")});
  BOOST_TEST(write(*b.store, {put("CUSTOMER#C1", 1, "stale")}) == Conflicts{0});
  ItemRecord r = read(*b.store, "CUSTOMER#C1");
  BOOST_TEST(r.version == 2);
  BOOST_TEST(r.item_json == "v2");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(batch_with_a_conflict_applies_nothing, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#A", 0, "a1")});
  Conflicts c = write(*b.store, {put("CUSTOMER#B", 0, "b1"),    // would pass
                                 put("CUSTOMER#A", 5, "a?"),    // wrong version
                                 put("CUSTOMER#A", 0, "a?"),    // exists already
                                 put("CUSTOMER#A", 1, "a2"),    // would pass
                                 put("CUSTOMER#Z", 3, "z?"),    // missing, expected 3
                                 put("CUSTOMER#C", 0, "c1")});  // would pass
  BOOST_TEST(c == (Conflicts{1, 2, 4}));
  BOOST_TEST(read(*b.store, "CUSTOMER#A").item_json == "a1");
  ItemRecord r;
  BOOST_TEST(b.store->get("CUSTOMER#B", &r).is_not_found());
  BOOST_TEST(b.store->get("CUSTOMER#C", &r).is_not_found());
  BOOST_TEST(b.store->get("CUSTOMER#Z", &r).is_not_found());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(commit_writes_items_meta_and_dedup_records_together, B, ContractBackends) {
  B b;
  Conflicts c;
  WriteSet w;
  w.puts = {put("CUSTOMER#A", 0, "a1")};
  w.meta = {{"clock", "c1"}, {"pos", "p1"}};
  w.dedup = {DedupRecord{20000, 1, 0, "ids-1"}};
  BOOST_TEST(b.store->commit(w, &c).is_ok());
  BOOST_TEST(c.empty());
  std::string v;
  BOOST_TEST(b.store->get_meta("clock", &v).is_ok());
  BOOST_TEST(v == "c1");
  // A conflicting commit leaves meta values and dedup records as they were, too.
  WriteSet bad;
  bad.puts = {put("CUSTOMER#A", 0, "a?")};
  bad.meta = {{"clock", "c2"}};
  bad.dedup = {DedupRecord{20000, 2, 0, "ids-2"}};
  bad.forget_dedup_before_day = 30000;
  BOOST_TEST(b.store->commit(bad, &c).is_ok());
  BOOST_TEST(c == Conflicts{0});
  BOOST_TEST(b.store->get_meta("clock", &v).is_ok());
  BOOST_TEST(v == "c1");
  BOOST_TEST(read(*b.store, "CUSTOMER#A").item_json == "a1");
  std::vector<std::string> datas;
  const Status scanned = b.store->scan_dedup([&](const DedupRecord& r) {
    datas.push_back(r.data);
    return true;
  });
  BOOST_TEST(scanned.is_ok(), scanned.to_string());
  BOOST_TEST(datas == std::vector<std::string>{"ids-1"});
  // Meta alone is fine.
  WriteSet meta_only;
  meta_only.meta = {{"pos", "p2"}};
  BOOST_TEST(b.store->commit(meta_only, &c).is_ok());
  BOOST_TEST(b.store->get_meta("pos", &v).is_ok());
  BOOST_TEST(v == "p2");
}

// Dedup records come back by day, then sequence, then part (negative days too), and
// whole days before a bound are forgotten in the same commit that adds new ones.
BOOST_AUTO_TEST_CASE_TEMPLATE(dedup_records_scan_in_order_and_expire_by_day, B, ContractBackends) {
  B b;
  Conflicts c;
  WriteSet w;
  w.dedup = {DedupRecord{3, 2, 0, "d3s2p0"}, DedupRecord{-1, 9, 1, "d-1"}, DedupRecord{3, 1, 7, "d3s1p7"},
             DedupRecord{3, 1, 2, "d3s1p2"}, DedupRecord{40000, 1, 0, "d40000"}};
  BOOST_REQUIRE(b.store->commit(w, &c).is_ok());
  auto scan = [&] {
    std::vector<std::string> out;
    BOOST_REQUIRE(b.store
                      ->scan_dedup([&](const DedupRecord& r) {
                        out.push_back(r.data + "@" + std::to_string(r.day) + "/" + std::to_string(r.sequence) + "/" +
                                      std::to_string(r.part));
                        return true;
                      })
                      .is_ok());
    return out;
  };
  BOOST_TEST(scan() == (std::vector<std::string>{"d-1@-1/9/1", "d3s1p2@3/1/2", "d3s1p7@3/1/7", "d3s2p0@3/2/0",
                                                 "d40000@40000/1/0"}));
  WriteSet next;
  next.forget_dedup_before_day = 4;
  next.dedup = {DedupRecord{5, 3, 0, "d5"}};
  BOOST_REQUIRE(b.store->commit(next, &c).is_ok());
  BOOST_TEST(scan() == (std::vector<std::string>{"d5@5/3/0", "d40000@40000/1/0"}));
  BOOST_REQUIRE(b.store->clear().is_ok());
  BOOST_TEST(scan().empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(same_key_twice_in_one_batch, B, ContractBackends) {
  B b;
  // Checked as if applied one after another: 1 then 2 both pass.
  BOOST_TEST(write(*b.store, {put("CUSTOMER#X", 0, "x1"), put("CUSTOMER#X", 1, "x2")}).empty());
  ItemRecord x = read(*b.store, "CUSTOMER#X");
  BOOST_TEST(x.version == 2);
  BOOST_TEST(x.item_json == "x2");
  // A second insert of the same key sees the first one (and the batch is refused).
  BOOST_TEST(write(*b.store, {put("CUSTOMER#Y", 0, "y1"), put("CUSTOMER#Y", 0, "y1bis")}) == Conflicts{1});
  ItemRecord y;
  BOOST_TEST(b.store->get("CUSTOMER#Y", &y).is_not_found());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(empty_batch_clears_conflicts, B, ContractBackends) {
  B b;
  Conflicts c{7, 8};
  BOOST_TEST(b.store->put_batch({}, &c).is_ok());
  BOOST_TEST(c.empty());
}

// A customer whose events have not reached a tick yet: version 0, no public item,
// only internal data. It can be rewritten under version 0, then get its first item.
BOOST_AUTO_TEST_CASE_TEMPLATE(version_zero_rows_carry_internal_data_until_the_first_item, B, ContractBackends) {
  B b;
  ConditionalPut pending = put("CUSTOMER#P", 0, "", "buckets-1");
  pending.record.version = 0;
  BOOST_TEST(write(*b.store, {pending}).empty());
  BOOST_TEST(read(*b.store, "CUSTOMER#P").version == 0);
  pending.record.internal = "buckets-2";  // internal data moved on, still no item
  BOOST_TEST(write(*b.store, {pending}).empty());
  BOOST_TEST(read(*b.store, "CUSTOMER#P").internal == "buckets-2");
  ConditionalPut first = put("CUSTOMER#P", 0, "{\"version\":3}", "buckets-3");
  first.record.version = 3;  // several ticks' versions in one flush
  BOOST_TEST(write(*b.store, {first}).empty());
  const ItemRecord r = read(*b.store, "CUSTOMER#P");
  BOOST_TEST(r.version == 3);
  BOOST_TEST(r.internal == "buckets-3");
  BOOST_TEST(write(*b.store, {pending}).size() == 1u);  // stale: the store holds 3 now
}

BOOST_AUTO_TEST_CASE_TEMPLATE(bad_version_is_invalid_and_applies_nothing, B, ContractBackends) {
  B b;
  ConditionalPut bad = put("CUSTOMER#B", 5);
  bad.record.version = 4;  // must not move back from the expected version
  Conflicts c;
  Status s = b.store->put_batch({put("CUSTOMER#A", 0), bad}, &c);
  BOOST_TEST(s.code() == Status::Code::invalid_argument);
  ItemRecord r;
  BOOST_TEST(b.store->get("CUSTOMER#A", &r).is_not_found());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(scan_is_bytewise_ordered_and_stops_early, B, ContractBackends) {
  B b;
  std::vector<std::string> pks = {"CUSTOMER#b",    "CUSTOMER#B",    "CUSTOMER#10",   "CUSTOMER#9",     "CUSTOMER#",
                                  "CUSTOMER#\xff", "CUSTOMER#\x01", "CUSTOMER#\x7f", "CUSTOMER#\x80x", "A",
                                  "CUSTOMER#bb"};
  if (!B::binary_keys)  // UTF-8 only: multi-byte characters, whose UTF-8 and UTF-16 orders differ
    pks = {"CUSTOMER#b",
           "CUSTOMER#B",
           "CUSTOMER#10",
           "CUSTOMER#9",
           "CUSTOMER#",
           "CUSTOMER#\xc3\xbf",
           "CUSTOMER#\x01",
           "CUSTOMER#\x7f",
           "CUSTOMER#\xef\xbd\x81",
           "CUSTOMER#\xf0\x9f\x98\x80",
           "A",
           "CUSTOMER#bb"};
  for (const auto& pk : pks) write(*b.store, {put(pk, 0)});
  BOOST_TEST(b.store->put_meta("clock", "meta must not show up in scans").is_ok());
  std::vector<std::string> expected = pks;
  // Bytewise = compare as unsigned bytes (so "\xff" sorts last, not first).
  std::sort(expected.begin(), expected.end(), [](const std::string& x, const std::string& y) {
    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end(), [](char p, char q) {
      return static_cast<unsigned char>(p) < static_cast<unsigned char>(q);
    });
  });
  BOOST_TEST(scan_pks(*b.store) == expected, boost::test_tools::per_element());

  std::vector<std::string> seen;
  Status s = b.store->scan([&](const ItemRecord& r) {
    seen.push_back(r.pk);
    return seen.size() < 3;
  });
  BOOST_TEST(s.is_ok());
  BOOST_TEST(seen == std::vector<std::string>(expected.begin(), expected.begin() + 3),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(meta_put_get_not_found, B, ContractBackends) {
  B b;
  std::string v;
  BOOST_TEST(b.store->get_meta("clock", &v).is_not_found());
  BOOST_TEST(b.store->put_meta("clock", "2025-01-01T10:10:00Z").is_ok());
  BOOST_TEST(b.store->get_meta("clock", &v).is_ok());
  BOOST_TEST(v == "2025-01-01T10:10:00Z");
  BOOST_TEST(b.store->put_meta("clock", "later").is_ok());
  BOOST_TEST(b.store->get_meta("clock", &v).is_ok());
  BOOST_TEST(v == "later");
  // Meta and items are separate namespaces.
  ItemRecord r;
  BOOST_TEST(b.store->get("clock", &r).is_not_found());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(clear_removes_items_and_meta, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#A", 0), put("CUSTOMER#B", 0)});
  BOOST_TEST(b.store->put_meta("format", "1").is_ok());
  BOOST_TEST(b.store->clear().is_ok());
  ItemRecord r;
  std::string v;
  BOOST_TEST(b.store->get("CUSTOMER#A", &r).is_not_found());
  BOOST_TEST(b.store->get_meta("format", &v).is_not_found());
  BOOST_TEST(scan_pks(*b.store).empty());
  // Rebuilding after a clear starts from version 1 again.
  BOOST_TEST(write(*b.store, {put("CUSTOMER#A", 0, "fresh")}).empty());
  BOOST_TEST(read(*b.store, "CUSTOMER#A").version == 1);
  BOOST_TEST(scan_pks(*b.store) == std::vector<std::string>{"CUSTOMER#A"});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(binary_bytes_round_trip, B, ContractBackends) {
  B b;
  const std::string pk("CUSTOMER#\0nul", 13);
  const std::string json("{\"a\":\"\0\"}", 9);
  const std::string internal("\0\x01\0\xff\0\0", 6);
  write(*b.store, {put(pk, 0, json, internal), put("CUSTOMER#empty", 0, "", "")});
  ItemRecord r = read(*b.store, pk);
  BOOST_TEST(r.pk == pk);
  BOOST_TEST(r.item_json == json);
  BOOST_TEST(r.internal == internal);
  ItemRecord e = read(*b.store, "CUSTOMER#empty");
  BOOST_TEST(e.item_json.empty());
  BOOST_TEST(e.internal.empty());
  std::string v;
  const std::string meta_value("x\0y", 3);
  BOOST_TEST(b.store->put_meta(std::string("k\0", 2), meta_value).is_ok());
  BOOST_TEST(b.store->get_meta(std::string("k\0", 2), &v).is_ok());
  BOOST_TEST(v == meta_value);
}

// Each thread reads, increments and writes conditionally with update_item, which
// retries from a fresh read on conflict. With no lost update every key ends at
// version == number of increments, and the counter inside the item agrees with it.
BOOST_AUTO_TEST_CASE_TEMPLATE(racing_conditional_updates_lose_nothing, B, ContractBackends) {
  B b;
  constexpr int kKeys = 100, kRounds = B::race_rounds, kThreads = 2;
  auto key = [](int i) { return "CUSTOMER#" + std::to_string(i); };
  std::atomic<uint64_t> conflicts{0};
  std::atomic<long> errors{0};
  auto increment = [](const ItemRecord* cur, ItemRecord* next) {
    const long n = cur ? std::stol(cur->item_json) : 0;
    next->version = (cur ? cur->version : 0) + 1;
    next->item_json = std::to_string(n + 1);
    return true;
  };
  auto worker = [&] {
    uint64_t mine = 0;
    for (int round = 0; round < kRounds; ++round)
      for (int i = 0; i < kKeys; ++i)
        if (!update_item(*b.store, key(i), increment, &mine).is_ok()) ++errors;
    conflicts += mine;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  BOOST_TEST(errors.load() == 0);
  for (int i = 0; i < kKeys; ++i) {
    ItemRecord r = read(*b.store, key(i));
    BOOST_TEST(r.version == kRounds * kThreads);
    BOOST_TEST(std::stol(r.item_json) == r.version);
  }
  BOOST_TEST_MESSAGE("retried conflicts: " << conflicts.load());
}

// A write that lands between update_item's read and its write is detected, counted,
// and the update is redone on top of it: both increments survive.
BOOST_AUTO_TEST_CASE_TEMPLATE(update_item_retries_from_fresh_state, B, ContractBackends) {
  B b;
  write(*b.store, {put("CUSTOMER#R", 0, "10")});
  int calls = 0;
  uint64_t conflicts = 0;
  Status s = update_item(
      *b.store, "CUSTOMER#R",
      [&](const ItemRecord* cur, ItemRecord* next) {
        if (++calls == 1) write(*b.store, {put("CUSTOMER#R", cur->version, "100")});  // the racer
        next->version = cur->version + 1;
        next->item_json = std::to_string(std::stol(cur->item_json) + 1);
        return true;
      },
      &conflicts);
  BOOST_TEST(s.is_ok());
  BOOST_TEST(calls == 2);
  BOOST_TEST(conflicts == 1u);
  const ItemRecord r = read(*b.store, "CUSTOMER#R");
  BOOST_TEST(r.version == 3);
  BOOST_TEST(r.item_json == "101");
}
