// The whole pipeline against a brute-force reference of the contract, plus
// determinism across shards, batch sizes, repeated runs and reorderings.
#define BOOST_TEST_MODULE engine
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "actors/actors.hpp"
#include "common/thread_priority.hpp"
#include "engine_support.hpp"
#include "io/dead_letter.hpp"
#include "state/format.hpp"
#include "state/shard_state.hpp"
#include "testkit/reference_model.hpp"
#include "tests/temp_dir.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr int64_t kSec = kNanosPerSecond;
constexpr int64_t kLateness = 600 * kSec;
constexpr int64_t kStart = 1735689600LL * kSec;  // 2025-01-01T00:00:00Z

// One record of a test log: a valid event, or a malformed line with its expected reason.
struct Record {
  std::string line;
  bool valid = true;
  Reason bad_reason = Reason::not_json;
  std::string id, customer, type;
  EventTime time;
  int64_t cents = 0;
};

std::string time_text(EventTime t) {
  std::string s;
  append_event_time(s, t);
  return s;
}

std::string amount_text(int64_t cents, int style) {
  std::string s = std::to_string(cents / 100);
  if (style == 0) return s + "." + (cents % 100 < 10 ? "0" : "") + std::to_string(cents % 100);
  if (style == 1 && cents % 100 == 0) return s;  // "12"
  std::string frac = std::to_string(cents % 100);
  if (frac.size() == 1) frac = "0" + frac;
  return s + "." + frac + "0";  // "12.340"
}

Record make_event(std::mt19937_64& rng, const std::string& id, const std::string& customer, int64_t ns) {
  Record r;
  r.id = id;
  r.customer = customer;
  const int kind = static_cast<int>(rng() % 10);
  r.type = kind < 8 ? "transaction" : kind == 8 ? "refund" : "login";
  r.cents = static_cast<int64_t>(rng() % 50000);
  r.time.frac_digits = rng() % 3 == 0 ? static_cast<uint8_t>(1 + rng() % 9) : 0;
  int64_t unit = 1;
  for (int i = r.time.frac_digits; i < 9; ++i) unit *= 10;
  r.time.ns = r.time.frac_digits == 0 ? ns - ns % kSec : ns - ns % unit;
  r.line = "{\"event_id\":\"" + id + "\",\"customer_id\":\"" + customer + "\",\"event_time\":\"" + time_text(r.time) +
           "\",\"event_type\":\"" + r.type + "\",\"amount\":" + amount_text(r.cents, static_cast<int>(rng() % 3)) +
           ",\"extra\":[1,{\"x\":null}]}";
  return r;
}

Record make_bad(std::mt19937_64& rng, int n) {
  static const std::vector<std::pair<std::string, Reason>> kBad = {
      {"{\"event_id\":\"b\",\"customer_id\":", Reason::not_json},
      {"[1,2,3]", Reason::not_object},
      {"{\"event_id\":\"b1\",\"event_time\":\"2025-01-02T00:00:00Z\",\"event_type\":\"transaction\",\"amount\":1}",
       Reason::missing_field},
      {"{\"event_id\":\"b2\",\"customer_id\":\"C1\",\"event_time\":\"2025-01-02T00:00:00Z\",\"event_type\":"
       "\"transaction\",\"amount\":\"1.00\"}",
       Reason::bad_type},
      {"{\"event_id\":\"b3\",\"customer_id\":\"C1\",\"event_time\":\"2025-13-02T00:00:00Z\",\"event_type\":"
       "\"transaction\",\"amount\":1}",
       Reason::bad_time},
      {"{\"event_id\":\"b4\",\"customer_id\":\"C1\",\"event_time\":\"2025-01-02T00:00:00Z\",\"event_type\":"
       "\"transaction\",\"amount\":-5}",
       Reason::bad_amount},
      {"{\"event_id\":\"b5\",\"customer_id\":\"\",\"event_time\":\"2025-01-02T00:00:00Z\",\"event_type\":"
       "\"transaction\",\"amount\":5}",
       Reason::empty_field},
  };
  const auto& b = kBad[(n + rng()) % kBad.size()];
  Record r;
  r.line = b.first;
  r.valid = false;
  r.bad_reason = b.second;
  return r;
}

struct LogShape {
  int customers = 8;
  int events = 1500;
  int64_t span_days = 40;
  double late = 0.02, expired = 0.01, future = 0.005, dup = 0.05, conflict = 0.01, bad = 0.02;
};

// Events in arrival order: times spread over the span, shuffled within 0.9 x lateness
// (never late), plus late, expired, future, duplicate, conflicting and bad records.
std::vector<Record> make_log(uint64_t seed, const LogShape& shape) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<int64_t, Record>> keyed;
  const int64_t span = shape.span_days * 86400 * kSec;
  for (int i = 0; i < shape.events; ++i) {
    const int64_t t = kStart + static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
    const std::string customer = "C" + std::to_string(rng() % shape.customers);
    Record r = make_event(rng, "e" + std::to_string(i), customer, t);
    const int64_t jitter = static_cast<int64_t>(rng() % static_cast<uint64_t>(kLateness * 9 / 10));
    keyed.emplace_back(r.time.ns + jitter, std::move(r));
  }
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Record> out;
  std::uniform_real_distribution<double> u(0, 1);
  int n = 0;
  for (auto& [key, r] : keyed) {
    const double x = u(rng);
    if (x < shape.late) {  // 1..48 hours behind: late but inside 30 days
      r = make_event(rng, r.id, r.customer, r.time.ns - (1 + rng() % 48) * 3600 * kSec);
    } else if (x < shape.late + shape.expired) {
      r = make_event(rng, r.id, r.customer, r.time.ns - (31 + rng() % 5) * 86400 * kSec);
    } else if (x < shape.late + shape.expired + shape.future) {
      r = make_event(rng, r.id, r.customer, kTestNow + 2 * 86400 * kSec);
    }
    out.push_back(r);
    if (u(rng) < shape.bad) out.push_back(make_bad(rng, n++));
    if (u(rng) < shape.dup && !out.empty()) {
      out.push_back(out[out.size() - 1 - rng() % std::min<size_t>(out.size(), 50)]);
    }
    if (u(rng) < shape.conflict && r.valid) {
      Record c = make_event(rng, r.id, r.customer, r.time.ns + (rng() % 2) * 60 * kSec);
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> lines_of(const std::vector<Record>& log) {
  std::vector<std::string> lines;
  for (const auto& r : log) lines.push_back(r.line);
  return lines;
}

// The contract, computed the slow and obvious way.
struct Reference {
  RunStats stats;
  std::map<std::string, CustomerState> customers;  // only id/written/as_of/version used
  std::map<std::string, std::vector<const Record*>> applied;
  std::map<std::pair<std::string, std::string>, std::pair<std::tuple<int64_t, std::string, int64_t>, int64_t>> seen;
  bool started = false;
  int64_t max_ns = 0, tick = 0;

  void do_tick(int64_t k) {
    const int64_t T = k * kWindowNanos;
    for (auto& [customer, events] : applied) {
      ItemContent content;
      bool any = false;
      for (const Record* r : events) {
        if (r->time.ns >= T) continue;
        if (!any || content.last_event < r->time) content.last_event = r->time;
        any = true;
        if (r->type == "transaction" && r->time.ns >= T - kHorizonNanos) {
          ++content.txn_count;
          content.cents += r->cents;
        }
      }
      if (!any) continue;
      CustomerState& c = customers[customer];
      c.id = customer;
      if (c.version > 0 && content == c.written) continue;
      c.written = content;
      c.as_of_tick = k;
      ++c.version;
      ++stats.logical_writes;
    }
    ++stats.ticks;
  }

  void advance(int64_t due) {
    for (int64_t k = tick + 1; k <= due; ++k) do_tick(k);
    tick = std::max(tick, due);
  }

  void feed(const Record& r) {
    ++stats.read;
    if (!r.valid) {
      ++stats.dead_lettered[static_cast<int>(r.bad_reason)];
      return;
    }
    if (r.time.ns > kTestNow + 24 * 3600 * kSec) {
      ++stats.dead_lettered[static_cast<int>(Reason::future)];
      return;
    }
    if (started && r.time.ns < tick * kWindowNanos - kHorizonNanos) {
      ++stats.dead_lettered[static_cast<int>(Reason::expired)];
      return;
    }
    const auto key = std::make_pair(r.customer, r.id);
    const auto fp = std::make_tuple(r.time.ns, r.type, r.cents);
    auto it = seen.find(key);
    const bool remembered =
        it != seen.end() && (!started || it->second.second >= tick * kWindowNanos - kHorizonNanos - kLateness);
    if (remembered) {
      ++stats.duplicates;
      if (it->second.first != fp) ++stats.conflicting_duplicates;
      return;
    }
    seen[key] = {fp, r.time.ns};
    ++stats.accepted;
    applied[r.customer].push_back(&r);
    if (!started) {
      started = true;
      max_ns = r.time.ns;
      tick = floor_div(max_ns - kLateness, kWindowNanos);
      return;
    }
    if (r.time.ns > max_ns) {
      max_ns = r.time.ns;
      advance(floor_div(max_ns - kLateness, kWindowNanos));
    }
  }

  void finish() {
    if (started) advance(floor_div(max_ns, kWindowNanos) + 1);
  }

  std::vector<std::string> items() const {
    std::vector<std::string> out;
    for (const auto& [id, c] : customers) {  // std::map: sorted by id, so by PK
      std::string s;
      ShardState::render_item(c, &s);
      out.push_back(s);
    }
    return out;
  }
};

Reference reference_of(const std::vector<Record>& log) {
  Reference ref;
  for (const auto& r : log) ref.feed(r);
  ref.finish();
  ref.stats.customers = ref.customers.size();
  return ref;
}

EngineRun run_engine(const std::vector<std::string>& lines, int shards, std::size_t batch_size) {
  EngineOptions options;
  options.shards = shards;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  auto store = make_memory_store();
  EngineRun run;
  Status s = run_lines(lines, options, batch_size, *store, &run);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return run;
}

void check_counters(const RunStats& got, const RunStats& want) {
  BOOST_TEST(got.read == want.read);
  BOOST_TEST(got.accepted == want.accepted);
  BOOST_TEST(got.duplicates == want.duplicates);
  BOOST_TEST(got.conflicting_duplicates == want.conflicting_duplicates);
  for (int r = 0; r < kReasonCount; ++r)
    BOOST_TEST(got.dead_lettered[r] == want.dead_lettered[r],
               reason_name(static_cast<Reason>(r)) << ": " << got.dead_lettered[r] << " vs " << want.dead_lettered[r]);
  BOOST_TEST(got.ticks == want.ticks);
  BOOST_TEST(got.customers == want.customers);
  BOOST_TEST(got.logical_writes == want.logical_writes);
  BOOST_TEST(got.balanced());
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_logs_match_the_brute_force_reference) {
  std::mt19937_64 pick(7);
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    LogShape shape;
    shape.customers = 3 + static_cast<int>(pick() % 10);
    shape.events = 300 + static_cast<int>(pick() % 1200);
    shape.span_days = 5 + static_cast<int64_t>(pick() % 60);
    const auto log = make_log(seed, shape);
    const Reference ref = reference_of(log);
    const int shards = 1 + static_cast<int>(pick() % 8);
    const std::size_t batch = 1 + pick() % 400;
    BOOST_TEST_CONTEXT("seed " << seed << ", " << log.size() << " records, " << shards << " shards, batches of "
                               << batch) {
      EngineRun run = run_engine(lines_of(log), shards, batch);
      check_counters(run.stats, ref.stats);
      // The reusable reference (testkit/reference_model.hpp, behind `stress`) agrees with
      // this one, and its check finds no difference.
      ReferenceOptions ro;
      ro.allowed_lateness_ns = kLateness;
      ro.max_event_ns = kTestNow + 24 * 3600 * kSec;
      ReferenceModel model(ro);
      for (const auto& r : log) model.feed_line(r.line);
      model.finish();
      check_counters(model.stats(), ref.stats);
      BOOST_TEST(model.items() == ref.items());
      BOOST_TEST(first_difference(run.stats, run.items, model.stats(), model.items()) == "");
      const auto want = ref.items();
      BOOST_TEST(run.items.size() == want.size());
      for (std::size_t i = 0; i < std::min(run.items.size(), want.size()); ++i) BOOST_TEST(run.items[i] == want[i]);
    }
  }
}

BOOST_AUTO_TEST_CASE(one_and_eight_shards_and_any_batch_size_give_identical_exports) {
  const auto lines = lines_of(make_log(99, LogShape{}));
  const EngineRun a = run_engine(lines, 1, 1000);
  const EngineRun b = run_engine(lines, 8, 7);
  const EngineRun c = run_engine(lines, 8, 1000);
  BOOST_TEST(a.items == b.items);
  BOOST_TEST(a.items == c.items);
  BOOST_TEST(!a.items.empty());
}

BOOST_AUTO_TEST_CASE(the_same_log_twice_gives_identical_exports) {
  const auto lines = lines_of(make_log(5, LogShape{}));
  BOOST_TEST(run_engine(lines, 4, 128).items == run_engine(lines, 4, 128).items);
}

// Features, last_event_time and as_of, without the version.
std::vector<std::string> without_version(std::vector<std::string> items) {
  for (auto& s : items) s = s.substr(0, s.rfind(",\"version\":"));
  return items;
}

BOOST_AUTO_TEST_CASE(reordering_within_the_lateness_and_exact_duplicates_keep_features) {
  LogShape shape;
  shape.late = shape.expired = shape.future = shape.dup = shape.conflict = shape.bad = 0;
  auto log = make_log(11, shape);
  // Another order that keeps every event within the allowed lateness: sort by time
  // plus a different random jitter, and add exact duplicates.
  std::mt19937_64 rng(3);
  std::vector<std::pair<int64_t, Record>> keyed;
  for (const auto& r : log) keyed.emplace_back(r.time.ns + static_cast<int64_t>(rng() % (kLateness * 9 / 10)), r);
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Record> other;
  for (auto& [k, r] : keyed) {
    other.push_back(r);
    if (rng() % 10 == 0) other.push_back(r);
  }
  BOOST_REQUIRE(lines_of(other) != lines_of(log));
  const auto a = run_engine(lines_of(log), 3, 100);
  const auto b = run_engine(lines_of(other), 5, 33);
  BOOST_TEST(without_version(a.items) == without_version(b.items));
}

BOOST_AUTO_TEST_CASE(dead_letters_carry_reason_source_and_raw_line) {
  const std::vector<std::string> lines = {
      "{\"event_id\":\"e1\",\"customer_id\":\"C1\",\"event_time\":\"2025-01-01T00:00:00Z\",\"event_type\":"
      "\"transaction\",\"amount\":1}",
      "not json at all",
      "{\"event_id\":\"e2\",\"customer_id\":\"C1\",\"event_time\":\"2025-03-01T00:00:00Z\",\"event_type\":"
      "\"transaction\",\"amount\":1}",
      "{\"event_id\":\"e3\",\"customer_id\":\"C1\",\"event_time\":\"2025-01-02T00:00:00Z\",\"event_type\":"
      "\"transaction\",\"amount\":1}",
  };
  const std::string dir = "dead_letter_test_" + std::to_string(::getpid());
  EngineOptions options;
  options.dead_letter_path = dir + "/dl.jsonl";
  auto store = make_memory_store();
  EngineRun run;
  BOOST_REQUIRE(run_lines(lines, options, 2, *store, &run).is_ok());
  std::ifstream in(options.dead_letter_path);
  std::string first, second, third;
  std::getline(in, first);
  std::getline(in, second);
  BOOST_TEST(!std::getline(in, third));
  BOOST_TEST(first.find("\"reason\":\"not_json\"") != std::string::npos);
  BOOST_TEST(first.find("\"source\":\"test.jsonl:2\"") != std::string::npos);
  BOOST_TEST(first.find("not json at all") != std::string::npos);
  BOOST_TEST(second.find("\"reason\":\"expired\"") != std::string::npos);
  BOOST_TEST(second.find("test.jsonl:4") != std::string::npos);
  BOOST_TEST(run.stats.balanced());
  std::filesystem::remove_all(dir);
}

// A stop without the final tick (SIGTERM while following a file) and a restart on the
// same store must continue exactly where the uninterrupted run would be.
// Runs seeds [first, last) cut into segments, each on a fresh engine over one store.
void check_restarts(uint64_t first, uint64_t last, bool on_rocksdb) {
  std::mt19937_64 pick(21 + first);
  for (uint64_t seed = first; seed < last; ++seed) {
    LogShape shape;
    shape.customers = 3 + static_cast<int>(pick() % 6);
    shape.events = 400 + static_cast<int>(pick() % 800);
    const auto lines = lines_of(make_log(seed, shape));
    const EngineRun whole = run_engine(lines, 4, 64);
    // Cut into 2..5 segments at random record positions.
    std::vector<std::size_t> cuts = {0, lines.size()};
    for (int i = 0, n = 1 + static_cast<int>(pick() % 4); i < n; ++i) cuts.push_back(pick() % lines.size());
    std::sort(cuts.begin(), cuts.end());
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("streamscore-restart-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
    std::unique_ptr<StateStore> store;
    if (on_rocksdb) {
      BOOST_REQUIRE(open_rocksdb_store(dir, &store).is_ok());
    } else {
      store = make_memory_store();
    }
    RunStats total;
    EngineRun last;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      const std::vector<std::string> part(lines.begin() + cuts[k], lines.begin() + cuts[k + 1]);
      EngineOptions options;
      options.shards = 1 + static_cast<int>(pick() % 6);  // a restart may change the shard count
      options.threads = 2;
      options.allowed_lateness_ns = kLateness;
      const bool final = k + 2 == cuts.size();
      const std::size_t checkpoint_every = pick() % 3;  // 0 = only at the stop
      Status s = run_lines(part, options, 1 + pick() % 100, *store, &last, final, checkpoint_every);
      BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
      total.read += last.stats.read;
      total.accepted += last.stats.accepted;
      total.duplicates += last.stats.duplicates;
      total.ticks += last.stats.ticks;
      total.logical_writes += last.stats.logical_writes;
    }
    BOOST_TEST_CONTEXT("seed " << seed << ", " << cuts.size() - 1 << " segments") {
      BOOST_TEST(last.items == whole.items);
      BOOST_TEST(total.read == whole.stats.read);
      BOOST_TEST(total.accepted == whole.stats.accepted);
      BOOST_TEST(total.duplicates == whole.stats.duplicates);
      BOOST_TEST(total.ticks == whole.stats.ticks);
      BOOST_TEST(total.logical_writes == whole.stats.logical_writes);
    }
    store.reset();
    std::filesystem::remove_all(dir);
  }
}

BOOST_AUTO_TEST_CASE(stops_and_restarts_anywhere_give_the_uninterrupted_result) {
  check_restarts(40, 48, /*on_rocksdb=*/false);
}

BOOST_AUTO_TEST_CASE(stops_and_restarts_on_rocksdb_give_the_uninterrupted_result) {
  check_restarts(60, 63, /*on_rocksdb=*/true);
}

// Optimistic locking under a second writer: between checkpoints another writer (think
// of a re-scorer) rewrites some items with update_item, each write a version of its
// own. The engine's next commit of those customers conflicts, is retried from the
// fresh version, and loses nothing: every item ends with the engine's features and
// version = the engine's versions + the other writer's versions; conflicts are counted.
BOOST_AUTO_TEST_CASE(a_second_writer_racing_on_the_items_loses_no_update) {
  LogShape shape;
  shape.customers = 12;
  shape.events = 3000;
  const auto lines = lines_of(make_log(4242, shape));
  const EngineRun alone = run_engine(lines, 3, 100);

  auto store = make_memory_store();
  EngineOptions options;
  options.shards = 3;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.now_ns = [] { return kTestNow; };
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());
  std::map<std::string, int64_t> foreign_writes;  // PK -> versions written by the other writer
  uint64_t foreign_conflicts = 0;
  for (std::size_t i = 0; i < lines.size(); i += 100) {
    BOOST_REQUIRE(engine->submit(make_batch(lines, i, std::min(lines.size(), i + 100), "t")).is_ok());
    Status s = engine->checkpoint({});
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    // The other writer touches every item it finds, keeping its content.
    std::vector<std::string> pks;
    s = store->scan([&](const ItemRecord& r) {
      if (!r.item_json.empty()) pks.push_back(r.pk);
      return true;
    });
    BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    for (const std::string& pk : pks) {
      s = update_item(
          *store, pk,
          [](const ItemRecord* cur, ItemRecord* next) {
            *next = *cur;
            next->version = cur->version + 1;
            const auto at = next->item_json.rfind("\"version\":");
            next->item_json.replace(at, std::string::npos, "\"version\":" + std::to_string(next->version) + "}");
            return true;
          },
          &foreign_conflicts);
      BOOST_REQUIRE(s.is_ok());
      ++foreign_writes[pk];
    }
  }
  RunStats stats;
  BOOST_REQUIRE(engine->finish(true, &stats).is_ok());
  BOOST_TEST(stats.conflicts > 0u);
  BOOST_TEST(engine->checkpoint_probe().write_conflicts.load() == stats.conflicts);
  const auto items = export_items(*store);
  BOOST_REQUIRE(items.size() == alone.items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto got = boost::json::parse(items[i]).as_object();
    const auto want = boost::json::parse(alone.items[i]).as_object();
    BOOST_TEST(got.at("features") == want.at("features"));
    BOOST_TEST(got.at("as_of") == want.at("as_of"));
    BOOST_TEST(got.at("last_event_time") == want.at("last_event_time"));
    const std::string pk(got.at("PK").as_string());
    BOOST_TEST(got.at("version").as_int64() == want.at("version").as_int64() + foreign_writes[pk], pk);
  }
}

// The shard queue-depth gauge is the router's count of batches sent minus the shard's
// count of batches applied. Under CAF's deterministic test scheduler the router runs
// until it has sent a batch on while the shards have not run yet: the gauge then shows
// every shard the batch went to, and returns to 0 once the shards have run.
BOOST_AUTO_TEST_CASE(shard_queue_depth_counts_batches_sent_and_not_yet_applied) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  auto metrics = std::make_shared<ShardProbe>();  // the gauge under test
  auto router_probe = std::make_shared<RouterProbe>();
  auto store = make_memory_store();
  constexpr std::size_t kShards = 3;
  RouterConfig rc;
  rc.parsers.push_back(spawn_parser(sys, nullptr));
  for (std::size_t i = 0; i < kShards; ++i)
    rc.shards.push_back(
        spawn_shard(sys, std::make_shared<ShardState>(ShardOptions{}), store.get(), static_cast<uint32_t>(i), metrics));
  rc.clock = spawn_window_clock(sys, std::make_shared<EventClock>(kLateness), std::make_shared<ClockProbe>());
  rc.dead_letter = spawn_dead_letter_sink(sys, std::make_shared<DeadLetterWriter>());
  rc.now_ns = [] { return kTestNow; };
  rc.router_probe = router_probe;
  rc.shard_probe = metrics;
  metrics->shard_count = static_cast<int>(kShards);
  auto router = spawn_router(sys, rc);
  sched.run();  // the actors' start-up

  auto sent = [&] {
    uint64_t n = 0;
    for (std::size_t i = 0; i < kShards; ++i) n += metrics->shard_batches_sent[i].load();
    return n;
  };
  auto depths = [&] {
    std::vector<int64_t> d;
    for (std::size_t i = 0; i < kShards; ++i) d.push_back(metrics->shard_queue_depth(i));
    return d;
  };
  LogShape shape;
  shape.customers = 30;
  shape.events = 200;
  shape.bad = 0;
  const auto lines = lines_of(make_log(77, shape));
  caf::anon_send(router, batch_atom::value, std::make_shared<const RawBatch>(make_batch(lines, 0, lines.size(), "t")));
  while (sent() == 0 && sched.try_run_once()) {
  }
  BOOST_REQUIRE(sent() > 0u);
  int64_t queued = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    BOOST_TEST(static_cast<uint64_t>(metrics->shard_queue_depth(i)) == metrics->shard_batches_sent[i].load());
    queued += metrics->shard_queue_depth(i);
  }
  BOOST_TEST(queued == static_cast<int64_t>(sent()));  // nothing applied yet
  sched.run();
  BOOST_TEST(depths() == std::vector<int64_t>(kShards, 0), boost::test_tools::per_element());
  BOOST_TEST(router_probe->accepted.load() > 0u);
  for (const auto& a : {caf::actor_cast<caf::actor>(router), caf::actor_cast<caf::actor>(rc.parsers[0]),
                        caf::actor_cast<caf::actor>(rc.shards[0]), caf::actor_cast<caf::actor>(rc.shards[1]),
                        caf::actor_cast<caf::actor>(rc.shards[2]), caf::actor_cast<caf::actor>(rc.clock),
                        caf::actor_cast<caf::actor>(rc.dead_letter)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
}

// engine.nice: a thread lowers its own priority by the steps asked, never past 19, and
// out-of-range steps are refused (run in a thread of its own: the change sticks to it).
BOOST_AUTO_TEST_CASE(lowering_a_thread_priority_adds_steps_up_to_19) {
  std::thread([] {
    const int base = this_thread_nice();
    BOOST_TEST(lower_this_thread_priority(0).is_ok());
    BOOST_TEST(this_thread_nice() == base);
    BOOST_TEST(lower_this_thread_priority(2).is_ok());
    BOOST_TEST(this_thread_nice() == std::min(19, base + 2));
    BOOST_TEST(lower_this_thread_priority(19).is_ok());
    BOOST_TEST(this_thread_nice() == 19);
    BOOST_TEST(lower_this_thread_priority(20).is_invalid_argument());
    BOOST_TEST(lower_this_thread_priority(-1).is_invalid_argument());
    BOOST_TEST(this_thread_nice() == 19);
  }).join();
}

// http.realtime_priority: 0 leaves the thread as it is, out-of-range priorities are refused,
// and a refusal for lack of privilege says so (the server then only warns).
BOOST_AUTO_TEST_CASE(raising_a_thread_to_realtime_applies_or_says_why_not) {
  std::thread([] {
    BOOST_TEST(this_thread_realtime_priority() == 0);
    BOOST_TEST(raise_this_thread_to_realtime(0).is_ok());
    BOOST_TEST(this_thread_realtime_priority() == 0);
    BOOST_TEST(raise_this_thread_to_realtime(100).is_invalid_argument());
    BOOST_TEST(raise_this_thread_to_realtime(-1).is_invalid_argument());
    bool denied = true;
    const Status s = raise_this_thread_to_realtime(2, &denied);
    if (s.is_ok()) {
      BOOST_TEST(!denied);
      BOOST_TEST(this_thread_realtime_priority() == 2);
    } else {  // not root: EPERM, and the thread keeps its normal policy
      BOOST_TEST(denied);
      BOOST_TEST(s.message().find("SCHED_RR") != std::string::npos);
      BOOST_TEST(this_thread_realtime_priority() == 0);
    }
  }).join();
}

namespace {

// Records of Kafka partitions: the line and the partition it was read from.
struct PartitionRecord {
  int32_t partition = 0;
  std::string line;
};

RawBatch partition_batch(const std::vector<PartitionRecord>& records, std::size_t begin, std::size_t end) {
  std::vector<std::string> lines;
  for (std::size_t i = begin; i < end; ++i) lines.push_back(records[i].line);
  RawBatch batch = make_batch(lines, 0, lines.size(), "customer-events");
  for (std::size_t i = begin; i < end; ++i) batch.partitions.push_back(records[i].partition);
  return batch;
}

// Customer "P<p>" in partition p: an event every 5 hours for 40 days, starting `shift`
// hours after kStart, so that the partitions' clocks are never equal.
std::vector<PartitionRecord> partition_log(int32_t partition, int shift_hours) {
  std::vector<PartitionRecord> out;
  const std::string customer = "P" + std::to_string(partition);
  for (int i = 0; i < 40 * 24 / 5; ++i) {
    const int64_t t = kStart + (shift_hours + 5LL * i) * 3600 * kSec;
    out.push_back({partition, "{\"event_id\":\"e" + std::to_string(i) + "\",\"customer_id\":\"" + customer +
                                  "\",\"event_type\":\"transaction\",\"amount\":" + std::to_string(1 + i % 7) +
                                  ".25,\"event_time\":\"" + time_text(EventTime{t, 0}) + "\"}"});
  }
  return out;
}

// Feeds `records` in batches of `batch_size` through an engine on `store`, with a
// checkpoint after each; `restart_after` records (if any) the engine is stopped (no
// final tick) and started again on the store. Returns the export after the final tick.
std::vector<std::string> run_partitions(const std::vector<PartitionRecord>& records, std::size_t batch_size,
                                        std::size_t restart_after = 0) {
  EngineOptions options;
  options.shards = 3;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.now_ns = [] { return kTestNow; };
  auto store = make_memory_store();
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());
  RunStats stats;
  for (std::size_t i = 0; i < records.size(); i += batch_size) {
    const std::size_t end = std::min(records.size(), i + batch_size);
    BOOST_REQUIRE(engine->submit(partition_batch(records, i, end)).is_ok());
    BOOST_REQUIRE(engine->checkpoint({}).is_ok());
    if (restart_after > 0 && i < restart_after && end >= restart_after) {
      BOOST_REQUIRE(engine->finish(/*final_tick=*/false, &stats).is_ok());
      engine.reset();
      BOOST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());
    }
  }
  BOOST_REQUIRE(engine->finish(/*final_tick=*/true, &stats).is_ok());
  return export_items(*store);
}

}  // namespace

// Each partition has its own window clock: a customer's ticks, expiry and dedup horizon
// come from its partition's records only. So the export (as_of and version included)
// does not depend on when the other partitions were read: one read after the other, 40
// days apart, or interleaved by event time, with a restart in between, all agree.
BOOST_AUTO_TEST_CASE(each_partition_ticks_by_its_own_clock_whatever_the_read_order) {
  const std::vector<PartitionRecord> p0 = partition_log(0, 0), p1 = partition_log(1, 2), p2 = partition_log(2, 3);
  std::vector<PartitionRecord> one_after_another = p0;
  one_after_another.insert(one_after_another.end(), p1.begin(), p1.end());
  one_after_another.insert(one_after_another.end(), p2.begin(), p2.end());
  // By event time, as one daemon merging the three partitions reads them.
  std::vector<PartitionRecord> interleaved;
  for (std::size_t i = 0; i < p0.size(); ++i)
    for (const auto* p : {&p0, &p1, &p2}) interleaved.push_back((*p)[i]);

  const std::vector<std::string> expected = run_partitions(interleaved, 50);
  BOOST_REQUIRE(expected.size() == 3u);
  for (const std::string& item : expected) BOOST_TEST(item.find("\"version\":1}") == std::string::npos, item);
  BOOST_TEST(run_partitions(one_after_another, 50) == expected);
  BOOST_TEST(run_partitions(one_after_another, 64, /*restart_after=*/p0.size() + 10) == expected);
  BOOST_TEST(run_partitions(interleaved, 7, /*restart_after=*/200) == expected);
}

namespace {

// A memory store that keeps the forget bounds of every commit.
class ForgetRecordingStore final : public StateStore {
 public:
  Status get(std::string_view pk, ItemRecord* out) override { return inner_->get(pk, out); }
  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override {
    for (const auto& [partition, day] : writes.forget_partition_dedup_before_day) partition_days[partition] = day;
    return inner_->commit(writes, conflicts);
  }
  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override { return inner_->scan_dedup(fn); }
  Status scan(const std::function<bool(const ItemRecord&)>& fn) override { return inner_->scan(fn); }
  Status put_meta(std::string_view key, std::string_view value) override { return inner_->put_meta(key, value); }
  Status get_meta(std::string_view key, std::string* value) override { return inner_->get_meta(key, value); }
  Status clear() override { return inner_->clear(); }
  Status sync() override { return inner_->sync(); }

  std::map<int32_t, int64_t> partition_days;  // the last bound of each partition's index

 private:
  std::unique_ptr<StateStore> inner_ = make_memory_store();
};

}  // namespace

// A partition's ids in the index are forgotten by that partition's clock alone: p0 is 38
// days ahead of p1, and p1's ids go by p1's clock, not by p0's.
BOOST_AUTO_TEST_CASE(each_held_partition_is_forgotten_by_its_own_clock) {
  std::vector<PartitionRecord> records = partition_log(0, 0);
  const std::vector<PartitionRecord> p1 = partition_log(1, 2);
  records.insert(records.end(), p1.begin(), p1.begin() + 10);  // two days of p1
  EngineOptions options;
  options.shards = 2;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.now_ns = [] { return kTestNow; };
  ForgetRecordingStore store;
  std::unique_ptr<Engine> engine;
  BOOST_REQUIRE(Engine::start(options, &store, &engine).is_ok());
  for (std::size_t i = 0; i < records.size(); i += 50) {
    BOOST_REQUIRE(engine->submit(partition_batch(records, i, std::min(records.size(), i + 50))).is_ok());
    BOOST_REQUIRE(engine->checkpoint({}).is_ok());
  }
  RunStats stats;
  BOOST_REQUIRE(engine->finish(/*final_tick=*/false, &stats).is_ok());
  BOOST_REQUIRE(store.partition_days.count(0) == 1u);
  BOOST_REQUIRE(store.partition_days.count(1) == 1u);
  const int64_t start_day = kStart / kDayNanos;
  BOOST_TEST(store.partition_days[0] >= start_day + 5);   // 40 days read: 10 past the horizon, less lateness
  BOOST_TEST(store.partition_days[1] <= start_day - 25);  // 2 days read
}

namespace {

// A RocksDB state whose bulk load fails where its parts are ingested (a full disk; a kill
// there leaves the same files): every shard has built its part, none is visible yet.
class FailingIngestStore final : public StateStore {
 public:
  explicit FailingIngestStore(StateStore& inner) : inner_(inner) {}
  Status get(std::string_view pk, ItemRecord* out) override { return inner_.get(pk, out); }
  Status commit(const WriteSet& writes, std::vector<std::size_t>* conflicts) override {
    return inner_.commit(writes, conflicts);
  }
  Status scan_dedup(const std::function<bool(const DedupRecord&)>& fn) override { return inner_.scan_dedup(fn); }
  Status scan(const std::function<bool(const ItemRecord&)>& fn) override { return inner_.scan(fn); }
  Status put_meta(std::string_view key, std::string_view value) override { return inner_.put_meta(key, value); }
  Status get_meta(std::string_view key, std::string* value) override { return inner_.get_meta(key, value); }
  Status clear() override { return inner_.clear(); }
  Status sync() override { return inner_.sync(); }
  Status open_bulk_part(uint32_t part, std::unique_ptr<BulkPart>* out) override {
    Status s = inner_.open_bulk_part(part, out);
    if (s.is_ok() && *out) ++parts;
    return s;
  }
  bool takes_bulk_parts() const override { return inner_.takes_bulk_parts(); }
  Status ingest_bulk_parts(const WriteSet&) override { return Status::io_error("injected: no space left on device"); }

  int parts = 0;

 private:
  StateStore& inner_;
};

std::vector<std::string> dedup_records(StateStore& store) {
  std::vector<std::string> out;
  Status s = store.scan_dedup([&](const DedupRecord& r) {
    out.push_back(std::to_string(r.day) + "/" + std::to_string(r.sequence) + "/" + std::to_string(r.part) + ":" +
                  r.data);
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return out;
}

}  // namespace

// A replay (bulk load) into RocksDB writes each shard's part apart and ingests them at the
// end: the items and dedup ids equal those of the same load committed into memory. One
// that fails before its parts are ingested is an interrupted rebuild, shows no item, and a
// replay again on the same state loads it whole.
BOOST_AUTO_TEST_CASE(a_bulk_load_cut_at_its_ingestion_is_an_interrupted_rebuild_and_loads_again) {
  const auto lines = lines_of(make_log(5, LogShape{}));
  EngineOptions options;
  options.shards = 4;
  options.threads = 2;
  options.allowed_lateness_ns = kLateness;
  options.bulk_load = true;
  auto memory = make_memory_store();
  EngineRun committed;
  Status s = run_lines(lines, options, 64, *memory, &committed);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  TempDir dir;
  const std::string state = dir / "state";
  auto replay = [&](StateStore& store, EngineRun* run) {
    Status cleared = store.clear();
    return cleared.is_ok() ? run_lines(lines, options, 64, store, run) : cleared;
  };
  {
    std::unique_ptr<StateStore> rocks;
    BOOST_REQUIRE(open_rocksdb_store(state, &rocks, RocksDbOptions{/*bulk_load=*/true}).is_ok());
    FailingIngestStore failing(*rocks);
    EngineRun cut;
    s = replay(failing, &cut);
    BOOST_TEST(s.message().find("injected") != std::string::npos, s.to_string());
    BOOST_TEST(failing.parts == options.shards);
  }
  {
    std::unique_ptr<StateStore> rocks;
    BOOST_REQUIRE(open_rocksdb_store(state, &rocks).is_ok());
    s = check_session(rocks.get());
    BOOST_TEST(s.message().find("interrupted rebuild") != std::string::npos, s.to_string());
    BOOST_TEST(export_items(*rocks).empty());
  }
  std::unique_ptr<StateStore> rocks;
  BOOST_REQUIRE(open_rocksdb_store(state, &rocks, RocksDbOptions{/*bulk_load=*/true}).is_ok());
  EngineRun again;
  s = replay(*rocks, &again);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  BOOST_TEST(check_session(rocks.get()).is_ok());
  BOOST_TEST(again.items == committed.items);
  BOOST_TEST(dedup_records(*rocks) == dedup_records(*memory));
  BOOST_TEST(again.stats.items_written == committed.stats.items_written);
}
