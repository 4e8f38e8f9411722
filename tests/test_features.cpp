// `streamscore features`: point-in-time rows. The join is checked against the
// brute-force reference's item history (testkit/reference_model.hpp) on random logs
// and random spines, on hand-made rows before, on, between and after ticks, against the
// export of a multi-shard engine run, and through the CLI (errors, order, pass-through).
#define BOOST_TEST_MODULE features
#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <random>

#include "engine_support.hpp"
#include "io/generator.hpp"
#include "model/point_in_time.hpp"
#include "state/format.hpp"
#include "testkit/reference_model.hpp"
#include "tests/cli_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr int64_t kMinute = 60 * kNanosPerSecond;
constexpr int64_t kLateness = 10 * kMinute;

std::vector<std::string> generated(uint64_t seed, int64_t customers, int64_t events, int64_t days) {
  GeneratorOptions g;
  g.customers = customers;
  g.events = events;
  g.days = days;
  g.seed = seed;
  g.late_rate = 0.05;
  g.dup_rate = 0.05;
  g.bad_rate = 0.01;
  g.disorder_s = 900;  // beyond the lateness: some events are late by minutes, too
  EventGenerator gen(g);
  std::vector<std::string> lines;
  std::string line;
  while (gen.next(&line)) lines.push_back(line);
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l << '\n';
}

std::string instant(int64_t ns) {
  std::string out;
  append_event_time(out, EventTime{ns, 0});
  return out;
}

std::string spine_line(const std::string& customer, int64_t at_ns, const std::string& extra = "") {
  return R"({"customer_id":")" + customer + R"(","at":")" + instant(at_ns) + "\"" + extra + "}";
}

LogReplayOptions replay_options(std::size_t shards) {
  LogReplayOptions o;
  o.allowed_lateness_ns = kLateness;
  o.now_ns = kTestNow;
  o.shards = shards;
  return o;
}

struct Joined {
  std::vector<std::string> rows;
  PointInTimeStats stats;
};

// The rows of `spine_lines` joined to a replay of `files` on `shards` shards (threads).
Joined join(const std::vector<std::string>& files, const std::vector<std::string>& spine_lines, int64_t lag_ns,
            const TempDir& dir, std::size_t shards = 3) {
  write_lines(dir / "spine.jsonl", spine_lines);
  std::vector<SpineRow> spine;
  Status s = read_spine(dir / "spine.jsonl", &spine);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  Joined j;
  s = join_point_in_time(
      files, spine, lag_ns, replay_options(shards),
      [&j](const std::string& row) {
        j.rows.push_back(row);
        return Status::ok();
      },
      &j.stats);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return j;
}

// What a row should carry for the reference's `item` ("" = none): its joined fields.
std::string expected_fields(const std::string& item) {
  if (item.empty()) return R"("features":null,"as_of":null,"item_version":null)";
  // The features object as the item spells it (re-serializing would respell numbers).
  const std::size_t begin = item.find("\"features\":"), end = item.find(",\"last_event_time\"");
  const boost::json::object o = boost::json::parse(item).as_object();
  return item.substr(begin, end - begin) + ",\"as_of\":\"" + std::string(o.at("as_of").as_string()) +
         "\",\"item_version\":" + std::to_string(o.at("version").as_int64());
}

ReferenceModel reference_of(const std::vector<std::string>& lines) {
  ReferenceOptions ro;
  ro.allowed_lateness_ns = kLateness;
  ro.max_event_ns = future_limit(kTestNow, kDefaultMaxFutureSkewNs);
  ro.keep_history = true;
  ReferenceModel model(ro);
  for (const auto& l : lines) model.feed_line(l);
  model.finish();
  return model;
}

int64_t tick_of(int64_t ns) {
  return floor_div(ns, kWindowNanos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_spines_match_the_reference_item_history) {
  std::mt19937_64 pick(11);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    TempDir dir;
    const int64_t days = 3 + static_cast<int64_t>(pick() % 60);  // beyond 30 days: windows decay to empty
    const auto lines = generated(seed, 4 + pick() % 20, 500 + pick() % 3000, days);
    // Two files read in order, as the CLI's repeated --events.
    const std::size_t half = lines.size() / 2;
    write_lines(dir / "a.jsonl", {lines.begin(), lines.begin() + half});
    write_lines(dir / "b.jsonl", {lines.begin() + half, lines.end()});
    const ReferenceModel reference = reference_of(lines);
    const int64_t start = GeneratorOptions{}.start_ns, end = start + (days + 2) * 24 * 3600 * kNanosPerSecond;
    const int64_t lag = std::vector<int64_t>{0, 5 * kMinute, 7 * kMinute, 60 * kMinute}[pick() % 4];
    std::vector<std::string> spine;
    std::vector<std::pair<std::string, int64_t>> asked;
    for (int r = 0; r < 400; ++r) {
      const std::string customer = pick() % 10 == 0 ? "nobody" : fmt::format("C{:07d}", 1 + pick() % 25);
      int64_t at = start - 24 * 3600 * kNanosPerSecond + static_cast<int64_t>(pick() % (end - start));
      if (r % 3 == 0) at = (at / kWindowNanos) * kWindowNanos;    // exactly on a tick
      if (r % 3 == 1) at += static_cast<int64_t>(pick() % 1000);  // sub-second instants
      at -= at % 1000;                                            // the format keeps microseconds at most
      spine.push_back(spine_line(customer, at, r % 2 ? ",\"label\":" + std::to_string(r) : ""));
      asked.emplace_back(customer, at);
    }
    const std::size_t shards = 1 + pick() % 4;
    const Joined j = join({dir / "a.jsonl", dir / "b.jsonl"}, spine, lag, dir, shards);
    BOOST_TEST_CONTEXT("seed " << seed << ", " << lines.size() << " records, " << days << " days, lag " << lag << ", "
                               << shards << " shards") {
      BOOST_TEST_REQUIRE(j.rows.size() == spine.size());
      BOOST_TEST(j.stats.log.read == lines.size());
      uint64_t with_item = 0;
      for (std::size_t r = 0; r < spine.size(); ++r) {
        const std::string item = reference.item_at(asked[r].first, tick_of(asked[r].second - lag));
        with_item += !item.empty();
        // The spine row as written, then the joined fields.
        BOOST_TEST(j.rows[r] == spine[r].substr(0, spine[r].size() - 1) + "," + expected_fields(item) + "}");
      }
      BOOST_TEST(j.stats.rows_with_item == with_item);
      BOOST_TEST(with_item > 0u);
      BOOST_TEST(with_item < spine.size());
    }
  }
}

BOOST_AUTO_TEST_CASE(rows_before_on_between_and_after_ticks) {
  TempDir dir;
  const int64_t t0 = 1735689600LL * kNanosPerSecond;  // 2025-01-01T00:00:00Z
  auto event = [](const std::string& id, int64_t ns, const std::string& amount) {
    return R"({"event_id":")" + id + R"(","customer_id":"C1","event_time":")" + instant(ns) +
           R"(","event_type":"transaction","amount":)" + amount + "}";
  };
  // Events at 00:01, 00:07 and 00:21; another customer moves the clock on to 01:00.
  const std::vector<std::string> lines = {event("e1", t0 + 1 * kMinute, "10"), event("e2", t0 + 7 * kMinute, "5.5"),
                                          event("e3", t0 + 21 * kMinute, "1"),
                                          R"({"event_id":"x","customer_id":"C2","event_time":")" +
                                              instant(t0 + 60 * kMinute) + R"(","event_type":"login","amount":0})"};
  write_lines(dir / "ev.jsonl", lines);
  const std::vector<std::string> spine = {
      spine_line("C1", t0),                                // before the first event's tick
      spine_line("C1", t0 + 5 * kMinute - 1000),           // just before the first tick
      spine_line("C1", t0 + 5 * kMinute),                  // exactly on it: e1 counts
      spine_line("C1", t0 + 9 * kMinute),                  // between ticks: still only e1
      spine_line("C1", t0 + 10 * kMinute),                 // e2 counts from 00:10
      spine_line("C1", t0 + 24 * 3600 * kNanosPerSecond),  // after the last tick: the last item
  };
  const Joined j = join({dir / "ev.jsonl"}, spine, 0, dir);
  auto fields_of = [&](std::size_t r) { return j.rows[r].substr(spine[r].size()); };
  const std::string none = R"("features":null,"as_of":null,"item_version":null})";
  BOOST_TEST(fields_of(0) == none);
  BOOST_TEST(fields_of(1) == none);
  BOOST_TEST(
      fields_of(2) ==
      R"("features":{"total_txn_30d":1,"total_amount_30d":10,"avg_amount_30d":10},"as_of":"2025-01-01T00:05:00Z","item_version":1})");
  BOOST_TEST(fields_of(3) == fields_of(2));
  BOOST_TEST(
      fields_of(4) ==
      R"("features":{"total_txn_30d":2,"total_amount_30d":15.5,"avg_amount_30d":7.75},"as_of":"2025-01-01T00:10:00Z","item_version":2})");
  BOOST_TEST(
      fields_of(5) ==
      R"("features":{"total_txn_30d":3,"total_amount_30d":16.5,"avg_amount_30d":5.5},"as_of":"2025-01-01T00:25:00Z","item_version":3})");
  // A lag moves each row's cut back: 00:10 with 1 minute of lag sees the 00:05 item.
  const Joined lagged = join({dir / "ev.jsonl"}, {spine_line("C1", t0 + 10 * kMinute)}, kMinute, dir);
  BOOST_TEST(lagged.rows[0].substr(spine[4].size()) == fields_of(2));
}

BOOST_AUTO_TEST_CASE(rows_after_the_end_equal_the_export_of_a_multi_shard_run) {
  TempDir dir;
  const auto lines = generated(3, 40, 6000, 40);
  write_lines(dir / "ev.jsonl", lines);
  auto store = make_memory_store();
  EngineOptions options;
  options.shards = 8;
  options.allowed_lateness_ns = kLateness;
  EngineRun run;
  BOOST_TEST_REQUIRE(run_lines(lines, options, 333, *store, &run).is_ok());
  const std::vector<std::string>& items = run.items;
  std::vector<std::string> spine;
  for (const auto& item : items) {
    const std::string pk(boost::json::parse(item).at("PK").as_string());
    spine.push_back(spine_line(pk.substr(std::string("CUSTOMER#").size()), kTestNow));
  }
  const Joined j = join({dir / "ev.jsonl"}, spine, 0, dir);
  BOOST_TEST_REQUIRE(j.rows.size() == items.size());
  for (std::size_t r = 0; r < items.size(); ++r)
    BOOST_TEST(j.rows[r] == spine[r].substr(0, spine[r].size() - 1) + "," + expected_fields(items[r]) + "}");
}

BOOST_AUTO_TEST_CASE(cli_writes_rows_in_spine_order_and_names_bad_input) {
  TempDir dir;
  write_lines(dir / "ev.jsonl", generated(5, 10, 2000, 5));
  write_lines(dir / "spine.jsonl",
              {spine_line("C0000003", 1736000000LL * kNanosPerSecond, R"(,"label":1.50,"k":[1, 2])"), "",
               spine_line("C0000001", 1735700000LL * kNanosPerSecond)});
  Result r = run_cli(dir, "features --events " + dir / "ev.jsonl" + " --spine " + dir / "spine.jsonl" + " --out " +
                              dir / "rows.jsonl" + " --json");
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  const std::string rows = slurp(dir / "rows.jsonl");
  BOOST_TEST(
      rows.find(R"({"customer_id":"C0000003","at":"2025-01-04T14:13:20Z","label":1.50,"k":[1, 2],"features":{)") == 0u);
  BOOST_TEST(rows.find("\n{\"customer_id\":\"C0000001\"") != std::string::npos);
  BOOST_TEST(std::count(rows.begin(), rows.end(), '\n') == 2);
  BOOST_TEST(r.out.find(R"("rows":2)") != std::string::npos);
  BOOST_TEST(!fs::exists(dir / "rows.jsonl.partial"));

  // A bad spine line: exit 1 naming the file and line, and no output file.
  write_lines(dir / "bad.jsonl",
              {spine_line("C1", 1735700000LL * kNanosPerSecond), R"({"customer_id":"C1","at":"yesterday"})"});
  r = run_cli(dir, "features --events " + dir / "ev.jsonl" + " --spine " + dir / "bad.jsonl" + " --out " +
                       dir / "bad-rows.jsonl");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("bad.jsonl:2: \"at\"") != std::string::npos, r.err);
  BOOST_TEST(!fs::exists(dir / "bad-rows.jsonl"));
  for (const char* line : {R"({"customer_id":"C1","at":"2025-01-01T00:00:00Z","features":1})",
                           R"({"at":"2025-01-01T00:00:00Z"})", R"(["C1"])", "{"}) {
    write_lines(dir / "bad.jsonl", {line});
    r = run_cli(dir, "features --events " + dir / "ev.jsonl" + " --spine " + dir / "bad.jsonl" + " --out " +
                         dir / "bad-rows.jsonl");
    BOOST_TEST(r.exit_code == 1, line);
    BOOST_TEST(r.err.find("bad.jsonl:1: ") != std::string::npos, r.err);
  }
  // Usage errors: exit 2 naming the argument.
  const std::string base = "features --events " + dir / "ev.jsonl" + " --spine " + dir / "spine.jsonl";
  r = run_cli(dir, base + " --out " + dir / "o.jsonl" + " --lag soon");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("--lag 'soon'") != std::string::npos, r.err);
  r = run_cli(dir, base + " --out " + dir / "ev.jsonl");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("--out") != std::string::npos, r.err);
  r = run_cli(dir, "features --events " + dir / "missing.jsonl" + " --spine " + dir / "spine.jsonl" + " --out -");
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.err.find("missing.jsonl") != std::string::npos, r.err);
  // --out -: rows on stdout, the summary on stderr.
  r = run_cli(dir, base + " --out -");
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == rows);
  BOOST_TEST(r.err.find("features: 2 rows written to stdout") != std::string::npos, r.err);
}
