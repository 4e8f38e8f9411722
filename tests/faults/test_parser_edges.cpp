// Fault class: records that are JSON dead-lettered as not_json (issue 16, class 8).
// Boost.JSON stops at its own limits (nesting depth 32, exponents beyond int, lone
// surrogate escapes); the contract ignores extra fields and judges the amount by its
// value. A replay of a log with such lines must accept the valid ones, dead-letter the
// others with the contract's reason, and keep its counters balanced.
#define BOOST_TEST_MODULE fault_parser_edges
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "tests/cli_support.hpp"

using namespace streamscore::testing;

namespace {

struct Line {
  std::string text;
  std::string reason;  // empty: accepted
};

// A transaction of C1 with its own event id and these members after the required ones.
std::string record(int id, const std::string& amount, const std::string& extra = "",
                   const std::string& customer = "\"C1\"") {
  return "{\"event_id\":\"e-" + std::to_string(id) + "\",\"customer_id\":" + customer +
         ",\"event_time\":\"2025-01-01T10:05:00Z\",\"event_type\":\"transaction\",\"amount\":" + amount +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string nested(std::size_t depth, const std::string& inner = "") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// The valid lines carry the amounts 0 to 7 (7 through an escaped key): 28 in all.
std::vector<Line> edge_lines() {
  const std::size_t mb = 1 << 20;
  return {
      {"\xEF\xBB\xBF" + record(1, "1"), ""},  // a byte order mark, as an editor writes it
      {record(2, "1e-99999999999999999999"), ""},
      {record(3, "2", "\"x\":1e99999999999999999999"), ""},
      {record(4, "3", "\"x\":" + nested(32, "{\"customer_id\":\"Z\"}")), ""},
      {record(5, "4", "\"x\":" + nested(200000)), ""},
      {record(6, "5", "\"note\":\"\\ud800\""), ""},
      {record(7, "6", "\"\\ud83d\":{\"amount\":-1,\"customer_id\":\"Z\"}"), ""},
      {R"({"event_id":"e-8","customer_id":"C1","event_time":"2025-01-01T10:05:00Z","event_type":"transaction","am\u006funt":7})",
       ""},
      {record(9, "1e99999999999999999999"), "bad_amount"},
      {record(10, "-1e-99999999999999999999"), "bad_amount"},
      {record(11, "1" + std::string(399, '0')), "bad_amount"},
      {record(12, "1", "\"am\\u006funt\":1,\"x\":" + nested(40)), "duplicate_field"},
      {record(13, "1", "\"x\":" + nested(40), "\"C\\ud800\""), "bad_type"},
      {std::string(mb, '['), "not_json"},
      {nested(mb / 2), "not_object"},
      {record(16, "1", std::string("\"s\":\"a") + '\0' + "b\""), "not_json"},
  };
}

boost::json::object summary_of(const Result& r) {
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  return boost::json::parse(r.out).as_object();
}

}  // namespace

BOOST_AUTO_TEST_CASE(replay_judges_every_json_record_by_the_contract) {
  TempDir dir("streamscore-fault-parser-");
  const std::vector<Line> lines = edge_lines();
  {
    std::ofstream log(dir / "events.jsonl", std::ios::binary);
    for (const Line& l : lines) log << l.text << '\n';
  }
  const Result r = run_cli(dir, "replay --json --events " + (dir / "events.jsonl") + " --state " + (dir / "s") +
                                    " --dead-letter " + (dir / "dl.jsonl"));
  const boost::json::object summary = summary_of(r);
  BOOST_TEST(summary.at("balanced").as_bool());
  BOOST_TEST(summary.at("read").as_int64() == static_cast<int64_t>(lines.size()));
  BOOST_TEST(summary.at("accepted").as_int64() == 8);
  BOOST_TEST(summary.at("dead_lettered").as_int64() == 8);
  const boost::json::object& by_reason = summary.at("dead_lettered_by_reason").as_object();
  BOOST_TEST(by_reason.at("not_json").as_int64() == 2);
  BOOST_TEST(by_reason.at("bad_amount").as_int64() == 3);

  // Each dead letter names its line and the reason expected for it.
  std::istringstream dead(slurp(dir / "dl.jsonl"));
  std::string entry;
  std::size_t next_bad = 0;
  while (std::getline(dead, entry)) {
    const boost::json::object e = boost::json::parse(entry).as_object();
    while (next_bad < lines.size() && lines[next_bad].reason.empty()) ++next_bad;
    BOOST_REQUIRE(next_bad < lines.size());
    const std::string source(e.at("source").as_string());
    BOOST_TEST(source.substr(source.rfind(':') + 1) == std::to_string(next_bad + 1));
    BOOST_TEST(std::string(e.at("reason").as_string()) == lines[next_bad].reason, source);
    ++next_bad;
  }
  while (next_bad < lines.size() && lines[next_bad].reason.empty()) ++next_bad;
  BOOST_TEST(next_bad == lines.size());

  // The accepted ones count, once each, for the top-level customer only.
  const std::string state = export_of(dir, dir / "s");
  BOOST_TEST(state.find("\"PK\":\"CUSTOMER#Z\"") == std::string::npos, state);
  BOOST_TEST(state.find("\"total_txn_30d\":8,\"total_amount_30d\":28,") != std::string::npos, state);
}
