// The StateStore contract (tests/store_contract.hpp) on the memory and RocksDB
// backends, plus RocksDB-only tests (persistence, LOCK, corruption).
#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/mpl/list.hpp>
#include <rocksdb/db.h>

#include "state/store.hpp"

namespace fs = std::filesystem;
using namespace streamscore;

namespace {

// A fresh directory under the system temp dir, removed (with contents) on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    for (;;) {
      path_ = fs::temp_directory_path() /
              ("streamscore_test_store_" + std::to_string(getpid()) + "_" +
               std::to_string(counter++) + "_" + std::to_string(rd()));
      if (fs::create_directory(path_)) return;
    }
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

}  // namespace

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
    Status s = open_rocksdb_store(dir.sub("db"), &store);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  }
};

using ContractBackends = boost::mpl::list<MemoryBackend, RocksBackend>;


#include "tests/store_contract.hpp"

// ------------------------------------------------------------ RocksDB only

BOOST_AUTO_TEST_CASE(rocksdb_creates_missing_parent_dirs) {
  TempDir dir;
  std::unique_ptr<StateStore> store;
  Status s = open_rocksdb_store(dir.sub("a/b/c"), &store);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(fs::exists(dir.sub("a/b/c/CURRENT")));
}

BOOST_AUTO_TEST_CASE(rocksdb_data_survives_reopen) {
  TempDir dir;
  {
    std::unique_ptr<StateStore> store;
    BOOST_TEST_REQUIRE(open_rocksdb_store(dir.str(), &store).is_ok());
    write(*store, {put("CUSTOMER#A", 0, "a1", "ia"), put("CUSTOMER#B", 0, "b1")});
    write(*store, {put("CUSTOMER#A", 1, "a2", "ia2")});
    BOOST_TEST(store->put_meta("clock", "t1").is_ok());
    BOOST_TEST(store->sync().is_ok());
  }
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.str(), &store).is_ok());
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
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.str(), &first).is_ok());
  Status s = open_rocksdb_store(dir.str(), &second);
  BOOST_TEST(s.code() == Status::Code::io_error);
  BOOST_TEST(s.message().find("in use") != std::string::npos, s.message());
  BOOST_TEST(s.message().find(dir.str()) != std::string::npos, s.message());
  BOOST_TEST(!second);
  // Still usable, and the directory opens again once the first store is gone.
  write(*first, {put("CUSTOMER#A", 0)});
  first.reset();
  BOOST_TEST(open_rocksdb_store(dir.str(), &second).is_ok());
}

BOOST_AUTO_TEST_CASE(rocksdb_malformed_value_is_corruption_naming_pk) {
  TempDir dir;
  {
    // Write a bad value under the item key layout ("I" + pk) behind the store's back.
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    BOOST_TEST_REQUIRE(rocksdb::DB::Open(o, dir.str(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    BOOST_TEST(db->Put(rocksdb::WriteOptions(), "ICUSTOMER#bad", "\x01short").ok());
    BOOST_TEST(db->Close().ok());
  }
  std::unique_ptr<StateStore> store;
  BOOST_TEST_REQUIRE(open_rocksdb_store(dir.str(), &store).is_ok());
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
