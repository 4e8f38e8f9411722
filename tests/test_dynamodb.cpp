// The DynamoDB backend against dynalite (a DynamoDB-API server, tests/dynalite/): the
// StateStore contract, the redo log across simulated crashes, throttling and retries,
// racing writers, and the CLI (create-table, replay/run/export against RocksDB's result,
// missing credentials).
#define BOOST_TEST_MODULE dynamodb
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <xxhash.h>
#include <boost/mpl/list.hpp>

#include "state/dynamodb_client.hpp"
#include "state/dynamodb_partitions.hpp"
#include "state/dynamodb_store.hpp"
#include "state/shard_state.hpp"
#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"

namespace {

// One dynalite for the whole test binary; every test gets tables of its own.
streamscore::testing::Dynalite* g_dynalite = nullptr;

struct DynaliteFixture {
  std::unique_ptr<streamscore::testing::Dynalite> server;
  void setup() {
    server = std::make_unique<streamscore::testing::Dynalite>();
    g_dynalite = server.get();
  }
  void teardown() {
    g_dynalite = nullptr;
    server.reset();
  }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(DynaliteFixture);

struct DynamoBackend {
  static constexpr bool binary_keys = false;  // PKs are DynamoDB strings: UTF-8
  static constexpr int race_rounds = 3;       // every update is two requests to a node server
  std::unique_ptr<streamscore::StateStore> store;
  DynamoBackend() {
    streamscore::Status s = streamscore::open_dynamodb_store(g_dynalite->fresh_table(), &store);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  }
};

using ContractBackends = boost::mpl::list<DynamoBackend>;

#include "tests/store_contract.hpp"

using namespace streamscore::testing;

namespace {

std::unique_ptr<StateStore> open_store_on(const DynamoDbOptions& o) {
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(o, &store);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return store;
}

// An engine-shaped item: the public JSON ends with its version (what rebase_put moves).
std::string engine_json(const std::string& pk, const std::string& tag, int64_t version) {
  return "{\"PK\":\"" + pk +
         "\",\"SK\":\"STATE\",\"features\":{\"total_txn_30d\":2,\"total_amount_30d\":842.5,"
         "\"avg_amount_30d\":421.25},\"last_event_time\":\"2025-01-01T10:05:00Z\",\"as_of\":\"2025-01-01T10:10:00Z\","
         "\"tag\":\"" +
         tag + "\",\"version\":" + std::to_string(version) + "}";
}

// `size` bytes that do not compress (the redo log is compressed).
std::string noise(std::size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// A write set with `items` puts (each with `internal_bytes` of internal data), meta and
// dedup records: big enough internal data makes the redo log go to chunks.
WriteSet sample_writes(int items, int64_t expected, std::size_t internal_bytes, const std::string& tag) {
  WriteSet w;
  for (int i = 0; i < items; ++i) {
    const std::string pk = "CUSTOMER#C" + std::to_string(1000 + i);
    ConditionalPut p = put(pk, expected, engine_json(pk, tag, expected + 1), noise(internal_bytes, i + 100 * expected));
    w.puts.push_back(std::move(p));
  }
  w.meta = {{"clock", "clock-" + tag}, {"source.file", "pos-" + tag}};
  w.dedup = {DedupRecord{20000, static_cast<uint64_t>(expected + 1), 0, noise(internal_bytes, 7)},
             DedupRecord{20001, static_cast<uint64_t>(expected + 1), 1, "ids-" + tag}};
  return w;
}

std::string meta_of(StateStore& store, const std::string& key) {
  std::string v;
  Status s = store.get_meta(key, &v);
  return s.is_ok() ? v : "<" + s.to_string() + ">";
}

std::vector<std::string> dedup_of(StateStore& store) {
  std::vector<std::string> out;
  Status s = store.scan_dedup([&](const DedupRecord& r) {
    out.push_back(std::to_string(r.day) + "/" + std::to_string(r.sequence) + "/" + std::to_string(r.part) + ":" +
                  std::to_string(r.data.size()));
    return true;
  });
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return out;
}

// Items of this writer's redo log left in the table (marker excluded), in any of its
// 16 chunk partitions.
std::size_t log_chunks(const DynamoDbOptions& o) {
  AwsCredentials credentials;
  BOOST_TEST_REQUIRE(load_aws_credentials(&credentials).is_ok());
  DynamoDbClient client(resolve_dynamodb_options(o), credentials);
  std::size_t n = 0;
  for (const char* p : {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"}) {
    boost::json::object reply;
    Status s = client.call("Query",
                           {{"TableName", o.table},
                            {"KeyConditionExpression", "PK = :p"},
                            {"ExpressionAttributeValues", {{":p", {{"S", "LOG#" + o.writer + "#" + p}}}}}},
                           &reply);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
    n += reply.at("Items").as_array().size();
  }
  return n;
}

}  // namespace

// ------------------------------------------------------------ the redo log

namespace {

// A table whose writer committed `items` customers at version 1 ("old"), then crashed in
// its next commit (version 2, `tag`, `internal` bytes each) right after `stage`.
DynamoDbOptions table_with_a_crashed_commit(int items, CommitStage stage, std::size_t internal,
                                            const std::string& tag) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  Conflicts c;
  BOOST_TEST_REQUIRE(open_store_on(o)->commit(sample_writes(items, 0, 10, "old"), &c).is_ok());
  BOOST_TEST_REQUIRE(c.empty());
  DynamoDbOptions crashing = o;
  crashing.test_stop_after = stage;
  Status s = open_store_on(crashing)->commit(sample_writes(items, 1, internal, tag), &c);
  BOOST_TEST(s.message().find("stopped by the test hook") != std::string::npos, s.to_string());
  return o;
}

// Opens the table again as its writer (which finishes a pending log), counting afresh.
std::unique_ptr<StateStore> reopen(DynamoDbOptions* o) {
  o->metrics = std::make_shared<DynamoDbProbe>();
  return open_store_on(*o);
}

// Another writer's put of one item, the way update_item writes.
void racer_writes(DynamoDbOptions o, const ConditionalPut& p) {
  o.writer = "racer";
  o.metrics = nullptr;
  BOOST_TEST(write(*open_store_on(o), {p}).empty());  // its open does not touch our log
}

}  // namespace

// A crash after the commit point (the marker is written, nothing applied): the next open
// applies the whole write set, for a payload inline in the marker and one in log chunks.
BOOST_AUTO_TEST_CASE(crash_after_commit_point_is_finished_by_the_next_open) {
  for (std::size_t internal : {std::size_t{10}, std::size_t{120 * 1024}}) {
    DynamoDbOptions o = table_with_a_crashed_commit(4, CommitStage::committed, internal, "new");
    DynamoDbOptions peek = o;  // a bulk-load store does not recover: it shows the table as it is
    peek.bulk_load = true;
    BOOST_TEST(read(*open_store_on(peek), "CUSTOMER#C1000").version == 1);
    auto reopened = reopen(&o);
    BOOST_TEST(o.metrics->recovered.load() == 1u);
    for (int i = 0; i < 4; ++i) {
      const std::string pk = "CUSTOMER#C" + std::to_string(1000 + i);
      ItemRecord item = read(*reopened, pk);
      BOOST_TEST(item.version == 2);
      BOOST_TEST(item.item_json == engine_json(pk, "new", 2));
      BOOST_TEST(item.internal.size() == internal);
    }
    BOOST_TEST(meta_of(*reopened, "clock") == "clock-new");
    BOOST_TEST(meta_of(*reopened, "source.file") == "pos-new");
    BOOST_TEST(dedup_of(*reopened) == (std::vector<std::string>{"20000/1/0:10", "20000/2/0:" + std::to_string(internal),
                                                                "20001/1/1:7", "20001/2/1:7"}));
    BOOST_TEST(log_chunks(o) == 0u);
    // The writer goes on from there: a stale put conflicts, a fresh one passes.
    BOOST_TEST(write(*reopened, {put("CUSTOMER#C1000", 1, "stale")}) == Conflicts{0});
    BOOST_TEST(write(*reopened, {put("CUSTOMER#C1000", 2, engine_json("CUSTOMER#C1000", "next", 3)),
                                 put("CUSTOMER#C1001", 2, engine_json("CUSTOMER#C1001", "next", 3))})
                   .empty());
  }
}

// A crash after the apply, before the log is marked done: the next open applies the log
// again, and the stamps make that a no-op (no version counted twice, nothing rebased),
// even for an item another writer has written since.
BOOST_AUTO_TEST_CASE(redo_of_an_applied_log_changes_nothing) {
  DynamoDbOptions o = table_with_a_crashed_commit(3, CommitStage::applied, 10, "new");
  racer_writes(o, put("CUSTOMER#C1002", 2, engine_json("CUSTOMER#C1002", "racer", 3)));
  auto reopened = reopen(&o);
  BOOST_TEST(o.metrics->recovered.load() == 1u);
  BOOST_TEST(o.metrics->rebased.load() == 0u);
  BOOST_TEST(read(*reopened, "CUSTOMER#C1000").version == 2);
  BOOST_TEST(read(*reopened, "CUSTOMER#C1000").item_json == engine_json("CUSTOMER#C1000", "new", 2));
  BOOST_TEST(read(*reopened, "CUSTOMER#C1002").item_json == engine_json("CUSTOMER#C1002", "racer", 3));
  BOOST_TEST(meta_of(*reopened, "clock") == "clock-new");
}

// A crash before the commit point (the log is written, no marker): the old state stays,
// and the abandoned log is dropped once a later commit has passed it.
BOOST_AUTO_TEST_CASE(crash_before_commit_point_leaves_the_old_state) {
  DynamoDbOptions o = table_with_a_crashed_commit(3, CommitStage::log_written, 150 * 1024, "new");
  BOOST_TEST(log_chunks(o) > 0u);
  auto reopened = open_store_on(o);
  for (int i = 0; i < 3; ++i) {
    const std::string pk = "CUSTOMER#C" + std::to_string(1000 + i);
    BOOST_TEST(read(*reopened, pk).item_json == engine_json(pk, "old", 1));
  }
  BOOST_TEST(meta_of(*reopened, "clock") == "clock-old");
  BOOST_TEST(dedup_of(*reopened) == (std::vector<std::string>{"20000/1/0:10", "20001/1/1:7"}));
  Conflicts c;
  BOOST_TEST_REQUIRE(reopened->commit(sample_writes(3, 1, 10, "later"), &c).is_ok());
  BOOST_TEST(c.empty());
  reopened.reset();
  open_store_on(o);
  BOOST_TEST(log_chunks(o) == 0u);
}

// A writer killed in a commit with a chunked log restarts while a takeover finishes that
// log: the takeover drops the chunks between the restart reading the marker and loading
// them. The restart sees the commit finished and opens, rather than calling it corrupt.
BOOST_AUTO_TEST_CASE(a_restart_whose_log_a_takeover_finishes_meanwhile_opens) {
  DynamoDbOptions o = table_with_a_crashed_commit(3, CommitStage::committed, 200'000, "new");
  auto heir_finished = std::make_shared<std::atomic<bool>>(false);
  DynamoDbOptions restart = o;
  restart.test_fault = [o, heir_finished](std::string_view op, long*, std::string*) {
    if (op == "BatchGetItem" && !heir_finished->exchange(true)) {
      DynamoDbOptions heir = o;
      heir.writer = "heir";
      BOOST_TEST(open_store_on(heir)->recover_other_writers().is_ok());
    }
    return false;  // the request goes to the server, after the heir
  };
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(restart, &store);
  BOOST_TEST_REQUIRE(heir_finished->load());
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  for (int i = 0; i < 3; ++i) BOOST_TEST(read(*store, "CUSTOMER#C" + std::to_string(1000 + i)).version == 2);
  BOOST_TEST(log_chunks(o) == 0u);
  Conflicts c;
  BOOST_TEST(store->commit(sample_writes(3, 2, 10, "next"), &c).is_ok());
  BOOST_TEST(c.empty());
}

// Between the check and the apply, another writer moves an item: the apply moves the
// put on top of it (as commit_with_retry would), counts it, and loses neither write. The
// racer is a re-scorer: it changes the public item and keeps the internal data (seed 0:
// C1000's at version 1), which the redo log's delta of that put was made against.
BOOST_AUTO_TEST_CASE(a_racer_between_check_and_apply_is_rebased) {
  DynamoDbOptions o = table_with_a_crashed_commit(2, CommitStage::committed, 10, "engine");
  racer_writes(o, put("CUSTOMER#C1000", 1, engine_json("CUSTOMER#C1000", "racer", 2), noise(10, 0)));
  auto reopened = reopen(&o);
  BOOST_TEST(o.metrics->rebased.load() == 1u);
  const ItemRecord moved = read(*reopened, "CUSTOMER#C1000");
  BOOST_TEST(moved.version == 3);  // the racer's version 2, then ours on top
  BOOST_TEST(moved.item_json == engine_json("CUSTOMER#C1000", "engine", 3));
  BOOST_TEST(read(*reopened, "CUSTOMER#C1001").version == 2);
}

// A new customer's put logs its internal data whole: a racer that created the item
// between the check and the crash does not stop the redo, which rebases the put on it.
BOOST_AUTO_TEST_CASE(a_racer_creating_a_new_item_before_the_redo_is_rebased) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  DynamoDbOptions crashing = o;
  crashing.test_stop_after = CommitStage::committed;
  Conflicts c;
  Status s = open_store_on(crashing)->commit(sample_writes(2, 0, 10, "engine"), &c);
  BOOST_TEST(s.message().find("stopped by the test hook") != std::string::npos, s.to_string());
  racer_writes(o, put("CUSTOMER#C1000", 0, engine_json("CUSTOMER#C1000", "racer", 1), "racer buckets"));
  auto reopened = reopen(&o);
  BOOST_TEST(o.metrics->rebased.load() == 1u);
  const ItemRecord moved = read(*reopened, "CUSTOMER#C1000");
  BOOST_TEST(moved.version == 2);
  BOOST_TEST(moved.item_json == engine_json("CUSTOMER#C1000", "engine", 2));
  BOOST_TEST(moved.internal == noise(10, 0));
}

// The redo log keeps each put's internal data as a delta against the item it replaces. A
// racer that replaced that internal data between the check and a crash (another engine
// writing a customer this writer owns) leaves a put that cannot be rebuilt: the open
// fails naming the item and the commit, and changes nothing.
BOOST_AUTO_TEST_CASE(a_redo_over_rewritten_internal_data_is_refused_naming_the_item) {
  DynamoDbOptions o = table_with_a_crashed_commit(2, CommitStage::committed, 10, "engine");
  racer_writes(o, put("CUSTOMER#C1001", 1, engine_json("CUSTOMER#C1001", "racer", 2), "other buckets"));
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(o, &store);
  BOOST_TEST((s.code() == Status::Code::corruption), s.to_string());
  BOOST_TEST(s.message().find("item 'CUSTOMER#C1001' was rewritten with other internal data") != std::string::npos,
             s.message());
  BOOST_TEST(s.message().find("redo log") != std::string::npos, s.message());
  DynamoDbOptions peek = o;
  peek.bulk_load = true;
  auto table = open_store_on(peek);
  BOOST_TEST(read(*table, "CUSTOMER#C1001").item_json == engine_json("CUSTOMER#C1001", "racer", 2));
  BOOST_TEST(read(*table, "CUSTOMER#C1000").version == 1);
}

namespace {

// The previous redo-log format: 64-bit little-endian counts and lengths, every put whole.
void put_le(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_le_str(std::string* out, const std::string& s) {
  put_le(out, s.size());
  out->append(s);
}
std::string previous_format_log(const ConditionalPut& p) {
  std::string out;
  put_le(&out, 1);
  put_le_str(&out, p.record.pk);
  put_le(&out, static_cast<uint64_t>(p.expected_version));
  put_le(&out, static_cast<uint64_t>(p.record.version));
  put_le_str(&out, p.record.item_json);
  put_le_str(&out, p.record.internal);
  put_le(&out, 0);  // meta
  put_le(&out, 0);  // dedup
  put_le(&out, static_cast<uint64_t>(kNoDay));
  return out;
}

boost::json::object b64(const std::string& bytes) {
  return {{"B", base64_encode(bytes)}};
}

}  // namespace

// A table an older streamscore wrote: items with the public JSON and the internal data
// as two attributes, and a pending commit in the uncompressed log format. Both are read
// (the pending commit is finished at open); an item written again takes this format.
BOOST_AUTO_TEST_CASE(a_table_of_the_previous_format_is_read_and_rewritten) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  open_store_on(o);  // the layout meta and the writer, as the older version wrote them too
  AwsCredentials credentials;
  BOOST_TEST_REQUIRE(load_aws_credentials(&credentials).is_ok());
  DynamoDbClient client(resolve_dynamodb_options(o), credentials);
  auto raw_put = [&](boost::json::object item) {
    boost::json::object reply;
    BOOST_TEST_REQUIRE(client.call("PutItem", {{"TableName", o.table}, {"Item", std::move(item)}}, &reply).is_ok());
  };
  auto raw_get = [&](const std::string& pk) {
    boost::json::object reply;
    BOOST_TEST_REQUIRE(
        client
            .call("GetItem", {{"TableName", o.table}, {"Key", {{"PK", {{"S", pk}}}, {"SK", {{"S", "STATE"}}}}}}, &reply)
            .is_ok());
    return reply.at("Item").as_object();
  };
  raw_put({{"PK", {{"S", "CUSTOMER#OLD1"}}},
           {"SK", {{"S", "STATE"}}},
           {"version", {{"N", "1"}}},
           {"item_json", b64(engine_json("CUSTOMER#OLD1", "old", 1))},
           {"state", b64("old buckets")}});
  const ConditionalPut pending = put("CUSTOMER#OLD2", 0, engine_json("CUSTOMER#OLD2", "logged", 1), "logged buckets");
  raw_put({{"PK", {{"S", "LOG#" + o.writer}}},
           {"SK", {{"S", "commit"}}},
           {"seq", {{"N", "5"}}},
           {"pending", {{"BOOL", true}}},
           {"chunks", {{"N", "0"}}},
           {"inline", b64(previous_format_log(pending))}});

  auto store = reopen(&o);
  BOOST_TEST(o.metrics->recovered.load() == 1u);
  const ItemRecord old = read(*store, "CUSTOMER#OLD1");
  BOOST_TEST(old.item_json == engine_json("CUSTOMER#OLD1", "old", 1));
  BOOST_TEST(old.internal == "old buckets");
  BOOST_TEST(read(*store, "CUSTOMER#OLD2").internal == "logged buckets");
  BOOST_TEST(write(*store, {put("CUSTOMER#OLD1", 1, engine_json("CUSTOMER#OLD1", "new", 2), "new buckets")}).empty());
  const boost::json::object rewritten = raw_get("CUSTOMER#OLD1");
  BOOST_TEST(rewritten.contains("data"));
  BOOST_TEST(!rewritten.contains("item_json"));  // the public item is stored once
  BOOST_TEST(!rewritten.contains("state"));
  BOOST_TEST(read(*store, "CUSTOMER#OLD1").internal == "new buckets");
}

// Items over DynamoDB's 400 KB limit are refused before anything is written, naming the
// customer.
BOOST_AUTO_TEST_CASE(an_item_over_400_kb_is_refused_naming_the_customer) {
  auto store = open_store_on(g_dynalite->fresh_table());
  Conflicts c;
  Status s =
      store->put_batch({put("CUSTOMER#small", 0), put("CUSTOMER#huge", 0, "{}", std::string(401 * 1024, 'x'))}, &c);
  BOOST_TEST(s.is_invalid_argument());
  BOOST_TEST(s.message().find("customer 'huge'") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("400 KB") != std::string::npos, s.message());
  ItemRecord r;
  BOOST_TEST(store->get("CUSTOMER#small", &r).is_not_found());
}

namespace {

// The table's item of `pk` as DynamoDB returns it (GetItem's reply: its attributes).
boost::json::object get_customer_item(const DynamoDbOptions& o, const std::string& pk) {
  AwsCredentials credentials;
  BOOST_TEST_REQUIRE(load_aws_credentials(&credentials).is_ok());
  DynamoDbClient client(resolve_dynamodb_options(o), credentials);
  boost::json::object reply;
  BOOST_TEST_REQUIRE(
      client.call("GetItem", {{"TableName", o.table}, {"Key", {{"PK", {{"S", pk}}}, {"SK", {{"S", "STATE"}}}}}}, &reply)
          .is_ok());
  return reply;
}

}  // namespace

// The contract's attributes are DynamoDB numbers and strings, next to the verbatim item.
BOOST_AUTO_TEST_CASE(items_carry_the_contract_attributes) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  auto store = open_store_on(o);
  write(*store, {put("CUSTOMER#C1", 0, engine_json("CUSTOMER#C1", "x", 1), "buckets")});
  const boost::json::object reply = get_customer_item(o, "CUSTOMER#C1");
  const boost::json::object& item = reply.at("Item").as_object();
  BOOST_TEST(item.at("version").at("N").as_string() == "1");
  BOOST_TEST(item.at("features").at("M").at("total_amount_30d").at("N").as_string() == "842.5");
  BOOST_TEST(item.at("features").at("M").at("total_txn_30d").at("N").as_string() == "2");
  BOOST_TEST(item.at("as_of").at("S").as_string() == "2025-01-01T10:10:00Z");
  BOOST_TEST(item.at("last_event_time").at("S").as_string() == "2025-01-01T10:05:00Z");
  BOOST_TEST(!item.contains("score"));
}

// Declared features: every one is projected in config order's map, a min or max over no
// event as NULL, decimals and negatives as the item prints them.
BOOST_AUTO_TEST_CASE(declared_features_are_projected_with_null_for_no_event) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  auto store = open_store_on(o);
  const std::string item =
      "{\"PK\":\"CUSTOMER#C2\",\"SK\":\"STATE\",\"features\":{\"txn_count_1h\":3,\"risk_max_1h\":null,"
      "\"risk_min_7d\":-0.000125,\"items_avg_24h\":12.5},\"last_event_time\":\"2025-01-01T10:05:00Z\","
      "\"as_of\":\"2025-01-01T10:10:00Z\",\"version\":1}";
  write(*store, {put("CUSTOMER#C2", 0, item, "buckets")});
  const boost::json::object reply = get_customer_item(o, "CUSTOMER#C2");
  const boost::json::object& features = reply.at("Item").at("features").at("M").as_object();
  BOOST_TEST(features.size() == 4u);
  BOOST_TEST(features.at("txn_count_1h").at("N").as_string() == "3");
  BOOST_TEST(features.at("risk_max_1h").at("NULL").as_bool());
  BOOST_TEST(features.at("risk_min_7d").at("N").as_string() == "-0.000125");
  BOOST_TEST(features.at("items_avg_24h").at("N").as_string() == "12.5");
}

// ------------------------------------------------------------ gone writers

namespace {

// A checkpoint of writer `store`: its clock, ids of `day`, and the forget bound of a clock
// at `forget_day`.
void checkpoint(StateStore& store, int64_t day, int64_t forget_day, std::vector<ConditionalPut> puts = {}) {
  WriteSet w;
  w.puts = std::move(puts);
  w.meta = {{"clock", "at day " + std::to_string(day)}};
  w.dedup = {DedupRecord{day, 1, 0, "ids of day " + std::to_string(day)}};
  w.forget_dedup_before_day = forget_day;
  Conflicts c;
  Status s = store.commit(w, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST_REQUIRE(c.empty());
}

}  // namespace

// Writers whose ids have all left the collector's horizon and that have not committed
// for state.gc_idle are removed by the collector's checkpoints, a bounded number of
// deletes each; a pending commit of theirs is applied first; a live writer keeps all its
// rows; a collected writer that comes back commits nothing.
BOOST_AUTO_TEST_CASE(gone_writers_are_collected_and_live_ones_never) {
  // "streamscore" stopped for good in a commit with a chunked log, after its commit point.
  DynamoDbOptions o = table_with_a_crashed_commit(3, CommitStage::committed, 200'000, "last");
  BOOST_TEST_REQUIRE(!table_rows_of_writer(o, "streamscore").empty());
  // "stalled" committed once and stays open; "live" has ids inside the collector's horizon.
  DynamoDbOptions as = o;
  as.writer = "stalled";
  std::unique_ptr<StateStore> stalled = open_store_on(as);
  checkpoint(*stalled, 20002, 19990, {put("CUSTOMER#S1", 0, "{}")});
  as.writer = "live";
  std::unique_ptr<StateStore> live = open_store_on(as);
  checkpoint(*live, 20100, 20070);
  const std::vector<std::string> live_rows = table_rows_of_writer(o, "live");

  // A collector whose clock forgets the days before 20050, at 4 deletes per checkpoint.
  as.writer = "collector";
  as.gc_deletes_per_checkpoint = 4;
  as.gc_idle_ms = 3'600'000;  // none of them has been idle for an hour: nothing is gone yet
  as.metrics = std::make_shared<DynamoDbProbe>();
  checkpoint(*open_store_on(as), 20100, 20050);
  BOOST_TEST(as.metrics->gc_deleted.load() == 0u);

  as.gc_idle_ms = 0;  // a restart of the collector, which counts every quiet writer as idle
  as.metrics = std::make_shared<DynamoDbProbe>();
  std::unique_ptr<StateStore> collector = open_store_on(as);
  checkpoint(*collector, 20100, 20050);
  BOOST_TEST(as.metrics->gc_deleted.load() == 4u);  // the budget of one checkpoint
  for (int i = 0; i < 20 && as.metrics->gc_writers.load() < 2; ++i) checkpoint(*collector, 20100, 20050);
  BOOST_TEST(as.metrics->gc_writers.load() == 2u);

  // The pending commit was applied before its writer was removed.
  ItemRecord item;
  BOOST_TEST_REQUIRE(collector->get("CUSTOMER#C1001", &item).is_ok());
  BOOST_TEST(item.version == 2);
  BOOST_TEST(item.item_json.find("\"last\"") != std::string::npos, item.item_json);
  BOOST_TEST(table_rows_of_writer(o, "streamscore").empty());
  BOOST_TEST(table_rows_of_writer(o, "stalled").empty());
  BOOST_TEST(table_rows_of_writer(o, "live") == live_rows);
  checkpoint(*live, 20101, 20070);  // and it goes on

  // The stalled writer wakes: its commit is refused, nothing of it lands.
  WriteSet late;
  late.puts = {put("CUSTOMER#S2", 0, "{}"), put("CUSTOMER#S1", 1, "{}")};
  late.meta = {{"clock", "late"}};
  Conflicts c;
  Status s = stalled->commit(late, &c);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("'stalled' was removed from table") != std::string::npos, s.to_string());
  BOOST_TEST(collector->get("CUSTOMER#S2", &item).is_not_found());
  BOOST_TEST(table_rows_of_writer(o, "stalled").empty());
}

// A gone writer whose pending commit cannot be finished (a log chunk lost) keeps its rows,
// is counted as a failure, and does not keep the writers after it from being collected.
BOOST_AUTO_TEST_CASE(a_damaged_gone_writer_does_not_stop_the_collection) {
  DynamoDbOptions o = table_with_a_crashed_commit(3, CommitStage::committed, 200'000, "lost");
  AwsCredentials credentials;
  BOOST_TEST_REQUIRE(load_aws_credentials(&credentials).is_ok());
  DynamoDbClient client(resolve_dynamodb_options(o), credentials);
  boost::json::object reply;
  BOOST_TEST_REQUIRE(client
                         .call("Query",
                               {{"TableName", o.table},
                                {"KeyConditionExpression", "PK = :p"},
                                {"ExpressionAttributeValues", {{":p", {{"S", "LOG#streamscore#0"}}}}}},
                               &reply)
                         .is_ok());
  BOOST_TEST_REQUIRE(!reply.at("Items").as_array().empty());
  for (const auto& item : reply.at("Items").as_array()) {
    boost::json::object gone;
    BOOST_TEST_REQUIRE(client
                           .call("DeleteItem",
                                 {{"TableName", o.table}, {"Key", {{"PK", item.at("PK")}, {"SK", item.at("SK")}}}},
                                 &gone)
                           .is_ok());
  }
  DynamoDbOptions as = o;
  as.writer = "zgone";  // listed after "streamscore"
  checkpoint(*open_store_on(as), 20002, 19990);

  as.writer = "collector";
  as.gc_idle_ms = 0;
  as.metrics = std::make_shared<DynamoDbProbe>();
  std::unique_ptr<StateStore> collector = open_store_on(as);
  checkpoint(*collector, 20100, 20050);
  BOOST_TEST(as.metrics->gc_writers.load() == 1u);
  BOOST_TEST(as.metrics->gc_failures.load() == 1u);
  BOOST_TEST(table_rows_of_writer(o, "zgone").empty());
  BOOST_TEST(!table_rows_of_writer(o, "streamscore").empty());
}

// A member of a group found gone is fenced when it wakes, and once it has taken its
// partitions again (as a fenced daemon rejoining does) commits on a fresh marker.
BOOST_AUTO_TEST_CASE(a_collected_group_member_is_fenced_and_rejoins) {
  DynamoDbOptions as = g_dynalite->fresh_table();
  as.writer = "member";
  std::unique_ptr<StateStore> member = open_store_on(as);
  BOOST_TEST_REQUIRE(member->take_over({"partition.t.0"}).is_ok());
  checkpoint(*member, 20002, 19990);
  as.writer = "collector";
  as.gc_idle_ms = 0;
  as.metrics = std::make_shared<DynamoDbProbe>();
  checkpoint(*open_store_on(as), 20100, 20050);
  BOOST_TEST(as.metrics->gc_writers.load() == 1u);
  BOOST_TEST(table_rows_of_writer(as, "member").empty());

  WriteSet late;
  late.puts = {put("CUSTOMER#M1", 0, "{}"), put("CUSTOMER#M2", 0, "{}")};
  Conflicts c;
  Status s = member->commit(late, &c);
  BOOST_TEST(s.is_fenced(), s.to_string());
  ItemRecord item;
  BOOST_TEST(member->get("CUSTOMER#M1", &item).is_not_found());
  BOOST_TEST_REQUIRE(member->take_over({"partition.t.0"}).is_ok());
  checkpoint(*member, 20101, 20070, {put("CUSTOMER#M1", 0, "{}")});
  BOOST_TEST(member->get("CUSTOMER#M1", &item).is_ok());
}

// A collected member that rejoined is listed among the writers again: a commit of its that
// stops after its commit point is finished by the next takeover, not lost.
BOOST_AUTO_TEST_CASE(a_rejoined_members_pending_commit_is_finished_by_a_takeover) {
  DynamoDbOptions as = g_dynalite->fresh_table();
  as.writer = "member";
  as.test_stop_after = CommitStage::committed;  // each of its commits stops after its commit point
  std::unique_ptr<StateStore> member = open_store_on(as);
  BOOST_TEST_REQUIRE(member->take_over({"partition.t.0"}).is_ok());
  WriteSet first;
  first.puts = {put("CUSTOMER#M0", 0, "{}")};
  first.meta = {{"clock", "first"}};
  Conflicts c;
  Status s = member->commit(first, &c);
  BOOST_TEST(s.message().find("stopped by the test hook") != std::string::npos, s.to_string());
  DynamoDbOptions other = as;
  other.test_stop_after = CommitStage::none;
  other.writer = "collector";
  other.gc_idle_ms = 0;
  other.metrics = std::make_shared<DynamoDbProbe>();
  checkpoint(*open_store_on(other), 20100, 20050);
  BOOST_TEST_REQUIRE(other.metrics->gc_writers.load() == 1u);

  WriteSet late;
  late.puts = {put("CUSTOMER#M2", 0, "{}")};
  late.meta = {{"clock", "late"}};
  s = member->commit(late, &c);
  BOOST_TEST(s.is_fenced(), s.to_string());
  BOOST_TEST_REQUIRE(member->take_over({"partition.t.0"}).is_ok());
  WriteSet rejoined;
  rejoined.puts = {put("CUSTOMER#M1", 0, "{}")};
  rejoined.meta = {{"clock", "rejoined"}};
  s = member->commit(rejoined, &c);
  BOOST_TEST(s.message().find("stopped by the test hook") != std::string::npos, s.to_string());

  other.writer = "heir";
  std::unique_ptr<StateStore> heir = open_store_on(other);
  BOOST_TEST_REQUIRE(heir->take_over({"partition.t.0"}).is_ok());
  BOOST_TEST_REQUIRE(heir->recover_other_writers().is_ok());
  ItemRecord item;
  BOOST_TEST(heir->get("CUSTOMER#M1", &item).is_ok());
}

// A writer stopped past its session keeps a partition in its next takeover (a revocation
// of others); another writer took it over and committed meanwhile. The stale one may not
// claim it back over the new holder: it is fenced, and its commits are refused.
BOOST_AUTO_TEST_CASE(a_kept_partition_taken_by_another_writer_is_not_claimed_back) {
  DynamoDbOptions as = g_dynalite->fresh_table();
  as.writer = "stale";
  std::unique_ptr<StateStore> stale = open_store_on(as);
  BOOST_TEST_REQUIRE(stale->take_over({"partition.t.0", "partition.t.1"}).is_ok());
  checkpoint(*stale, 20002, 19990, {put("CUSTOMER#K1", 0, "{\"by\":\"stale\"}")});
  as.writer = "heir";
  std::unique_ptr<StateStore> heir = open_store_on(as);
  BOOST_TEST_REQUIRE(heir->take_over({"partition.t.0"}).is_ok());
  BOOST_TEST_REQUIRE(heir->recover_other_writers().is_ok());
  checkpoint(*heir, 20003, 19990, {put("CUSTOMER#K1", 1, "{\"by\":\"heir\"}")});

  Status s = stale->take_over({"partition.t.0"});  // p1 revoked, p0 kept: as it believes
  BOOST_TEST(s.is_fenced(), s.to_string());
  WriteSet late;
  late.puts = {put("CUSTOMER#K1", 2, "{\"by\":\"stale, late\"}")};
  late.meta = {{"partition.t.0", "older offset"}};
  Conflicts c;
  s = stale->commit(late, &c);
  BOOST_TEST(s.is_fenced(), s.to_string());
  BOOST_TEST(read(*heir, "CUSTOMER#K1").item_json == "{\"by\":\"heir\"}");
  checkpoint(*heir, 20004, 19990, {put("CUSTOMER#K1", 2, "{\"by\":\"heir, next\"}")});
  // Once it dropped its work, a fresh lease and the partitions the group gives it again.
  BOOST_TEST_REQUIRE(stale->take_over({}).is_ok());
  BOOST_TEST_REQUIRE(stale->take_over({"partition.t.1"}).is_ok());
  checkpoint(*stale, 20005, 19990);
}

// ------------------------------------------------------------ the index by partition

namespace {

// The dedup record of one id per customer of `customers`, all of day `day`, as the engine
// encodes them (the index splits records by their customers' partitions).
DedupRecord ids_of_day(int64_t day, const std::vector<std::string>& customers) {
  ShardState shard{ShardOptions{}};
  uint64_t n = 0;
  for (const std::string& id : customers) {
    ParsedEvent e;
    e.customer_id = id;
    e.customer_hash = XXH3_64bits(id.data(), id.size());
    e.time = EventTime{day * kDayNanos + 3600 * kNanosPerSecond, 0};
    e.is_transaction = true;
    e.cents = 100;
    e.key = DedupKey{++n, static_cast<uint64_t>(day)};
    shard.apply_event(e);
  }
  std::vector<DedupRecord> out;
  shard.take_unsaved_ids(1, 0, &out);
  BOOST_TEST_REQUIRE(out.size() == 1u);
  return out[0];
}

// A checkpoint of `store` on an indexed table: ids of `day` for `customers` (created),
// the forget bound of a clock at `forget_day`, and those of the partitions it holds.
void checkpoint_ids(StateStore& store, int64_t day, int64_t forget_day, const std::vector<std::string>& customers,
                    const std::map<int32_t, int64_t>& forget_partitions = {}) {
  WriteSet w;
  w.forget_partition_dedup_before_day = forget_partitions;
  for (const std::string& id : customers) w.puts.push_back(put("CUSTOMER#" + id, 0, "{}"));
  w.meta = {{"clock", "at day " + std::to_string(day)}};
  w.dedup = {ids_of_day(day, customers)};
  w.forget_dedup_before_day = forget_day;
  Conflicts c;
  Status s = store.commit(w, &c);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST_REQUIRE(c.empty());
}

std::vector<std::string> customers_named(const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
  return ids;
}

// Indexes `o`'s table by 4 source partitions, as a group's first takeover does.
void index_table_by_4_partitions(DynamoDbOptions o) {
  o.writer = "indexer";
  BOOST_TEST_REQUIRE(open_store_on(o)
                         ->scan_partitions(
                             PartitionScope{4, {0, 1, 2, 3}}, [](const ItemRecord&) { return true; },
                             [](const DedupRecord&) { return true; })
                         .is_ok());
}

}  // namespace

// A table indexed by partition keeps the writers' dedup records in the partitions' index:
// a collector judges a writer by those too (ids inside its horizon: not gone) and removes
// the rest of a gone writer's rows; the partitions' holders forget those by their clocks.
BOOST_AUTO_TEST_CASE(gone_writers_records_in_the_partition_index_are_judged_and_collected) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  index_table_by_4_partitions(o);
  DynamoDbOptions as = o;
  as.writer = "gone";
  checkpoint_ids(*open_store_on(as), 20002, 19990, customers_named("G", 12));
  as.writer = "recent";  // its ids are inside the collector's horizon
  checkpoint_ids(*open_store_on(as), 20090, 20060, customers_named("R", 12));
  const std::vector<std::string> recent_rows = table_rows_of_writer(o, "recent");
  BOOST_TEST_REQUIRE(table_rows_of_writer(o, "gone").size() > 5u);  // records in several partitions

  as.writer = "collector";
  as.gc_idle_ms = 0;
  as.gc_deletes_per_checkpoint = 3;  // throttled: several checkpoints
  as.metrics = std::make_shared<DynamoDbProbe>();
  std::unique_ptr<StateStore> collector = open_store_on(as);
  for (int i = 0; i < 20 && as.metrics->gc_writers.load() < 1; ++i)
    checkpoint_ids(*collector, 20100, 20050, {"K" + std::to_string(i)});
  BOOST_TEST(as.metrics->gc_writers.load() == 1u);
  const std::vector<std::string> left = table_rows_of_writer(o, "gone");
  BOOST_TEST(!left.empty());
  for (const std::string& row : left) BOOST_TEST(row.rfind("PART#", 0) == 0u, row);
  BOOST_TEST(table_rows_of_writer(o, "recent") == recent_rows);

  checkpoint_ids(*collector, 20100, 20050, {"Z"}, {{0, 20050}, {1, 20050}, {2, 20050}, {3, 20050}});
  BOOST_TEST(table_rows_of_writer(o, "gone").empty());
  BOOST_TEST(table_rows_of_writer(o, "recent") == recent_rows);
}

namespace {

// The ids a loader of partition `p` of 4 finds.
std::size_t ids_in_partition(const DynamoDbOptions& o, int32_t p) {
  DynamoDbOptions as = o;
  as.writer = "loader";
  std::size_t ids = 0;
  Status s = open_store_on(as)->scan_partitions(
      PartitionScope{4, {p}}, [](const ItemRecord&) { return true; },
      [&](const DedupRecord& r) {
        BOOST_TEST(for_each_dedup_id(r, [&](std::string_view, const DedupEntry&) { ++ids; }).is_ok());
        return true;
      });
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return ids;
}

std::vector<std::string> customers_of_partition(const std::vector<std::string>& ids, int32_t p) {
  std::vector<std::string> out;
  for (const std::string& id : ids)
    if (partition_of_customer(id, 4) == p) out.push_back(id);
  return out;
}

}  // namespace

// A writer forgets nothing in a partition it no longer holds: A held p1 (ids of day
// 20010); p1 went to B, whose clock there is still early; A's later checkpoints forget by
// the clocks of what A holds (day 20040) and a later loader of p1 (B killed, C) must still
// find A's ids of p1, which only p1's clock may forget.
BOOST_AUTO_TEST_CASE(a_writer_forgets_no_ids_in_a_partition_it_gave_away) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  index_table_by_4_partitions(o);
  const std::vector<std::string> all = customers_named("A", 24);
  const std::size_t in_p1 = customers_of_partition(all, 1).size();
  BOOST_TEST_REQUIRE(in_p1 > 0u);
  DynamoDbOptions as = o;
  as.writer = "a";
  std::unique_ptr<StateStore> a = open_store_on(as);
  checkpoint_ids(*a, 20010, 19990, all);
  BOOST_TEST_REQUIRE(ids_in_partition(o, 1) == in_p1);
  const std::vector<std::string> later = customers_of_partition(customers_named("K", 24), 0);
  checkpoint_ids(*a, 20045, 20040, later, {{0, 20040}});  // a redo replays the same bounds
  BOOST_TEST(ids_in_partition(o, 1) == in_p1);
  BOOST_TEST(ids_in_partition(o, 0) == later.size());  // its own partition: forgotten by p0's clock

  // p1's holder forgets there by p1's clock, every writer's ids (its own and A's).
  as.writer = "b";
  checkpoint_ids(*open_store_on(as), 20050, 20020, customers_of_partition(customers_named("B", 24), 1), {{1, 20020}});
  BOOST_TEST(ids_in_partition(o, 1) == customers_of_partition(customers_named("B", 24), 1).size());
}

// The partitions' forget bounds ride in the redo log: a commit stopped after its commit
// point is finished by the next open, forgetting there as the commit would have.
BOOST_AUTO_TEST_CASE(a_redo_forgets_in_the_partitions_the_commit_named) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  index_table_by_4_partitions(o);
  const std::vector<std::string> all = customers_named("A", 24);
  DynamoDbOptions as = o;
  as.writer = "a";
  checkpoint_ids(*open_store_on(as), 20010, 19990, all);
  DynamoDbOptions crashing = as;
  crashing.test_stop_after = CommitStage::committed;
  WriteSet w;
  w.meta = {{"clock", "later"}};
  w.forget_partition_dedup_before_day = {{1, 20040}, {2, 20040}};
  Conflicts c;
  Status s = open_store_on(crashing)->commit(w, &c);
  BOOST_TEST_REQUIRE(s.message().find("stopped by the test hook") != std::string::npos, s.to_string());
  BOOST_TEST_REQUIRE(ids_in_partition(o, 1) == customers_of_partition(all, 1).size());
  open_store_on(as);  // finishes the commit
  BOOST_TEST(ids_in_partition(o, 0) == customers_of_partition(all, 0).size());
  BOOST_TEST(ids_in_partition(o, 1) == 0u);
  BOOST_TEST(ids_in_partition(o, 2) == 0u);
  BOOST_TEST(ids_in_partition(o, 3) == customers_of_partition(all, 3).size());
}

// A collector judges "gone" by its own clocks, which may run ahead of a partition's
// holder: it removes the gone writer's own rows but not its ids in the partitions' index,
// which a later loader of each partition must still find.
BOOST_AUTO_TEST_CASE(a_collector_leaves_a_gone_writers_ids_in_the_partition_index) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  index_table_by_4_partitions(o);
  DynamoDbOptions as = o;
  as.writer = "gone";
  checkpoint_ids(*open_store_on(as), 20002, 19990, customers_named("G", 12));
  as.writer = "collector";
  as.gc_idle_ms = 0;
  as.metrics = std::make_shared<DynamoDbProbe>();
  std::unique_ptr<StateStore> collector = open_store_on(as);
  std::size_t own_ids = 0;  // one per checkpoint
  for (; own_ids < 20 && as.metrics->gc_writers.load() < 1; ++own_ids)
    checkpoint_ids(*collector, 20100, 20050, {"K" + std::to_string(own_ids)});
  BOOST_TEST_REQUIRE(as.metrics->gc_writers.load() == 1u);
  std::size_t ids = 0;
  for (int32_t p = 0; p < 4; ++p) ids += ids_in_partition(o, p);
  BOOST_TEST(ids == 12u + own_ids);
}

// A run after a backfill in parts reads the parts' dedup ids also from the partitions'
// index of a table a group indexed (section 14).
BOOST_AUTO_TEST_CASE(a_run_reads_its_backfill_parts_ids_from_the_partition_index) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  index_table_by_4_partitions(o);
  DynamoDbOptions as = o;
  as.writer = backfill_part_writer("streamscore", 1, 2);
  checkpoint_ids(*open_store_on(as), 20002, 19990, customers_named("P", 12));
  as.writer = "streamscore";
  std::size_t ids = 0;
  BOOST_TEST_REQUIRE(open_store_on(as)
                         ->scan_dedup([&](const DedupRecord& r) {
                           BOOST_TEST(
                               for_each_dedup_id(r, [&](std::string_view, const DedupEntry&) { ++ids; }).is_ok());
                           return true;
                         })
                         .is_ok());
  BOOST_TEST(ids == 12u);
}

// ------------------------------------------------------------ what a checkpoint costs

namespace {

// Customers as the engine (ShardState) stores them: `events_per_day` transactions a day
// each, at whole seconds, amounts of a few dollars to a few hundred. checkpoint() hands
// out the puts of every changed customer, as the engine's checkpoint does.
class EngineCustomers {
 public:
  EngineCustomers(int customers, int events_per_day) : customers_(customers), per_day_(events_per_day) {}

  // Events of `days` more days for every customer, ticks included.
  void live(int days) {
    const int64_t seconds_per_event = 86400 / per_day_;
    for (int64_t at = 0; at < days * 86400; at += seconds_per_event, now_ += seconds_per_event) {
      for (int c = 0; c < customers_; ++c) event(c, now_ + static_cast<int64_t>(rng_() % seconds_per_event));
      shard_.advance_to((now_ + seconds_per_event) * kNanosPerSecond / kWindowNanos);
    }
  }

  WriteSet checkpoint() {
    WriteSet w;
    Status s = shard_.take_changes([&](std::vector<ConditionalPut>& puts) {
      for (ConditionalPut& p : puts) w.puts.push_back(std::move(p));
      return Status::ok();
    });
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
    shard_.take_unsaved_ids(++checkpoints_, 0, &w.dedup);
    w.meta = {{"clock", std::to_string(now_)}, {"source.file", std::to_string(events_)}};
    return w;
  }

 private:
  void event(int customer, int64_t second) {
    ParsedEvent e;
    e.customer_id = "C" + std::to_string(1000000 + customer);
    e.customer_hash = XXH3_64bits(e.customer_id.data(), e.customer_id.size());
    e.time = EventTime{second * kNanosPerSecond, 0};
    e.is_transaction = true;
    e.cents = 300 + static_cast<int64_t>(rng_() % 30000);
    e.key = DedupKey{++events_, rng_()};
    e.fingerprint = static_cast<uint32_t>(rng_());
    shard_.apply_event(e);
  }

  ShardState shard_{ShardOptions{}};
  std::mt19937_64 rng_{42};
  const int customers_, per_day_;
  int64_t now_ = 1735689600;  // 2025-01-01T00:00:00Z
  uint64_t events_ = 0, checkpoints_ = 0;
};

}  // namespace

// The bound of docs/scale.md: a checkpoint costs at most 3 WCUs per changed item (redo log,
// item write and dropping the log together), for customers with 30 days of buckets (5
// transactions a day, ~2.5 KB items before this bound), counted from the capacity
// DynamoDB reports. A new customer costs more once: its first write logs it whole.
BOOST_AUTO_TEST_CASE(a_checkpoint_costs_at_most_3_wcus_per_changed_item) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  o.metrics = std::make_shared<DynamoDbProbe>();
  auto store = open_store_on(o);
  constexpr int kCustomers = 100;
  EngineCustomers customers(kCustomers, 5);
  customers.live(30);
  Conflicts c;
  BOOST_TEST_REQUIRE(store->commit(customers.checkpoint(), &c).is_ok());
  for (int checkpoint = 0; checkpoint < 3; ++checkpoint) {
    customers.live(1);
    const WriteSet changed = customers.checkpoint();
    BOOST_TEST_REQUIRE(changed.puts.size() == std::size_t{kCustomers});
    const uint64_t before = o.metrics->consumed_wcu_milli.load();
    BOOST_TEST_REQUIRE(store->commit(changed, &c).is_ok());
    BOOST_TEST_REQUIRE(c.empty());
    const double per_item = (o.metrics->consumed_wcu_milli.load() - before) / 1000.0 / kCustomers;
    BOOST_TEST_MESSAGE("checkpoint " << checkpoint + 1 << ": " << per_item << " WCUs per changed item, internal data "
                                     << changed.puts[0].record.internal.size() << " bytes");
    BOOST_TEST(per_item > 1.0);  // the capacity is counted at all
    BOOST_TEST(per_item <= 3.0);
    const ConditionalPut& last = changed.puts.back();
    BOOST_TEST(read(*store, last.record.pk).internal == last.record.internal);
  }
  BOOST_TEST(o.metrics->consumed_rcu_milli.load() > 0u);
}

// ------------------------------------------------------------ throttling

BOOST_AUTO_TEST_CASE(throttles_and_5xx_are_retried_with_backoff_then_reported) {
  DynamoDbOptions o = g_dynalite->fresh_table();
  o.backoff_base_ms = 1;
  o.backoff_cap_ms = 5;
  std::atomic<int> faults{4};
  o.test_fault = [&](std::string_view op, long* status, std::string* body) {
    if (op != "UpdateItem" || faults.fetch_sub(1) <= 0) return false;
    const bool five_hundred = faults.load() % 2 == 0;
    *status = five_hundred ? 500 : 400;
    *body = five_hundred ? R"({"__type":"com.amazon.coral.service#InternalFailure"})"
                         : R"({"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"})";
    return true;
  };
  o.metrics = std::make_shared<DynamoDbProbe>();
  auto store = open_store_on(o);
  BOOST_TEST(write(*store, {put("CUSTOMER#T", 0, "t1")}).empty());  // after 4 faults
  BOOST_TEST(read(*store, "CUSTOMER#T").item_json == "t1");
  BOOST_TEST(o.metrics->throttles.load() == 2u);
  BOOST_TEST(o.metrics->retries.load() == 4u);
  bool exposed = false;  // what /metrics shows
  for (const StateStore::Counter& counter : store->counters())
    if (std::string(counter.name) == "streamscore_dynamodb_throttles_total") exposed = counter.value == 2;
  BOOST_TEST(exposed);
  // Throttled for good: bounded attempts, then an error that says so; nothing written.
  faults = 1000;
  Conflicts c;
  Status s = store->put_batch({put("CUSTOMER#T", 1, "t2")}, &c);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("gave up after 10 attempts") != std::string::npos, s.message());
  faults = 0;
  BOOST_TEST(read(*store, "CUSTOMER#T").item_json == "t1");
}

BOOST_AUTO_TEST_CASE(transport_errors_are_retried_then_reported) {
  DynamoDbOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(free_loopback_port());  // nobody listens
  o.max_attempts = 3;
  o.backoff_base_ms = 1;
  o.metrics = std::make_shared<DynamoDbProbe>();
  std::unique_ptr<StateStore> store;
  Status s = open_dynamodb_store(o, &store);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("gave up after 3 attempts") != std::string::npos, s.message());
  BOOST_TEST(o.metrics->requests.load() == 3u);
}

// ------------------------------------------------------------ racing writers

// An owner (the engine: multi-item commits through commit_with_retry, versions moved by
// the shifts it gets back) and an update_item loop in another thread, on the same items:
// every write of either is a version of its own, so each item ends at exactly the sum.
BOOST_AUTO_TEST_CASE(owner_and_update_item_racing_lose_no_update) {
  DynamoDbOptions engine_options = g_dynalite->fresh_table("engine");
  engine_options.metrics = std::make_shared<DynamoDbProbe>();
  DynamoDbOptions racer_options = engine_options;
  racer_options.metrics = nullptr;
  racer_options.writer = "racer";
  auto engine = open_store_on(engine_options);
  auto racer = open_store_on(racer_options);
  constexpr int kKeys = 20, kEngineRounds = 8, kRacerRounds = 5;
  auto pk = [](int i) { return "CUSTOMER#R" + std::to_string(i); };
  std::atomic<int> errors{0};
  uint64_t engine_conflicts = 0, racer_conflicts = 0;
  std::thread racer_thread([&] {
    for (int round = 0; round < kRacerRounds; ++round)
      for (int i = 0; i < kKeys; ++i) {
        Status s = update_item(
            *racer, pk(i),
            [&](const ItemRecord* cur, ItemRecord* next) {
              next->version = (cur ? cur->version : 0) + 1;
              next->item_json = engine_json(pk(i), "racer", next->version);
              next->internal = cur ? cur->internal : "";
              return true;
            },
            &racer_conflicts);
        if (!s.is_ok()) ++errors;
      }
  });
  std::map<std::string, int64_t> known;  // the engine's idea of each stored version
  for (int round = 0; round < kEngineRounds; ++round) {
    WriteSet w;
    for (int i = 0; i < kKeys; ++i)
      w.puts.push_back(put(pk(i), known[pk(i)], engine_json(pk(i), "engine", known[pk(i)] + 1), "buckets"));
    w.meta = {{"clock", std::to_string(round)}};
    std::vector<VersionShift> shifts;
    Status s = commit_with_retry(*engine, &w, &shifts, &engine_conflicts);
    if (!s.is_ok()) ++errors;
    for (const ConditionalPut& p : w.puts) known[p.record.pk] = p.record.version;
  }
  racer_thread.join();
  BOOST_TEST(errors.load() == 0);
  for (int i = 0; i < kKeys; ++i) {
    const ItemRecord r = read(*engine, pk(i));
    BOOST_TEST(r.version == kEngineRounds + kRacerRounds, pk(i));
    BOOST_TEST(r.item_json.find("\"version\":" + std::to_string(r.version) + "}") != std::string::npos, r.item_json);
  }
  BOOST_TEST_MESSAGE("conflicts retried: engine " << engine_conflicts << ", racer " << racer_conflicts
                                                  << "; rebased at apply " << engine_options.metrics->rebased.load());
}

// ------------------------------------------------------------ the CLI

namespace {

// Runs `fn` with the AWS variables removed and HOME pointing at an empty directory.
template <class F>
void without_credentials(const TempDir& dir, F&& fn) {
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("HOME", dir.path.c_str(), 1);
  fn();
  ::setenv("HOME", home.c_str(), 1);
  set_fake_aws_credentials();
}

}  // namespace

// Without the environment variables, the profile AWS_PROFILE (else "default") of
// ~/.aws/credentials supplies the keys.
BOOST_AUTO_TEST_CASE(credentials_come_from_the_profile_file) {
  TempDir dir("streamscore-dynamodb-profile-");
  fs::create_directories(dir.path / ".aws");
  std::ofstream(dir / ".aws/credentials") << "[default]\naws_access_key_id = AKDEFAULT\n"
                                             "aws_secret_access_key = s1\n\n"
                                             "# the team's\n[team]\naws_access_key_id=AKTEAM\n"
                                             "aws_secret_access_key=s2\naws_session_token = tok\n";
  without_credentials(dir, [&] {
    AwsCredentials c;
    BOOST_TEST_REQUIRE(load_aws_credentials(&c).is_ok());
    BOOST_TEST(c.access_key == "AKDEFAULT");
    BOOST_TEST(c.secret_key == "s1");
    BOOST_TEST(c.session_token.empty());
    ::setenv("AWS_PROFILE", "team", 1);
    BOOST_TEST_REQUIRE(load_aws_credentials(&c).is_ok());
    BOOST_TEST(c.access_key == "AKTEAM");
    BOOST_TEST(c.session_token == "tok");
    ::setenv("AWS_PROFILE", "nobody", 1);
    Status s = load_aws_credentials(&c);
    BOOST_TEST(s.is_invalid_argument());
    BOOST_TEST(s.message().find("profile 'nobody'") != std::string::npos, s.message());
    ::unsetenv("AWS_PROFILE");
  });
}

BOOST_AUTO_TEST_CASE(create_table_twice_then_usage_and_credential_errors) {
  TempDir dir("streamscore-dynamodb-cli-");
  const std::string args = "dynamodb create-table --endpoint " + g_dynalite->endpoint() + " --table cli_created";
  Result first = run_cli(dir, args);
  BOOST_TEST(first.exit_code == 0, first.err);
  BOOST_TEST(first.out.find("table 'cli_created' created") != std::string::npos, first.out);
  Result second = run_cli(dir, args);
  BOOST_TEST(second.exit_code == 0, second.err);
  BOOST_TEST(second.out.find("already exists") != std::string::npos, second.out);

  Result bad_url = run_cli(dir, "dynamodb create-table --endpoint ftp://x");
  BOOST_TEST(bad_url.exit_code == 2);
  BOOST_TEST(bad_url.err.find("--endpoint") != std::string::npos, bad_url.err);
  Result bad_table = run_cli(dir, "dynamodb create-table --endpoint " + g_dynalite->endpoint() + " --table x");
  BOOST_TEST(bad_table.exit_code == 2);
  BOOST_TEST(bad_table.err.find("--table") != std::string::npos, bad_table.err);
  Result help = run_cli(dir, "dynamodb create-table --help");
  BOOST_TEST(help.exit_code == 0);
  BOOST_TEST(help.out.find("Examples:") != std::string::npos, help.out);

  without_credentials(dir, [&] {
    Result create = run_cli(dir, args);
    BOOST_TEST(create.exit_code == 2);
    BOOST_TEST(create.err.find("no AWS credentials") != std::string::npos, create.err);
    Result exported =
        run_cli(dir, "export --set state.backend=dynamodb --set state.endpoint=" + g_dynalite->endpoint() +
                         " --set state.table=cli_created");
    BOOST_TEST(exported.exit_code == 2);
    BOOST_TEST(exported.err.find("AWS_ACCESS_KEY_ID") != std::string::npos, exported.err);
    BOOST_TEST(exported.err.find("test") == std::string::npos, exported.err);  // no key is ever printed
  });
  Result missing_table =
      run_cli(dir, "export --set state.backend=dynamodb --set state.endpoint=" + g_dynalite->endpoint() +
                       " --set state.table=no_such_table");
  BOOST_TEST(missing_table.exit_code == 1);
  BOOST_TEST(missing_table.err.find("create-table") != std::string::npos, missing_table.err);
}

// replay into DynamoDB, run (checkpoints through the redo log) and backfill (slices) into
// DynamoDB: each export is byte-identical to the RocksDB replay's (features,
// last_event_time, as_of, versions).
BOOST_AUTO_TEST_CASE(replay_run_and_backfill_into_dynamodb_export_like_rocksdb) {
  TempDir dir("streamscore-dynamodb-replay-");
  const std::string events = dir / "events.jsonl";
  Result g = run_cli(dir, "generate --customers 400 --events 30000 --days 40 --seed 7 --out " + events);
  BOOST_TEST_REQUIRE(g.exit_code == 0, g.err);
  Result rocks = run_cli(
      dir, "replay --events " + events + " --state " + (dir / "rocks") + " --dead-letter " + (dir / "dl-rocks.jsonl"));
  BOOST_TEST_REQUIRE(rocks.exit_code == 0, rocks.err);
  Result expected = run_cli(dir, "export --state " + (dir / "rocks"));
  BOOST_TEST_REQUIRE(expected.exit_code == 0, expected.err);
  BOOST_TEST_REQUIRE(expected.out.size() > 10000u);

  const DynamoDbOptions replayed = g_dynalite->fresh_table();
  Result replay =
      run_cli(dir, "replay --events " + events + " --dead-letter " + (dir / "dl-dyn.jsonl") + table_sets(replayed));
  BOOST_TEST_REQUIRE(replay.exit_code == 0, replay.err);
  BOOST_TEST(replay.out.find("dynamodb_requests") != std::string::npos, replay.out);
  Result exported = run_cli(dir, "export" + table_sets(replayed));
  BOOST_TEST(exported.exit_code == 0, exported.err);
  BOOST_TEST(exported.out == expected.out);

  const DynamoDbOptions daemon = g_dynalite->fresh_table();
  Result run = run_cli(dir, "run --set source.path=" + events + " --set dead_letter.path=" + (dir / "dl-run.jsonl") +
                                " --set http.enabled=false --set checkpoint.interval=200ms" + table_sets(daemon));
  BOOST_TEST_REQUIRE(run.exit_code == 0, run.err);
  Result run_export = run_cli(dir, "export" + table_sets(daemon));
  BOOST_TEST(run_export.exit_code == 0, run_export.err);
  BOOST_TEST(run_export.out == expected.out);

  const DynamoDbOptions sliced = g_dynalite->fresh_table();
  Result backfill = run_cli(dir, "backfill --events " + events + " --slice 5d --dead-letter " +
                                     (dir / "dl-backfill.jsonl") + table_sets(sliced));
  BOOST_TEST_REQUIRE(backfill.exit_code == 0, backfill.err);
  Result backfill_export = run_cli(dir, "export" + table_sets(sliced));
  BOOST_TEST(backfill_export.exit_code == 0, backfill_export.err);
  BOOST_TEST(backfill_export.out == expected.out);
}
