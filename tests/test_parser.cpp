// Tests for the event parser (input contract, spec section 1), the text helpers in
// state/format.hpp and the dead-letter output.
#define BOOST_TEST_MODULE parser
#include <boost/test/unit_test.hpp>

#include <xxhash.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include <unistd.h>

#include "io/dead_letter.hpp"
#include "io/event_parser.hpp"
#include "state/format.hpp"

using namespace streamscore;

namespace {

// A record built from raw JSON value texts; std::nullopt leaves the field out.
struct Rec {
  std::optional<std::string> event_id = R"("e-1")";
  std::optional<std::string> customer_id = R"("C123")";
  std::optional<std::string> event_time = R"("2025-01-01T10:05:00Z")";
  std::optional<std::string> event_type = R"("transaction")";
  std::optional<std::string> amount = "120.50";
  std::string extra;  // appended members, e.g. R"("x":1)"

  std::string json() const {
    std::string out = "{";
    auto add = [&](const char* name, const std::optional<std::string>& v) {
      if (!v) return;
      if (out.size() > 1) out += ",";
      out += std::string("\"") + name + "\":" + *v;
    };
    add("event_id", event_id);
    add("customer_id", customer_id);
    add("event_time", event_time);
    add("event_type", event_type);
    add("amount", amount);
    if (!extra.empty()) out += (out.size() > 1 ? "," : "") + extra;
    return out + "}";
  }
};

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

struct Outcome {
  bool ok = false;
  ParsedEvent event;
  ParseFailure failure;
};

Outcome run(std::string_view line, int64_t max_event_ns = INT64_MAX) {
  EventParser parser;
  ParseOptions opts;
  opts.max_event_ns = max_event_ns;
  Outcome o;
  o.ok = parser.parse(line, opts, &o.event, &o.failure);
  return o;
}

Outcome run(const Rec& r) {
  return run(r.json());
}

// Checks that `line` is rejected with `reason` naming `field`.
void expect_reject(std::string_view line, Reason reason, std::string_view field, int64_t max_event_ns = INT64_MAX) {
  BOOST_TEST_CONTEXT("line: " << line) {
    const Outcome o = run(line, max_event_ns);
    BOOST_TEST(!o.ok);
    if (o.ok) return;
    BOOST_TEST(reason_name(o.failure.reason) == reason_name(reason));
    BOOST_TEST(o.failure.field == field);
    BOOST_TEST(!o.failure.detail.empty());
  }
}

void expect_reject(const Rec& r, Reason reason, std::string_view field) {
  expect_reject(r.json(), reason, field);
}

void expect_accept(std::string_view line) {
  BOOST_TEST_CONTEXT("line: " << line) {
    const Outcome o = run(line);
    BOOST_TEST(o.ok);
    if (!o.ok) BOOST_TEST_MESSAGE(reason_name(o.failure.reason) << ": " << o.failure.detail);
  }
}

std::optional<EventTime> time_of(std::string_view text) {
  EventTime t;
  if (!parse_event_time(text, &t)) return std::nullopt;
  return t;
}

std::string time_text(const EventTime& t) {
  std::string s;
  append_event_time(s, t);
  return s;
}

std::string cents_text(int64_t c) {
  std::string s;
  append_cents(s, c);
  return s;
}

std::string json_text(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string lossless_text(std::string_view s) {
  std::string out;
  append_json_string_lossless(out, s);
  return out;
}

// The string a JSON string literal decodes to (fails the test on invalid JSON).
std::string decode_json_string(const std::string& literal) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(literal, ec);
  BOOST_TEST_REQUIRE(!ec, "not valid JSON: " << literal);
  BOOST_TEST_REQUIRE(v.is_string());
  return std::string(v.get_string());
}

struct Amount {
  bool ok;
  int64_t cents;
  bool too_large;
};

Amount amount_of(std::string_view text) {
  Amount a{false, -999, false};
  a.ok = parse_amount_cents(text, &a.cents, &a.too_large);
  return a;
}

constexpr int64_t kJan1_2025_1005 = 1735725900;  // 2025-01-01T10:05:00Z

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(event_time)

BOOST_AUTO_TEST_CASE(parses_known_instants) {
  BOOST_TEST(time_of("1970-01-01T00:00:00Z")->ns == 0);
  BOOST_TEST(time_of("2025-01-01T10:05:00Z")->ns == kJan1_2025_1005 * kNanosPerSecond);
  BOOST_TEST(time_of("2025-01-01T10:05:00Z")->frac_digits == 0);
  BOOST_TEST(time_of("1969-12-31T23:59:59.5Z")->ns == -500'000'000);
  BOOST_TEST(time_of("1969-12-31T23:59:59.5Z")->frac_digits == 1);
  BOOST_TEST(time_of("2000-03-01T00:00:00Z")->ns == 951'868'800LL * kNanosPerSecond);
  BOOST_TEST(time_of("2025-01-01T10:05:00.123456789Z")->ns == kJan1_2025_1005 * kNanosPerSecond + 123'456'789);
  BOOST_TEST(time_of("2025-01-01T10:05:00.120Z")->ns == kJan1_2025_1005 * kNanosPerSecond + 120'000'000);
  BOOST_TEST(time_of("2025-01-01T10:05:00.120Z")->frac_digits == 3);
}

BOOST_AUTO_TEST_CASE(fraction_digits_1_to_9) {
  std::string frac;
  for (int d = 1; d <= 9; ++d) {
    frac += static_cast<char>('0' + d);
    const auto t = time_of("2025-06-30T23:59:59." + frac + "Z");
    BOOST_TEST_REQUIRE(t.has_value(), "digits " << d);
    BOOST_TEST(t->frac_digits == d);
  }
  BOOST_TEST(!time_of("2025-06-30T23:59:59.1234567890Z"));
  BOOST_TEST(!time_of("2025-06-30T23:59:59.Z"));
}

BOOST_AUTO_TEST_CASE(calendar_rules) {
  BOOST_TEST(time_of("2024-02-29T00:00:00Z").has_value());
  BOOST_TEST(time_of("2000-02-29T00:00:00Z").has_value());
  BOOST_TEST(!time_of("2025-02-29T00:00:00Z"));
  BOOST_TEST(!time_of("2100-02-29T00:00:00Z"));
  BOOST_TEST(!time_of("2025-04-31T00:00:00Z"));
  BOOST_TEST(time_of("2025-12-31T00:00:00Z").has_value());
  BOOST_TEST(!time_of("2025-13-01T00:00:00Z"));
  BOOST_TEST(!time_of("2025-00-10T00:00:00Z"));
  BOOST_TEST(!time_of("2025-01-00T00:00:00Z"));
  BOOST_TEST(!time_of("2025-01-32T00:00:00Z"));
  BOOST_TEST(time_of("2025-01-01T23:59:59Z").has_value());
  BOOST_TEST(!time_of("2025-01-01T24:00:00Z"));
  BOOST_TEST(!time_of("2025-01-01T23:60:00Z"));
  BOOST_TEST(!time_of("2025-12-31T23:59:60Z"));  // no leap seconds
}

BOOST_AUTO_TEST_CASE(strict_shape) {
  for (const char* bad : {"2025-01-01T10:05:00z",      "2025-01-01t10:05:00Z",    "2025-01-01 10:05:00Z",
                          "2025-01-01T10:05:00+00:00", "2025-01-01T10:05:00",     "2025-01-01",
                          "2025-1-01T10:05:00Z",       "2025-01-01T10:05Z",       "25-01-01T10:05:00Z",
                          "02025-01-01T10:05:00Z",     " 2025-01-01T10:05:00Z",   "2025-01-01T10:05:00Z ",
                          "2025-01-01T10:05:00ZZ",     "2025-01-01T10:05:00.5",   "2025-01-01T10:05:00,5Z",
                          "20a5-01-01T10:05:00Z",      "2025-01-01T10:05:00.5Z0", "2025/01/01T10:05:00Z",
                          "2025-01-01T10:05:00.-5Z",   "+2025-01-01T10:05:00Z",   ""}) {
    BOOST_TEST(!time_of(bad), "accepted: " << bad);
  }
}

BOOST_AUTO_TEST_CASE(year_range_fits_int64_nanos) {
  BOOST_TEST(!time_of("1677-12-31T23:59:59Z"));
  BOOST_TEST(time_of("1678-01-01T00:00:00Z").has_value());
  BOOST_TEST(time_of("2261-12-31T23:59:59.999999999Z").has_value());
  BOOST_TEST(!time_of("2262-01-01T00:00:00Z"));
  BOOST_TEST(!time_of("9999-01-01T00:00:00Z"));
  BOOST_TEST(!time_of("0000-01-01T00:00:00Z"));
  BOOST_TEST(time_of("1678-01-01T00:00:00Z")->ns < 0);
  BOOST_TEST(time_of("2261-12-31T23:59:59.999999999Z")->ns > 0);
}

BOOST_AUTO_TEST_CASE(why_message_for_failures) {
  EventTime t;
  std::string_view why;
  BOOST_TEST(!parse_event_time("2025-13-01T00:00:00Z", &t, &why));
  BOOST_TEST(why.find("month") != std::string_view::npos);
  BOOST_TEST(!parse_event_time("2025-02-29T00:00:00Z", &t, &why));
  BOOST_TEST(why.find("day") != std::string_view::npos);
  BOOST_TEST(!parse_event_time("2025-01-01T10:05:00.1234567890Z", &t, &why));
  BOOST_TEST(why.find("9 digits") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(round_trips_text) {
  for (const char* s : {"2025-01-01T10:05:00Z", "2025-01-01T10:05:00.5Z", "2025-01-01T10:05:00.50Z",
                        "2025-01-01T10:05:00.000Z", "2025-01-01T10:05:00.000000001Z", "2025-01-01T10:05:00.123456789Z",
                        "1969-12-31T23:59:59.9Z", "1678-01-01T00:00:00.000000001Z", "2261-12-31T23:59:59.999999999Z",
                        "2024-02-29T12:34:56.7890Z", "1900-03-01T00:00:00Z"}) {
    const auto t = time_of(s);
    BOOST_TEST_REQUIRE(t.has_value(), s);
    BOOST_TEST(time_text(*t) == s);
  }
}

BOOST_AUTO_TEST_CASE(round_trips_random_instants) {
  std::mt19937_64 rng(42);
  const int64_t lo = time_of("1678-01-01T00:00:00Z")->ns;
  const int64_t hi = time_of("2261-12-31T23:59:59.999999999Z")->ns;
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  int64_t scale[10] = {1'000'000'000, 100'000'000, 10'000'000, 1'000'000, 100'000, 10'000, 1'000, 100, 10, 1};
  for (int i = 0; i < 20000; ++i) {
    EventTime t;
    t.frac_digits = static_cast<uint8_t>(i % 10);
    t.ns = floor_div(dist(rng), scale[t.frac_digits]) * scale[t.frac_digits];
    if (t.ns < lo) t.ns += scale[t.frac_digits];
    const std::string text = time_text(t);
    const auto back = time_of(text);
    BOOST_TEST_REQUIRE(back.has_value(), text);
    BOOST_TEST_REQUIRE((*back == t), text);
  }
}

BOOST_AUTO_TEST_CASE(instant_seconds) {
  auto text = [](int64_t s) {
    std::string out;
    append_instant_seconds(out, s);
    return out;
  };
  BOOST_TEST(text(0) == "1970-01-01T00:00:00Z");
  BOOST_TEST(text(kJan1_2025_1005) == "2025-01-01T10:05:00Z");
  BOOST_TEST(text(-1) == "1969-12-31T23:59:59Z");
  BOOST_TEST(text(951'782'400) == "2000-02-29T00:00:00Z");
  BOOST_TEST(text(5'911'200 * 300) == "2026-03-13T00:00:00Z");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(money)

BOOST_AUTO_TEST_CASE(append_cents_shortest_exact) {
  BOOST_TEST(cents_text(84250) == "842.5");
  BOOST_TEST(cents_text(84200) == "842");
  BOOST_TEST(cents_text(1) == "0.01");
  BOOST_TEST(cents_text(10) == "0.1");
  BOOST_TEST(cents_text(0) == "0");
  BOOST_TEST(cents_text(7021) == "70.21");
  BOOST_TEST(cents_text(100) == "1");
  BOOST_TEST(cents_text(12050) == "120.5");
  BOOST_TEST(cents_text(-150) == "-1.5");
  BOOST_TEST(cents_text(-1) == "-0.01");
  BOOST_TEST(cents_text(kMaxAmountCents) == "1000000000");
  BOOST_TEST(cents_text(INT64_MAX) == "92233720368547758.07");
  BOOST_TEST(cents_text(INT64_MIN) == "-92233720368547758.08");
}

BOOST_AUTO_TEST_CASE(amount_rounding) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},
      {"-0", 0},
      {"-0.0", 0},
      {"0.005", 1},
      {"0.004", 0},
      {"0.0049999", 0},
      {"0.015", 2},
      {"1.005", 101},
      {"120.50", 12050},
      {"120.5", 12050},
      {"1e2", 10000},
      {"1E2", 10000},
      {"1e+2", 10000},
      {"1.2345e2", 12345},
      {"5e-3", 1},
      {"4.9e-3", 0},
      {"-1.5", -150},
      {"-0.005", -1},
      {"-1.004", -100},
      {"999.999", 100000},
      {"12345e-5", 12},
      {"0.125", 13},
      {"42", 4200},
      {"0e999999999999", 0},
      {"1e-400", 0},
      {"1000000000", kMaxAmountCents},
      {"1000000000.004", kMaxAmountCents},
      {"100000000000000000000000e-20", 100000},
      {"1.00000000000000000000000000000000000000000", 100},
      {"0.0000000000000000000000000000000000000000051", 0},
      {"0.00500000000000000000000000000000000000000000", 1},
  };
  for (const auto& [text, cents] : cases) {
    const Amount a = amount_of(text);
    BOOST_TEST(a.ok, text);
    BOOST_TEST(!a.too_large, text);
    BOOST_TEST(a.cents == cents, text);
  }
}

BOOST_AUTO_TEST_CASE(amount_too_large) {
  for (const char* text : {"1000000000.005", "1000000000.01", "1e400", "-1e400", "1e9999999999999999999999",
                           "123456789012345678901234567890", "10000000000", "1e12", "99999999999999"}) {
    const Amount a = amount_of(text);
    BOOST_TEST(a.ok, text);
    BOOST_TEST(a.too_large, text);
  }
}

BOOST_AUTO_TEST_CASE(amount_grammar) {
  for (const char* text : {"",   "-",  "01",   "-01", "1.",       ".5",  "1e",    "1e+",   "+1",    "1.5x",
                           " 1", "1 ", "0x10", "NaN", "Infinity", "--1", "1.2.3", "1e5.5", "\"1\"", "true"}) {
    BOOST_TEST(!amount_of(text).ok, "accepted: " << text);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(json_strings)

BOOST_AUTO_TEST_CASE(escapes) {
  BOOST_TEST(json_text("abc") == R"("abc")");
  BOOST_TEST(json_text("") == R"("")");
  BOOST_TEST(json_text("a\"b\\c") == R"("a\"b\\c")");
  BOOST_TEST(json_text("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  BOOST_TEST(json_text(std::string_view("\x01\x1f\0", 3)) == R"("\u0001\u001f\u0000")");
  BOOST_TEST(json_text("caf\xc3\xa9 /") == "\"caf\xc3\xa9 /\"");
}

BOOST_AUTO_TEST_CASE(escaped_strings_decode_back) {
  const std::string samples[] = {"plain",           "quote\" backslash\\ slash/",         std::string("nul\0x", 5),
                                 "ctl\x01\x02\x7f", "utf8 \xe2\x82\xac \xf0\x9f\x98\x80", "CUSTOMER#C123"};
  for (const std::string& s : samples) {
    BOOST_TEST(decode_json_string(json_text(s)) == s);
    BOOST_TEST(decode_json_string(lossless_text(s)) == s);  // valid UTF-8: identical
  }
}

BOOST_AUTO_TEST_CASE(lossless_escapes_invalid_bytes) {
  BOOST_TEST(lossless_text("a\xff"
                           "b") == R"("a\u00ffb")");
  BOOST_TEST(lossless_text("\xe2\x82") == R"("\u00e2\u0082")");                      // truncated sequence
  BOOST_TEST(lossless_text("\xc0\xaf") == R"("\u00c0\u00af")");                      // overlong
  BOOST_TEST(lossless_text("\xed\xa0\x80") == R"("\u00ed\u00a0\u0080")");            // surrogate
  BOOST_TEST(lossless_text("\xf4\x90\x80\x80") == R"("\u00f4\u0090\u0080\u0080")");  // > U+10FFFF
  BOOST_TEST(lossless_text("\xe2\x82\xac") == "\"\xe2\x82\xac\"");                   // valid: copied
  BOOST_TEST(lossless_text("\x80\xe2\x82\xac\"") == "\"\\u0080\xe2\x82\xac\\\"\"");
  // Always valid JSON, whatever the bytes.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string raw(static_cast<size_t>(rng() % 40), '\0');
    for (char& c : raw) c = static_cast<char>(rng());
    decode_json_string(lossless_text(raw));
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parser)

BOOST_AUTO_TEST_CASE(accepts_spec_example) {
  const Outcome o = run(
      R"({"event_id":"e-1","customer_id":"C123","event_time":"2025-01-01T10:05:00Z","event_type":"transaction","amount":120.50})");
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(o.event.customer_id == "C123");
  BOOST_TEST(o.event.time.ns == kJan1_2025_1005 * kNanosPerSecond);
  BOOST_TEST(o.event.time.frac_digits == 0);
  BOOST_TEST(o.event.cents == 12050);
  BOOST_TEST(o.event.is_transaction);
  BOOST_TEST(o.event.customer_hash == XXH3_64bits("C123", 4));
  BOOST_TEST((o.event.key == dedup_key("C123", "e-1")));
  BOOST_TEST(o.event.fingerprint == event_fingerprint(o.event.time, "transaction", 12050));
  // The pair is length-prefixed: ("C1", "23") and ("C12", "3") are different ids.
  BOOST_TEST(!(dedup_key("C1", "23") == dedup_key("C12", "3")));
}

BOOST_AUTO_TEST_CASE(other_event_types_accepted) {
  Rec r;
  r.event_type = R"("login")";
  r.amount = "0";
  const Outcome o = run(r);
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(!o.event.is_transaction);
  r.event_type = R"("Transaction")";  // exact match only
  BOOST_TEST(!run(r).event.is_transaction);
}

BOOST_AUTO_TEST_CASE(whitespace_and_key_order) {
  expect_accept(
      " \t{ \"amount\" : 1 , \"event_type\":\"refund\",\"event_time\":\"2025-01-01T10:05:00Z\","
      "\"customer_id\":\"C\",\"event_id\":\"e\" }\r\n ");
}

BOOST_AUTO_TEST_CASE(not_json) {
  const std::string good = Rec().json();
  for (const std::string& line :
       {good.substr(0, good.size() - 1), std::string(R"({"event_id":"e-1")"), std::string(""), std::string("   "),
        good + " x", good + "{}", good + ",", std::string("{'event_id':'e'}"), std::string(R"({"event_id":"e-1",})"),
        std::string(R"({"a":NaN})"), std::string("{\"a\":1 /* c */}"), std::string(R"({"a":01})"), std::string("nul"),
        std::string("{\"a\":\"\n\"}")}) {
    expect_reject(line, Reason::not_json, "");
  }
}

BOOST_AUTO_TEST_CASE(not_json_invalid_utf8) {
  Rec r;
  r.event_id = "\"e\xff\"";
  expect_reject(r, Reason::not_json, "");
  Rec extra;
  extra.extra = "\"note\":\"\xc0\xaf\"";  // overlong, in an ignored field: still not JSON
  expect_reject(extra, Reason::not_json, "");
  BOOST_TEST(run(r).failure.detail == "invalid UTF-8");
  BOOST_TEST(is_valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  BOOST_TEST(!is_valid_utf8("\xed\xa0\x80"));
  BOOST_TEST(!is_valid_utf8("\xe2\x82"));
  Rec ok;
  ok.customer_id = "\"caf\xc3\xa9\"";
  expect_accept(ok.json());
}

BOOST_AUTO_TEST_CASE(not_object) {
  for (const char* line : {"[1]", "\"x\"", "5", "null", "true", "[]", "[{\"event_id\":\"e\"}]", " 1.5 "}) {
    expect_reject(line, Reason::not_object, "");
  }
}

BOOST_AUTO_TEST_CASE(duplicate_field) {
  Rec r;
  r.extra = R"("event_id":"e-2")";
  expect_reject(r, Reason::duplicate_field, "event_id");
  r.extra = R"("amount":1)";
  expect_reject(r, Reason::duplicate_field, "amount");
  r.extra = R"("amount":120.50)";  // same value twice is still a duplicate
  expect_reject(r, Reason::duplicate_field, "amount");
  Rec missing;  // duplicates are checked before missing fields
  missing.customer_id.reset();
  missing.extra = R"("event_type":"x")";
  expect_reject(missing, Reason::duplicate_field, "event_type");
  Rec escaped;  // a key is compared after unescaping
  escaped.extra = R"("event\u005fid":"e-2")";
  expect_reject(escaped, Reason::duplicate_field, "event_id");
}

BOOST_AUTO_TEST_CASE(duplicate_ignored_keys_are_fine) {
  Rec r;
  r.extra = R"("x":1,"x":2,"nested":{"event_id":"a","event_id":"b"},"arr":[{"amount":1},{"amount":2}])";
  expect_accept(r.json());
}

BOOST_AUTO_TEST_CASE(missing_each_field) {
  const std::pair<std::optional<std::string> Rec::*, const char*> fields[] = {{&Rec::event_id, "event_id"},
                                                                              {&Rec::customer_id, "customer_id"},
                                                                              {&Rec::event_time, "event_time"},
                                                                              {&Rec::event_type, "event_type"},
                                                                              {&Rec::amount, "amount"}};
  for (const auto& [member, name] : fields) {
    Rec r;
    (r.*member).reset();
    expect_reject(r, Reason::missing_field, name);
  }
  expect_reject("{}", Reason::missing_field, "event_id");
}

BOOST_AUTO_TEST_CASE(field_order_first_failure_wins) {
  Rec r;
  r.event_id = "1";
  r.customer_id.reset();
  r.amount = "\"x\"";
  expect_reject(r, Reason::bad_type, "event_id");
  Rec t;
  t.event_time = R"("2025-02-29T00:00:00Z")";
  t.amount = "-1";
  expect_reject(t, Reason::bad_time, "event_time");
  Rec c;
  c.customer_id = R"("")";
  c.event_type = "null";
  expect_reject(c, Reason::empty_field, "customer_id");
  Rec a;  // amount is checked before future
  a.amount = "-5";
  expect_reject(a.json(), Reason::bad_amount, "amount", 0);
}

BOOST_AUTO_TEST_CASE(bad_type) {
  const std::pair<std::optional<std::string> Rec::*, const char*> fields[] = {{&Rec::event_id, "event_id"},
                                                                              {&Rec::customer_id, "customer_id"},
                                                                              {&Rec::event_time, "event_time"},
                                                                              {&Rec::event_type, "event_type"}};
  for (const auto& [member, name] : fields) {
    for (const char* value : {"1", "null", "true", "{}", "[\"a\"]", "1.5"}) {
      Rec r;
      r.*member = value;
      expect_reject(r, Reason::bad_type, name);
    }
  }
  for (const char* value : {"\"120.50\"", "true", "false", "null", "{}", "[1]"}) {
    Rec r;
    r.amount = value;
    expect_reject(r, Reason::bad_type, "amount");
  }
  Rec r;
  r.event_id = "42";
  const Outcome o = run(r);
  BOOST_TEST(o.failure.detail == "expected string, got number");
  Rec s;
  s.amount = "\"1\"";
  BOOST_TEST(run(s).failure.detail == "expected number, got string");
}

BOOST_AUTO_TEST_CASE(empty_field) {
  Rec r;
  r.event_id = R"("")";
  expect_reject(r, Reason::empty_field, "event_id");
  r = Rec();
  r.customer_id = R"("")";
  expect_reject(r, Reason::empty_field, "customer_id");
  r = Rec();
  r.event_type = R"("")";
  expect_reject(r, Reason::empty_field, "event_type");
  r = Rec();
  r.event_time = R"("")";  // not an id: an empty time is a bad time
  expect_reject(r, Reason::bad_time, "event_time");
}

BOOST_AUTO_TEST_CASE(too_long_boundaries) {
  Rec r;
  r.event_id = in_quotes(std::string(128, 'e'));
  expect_accept(r.json());
  r.event_id = in_quotes(std::string(129, 'e'));
  expect_reject(r, Reason::too_long, "event_id");
  r = Rec();
  r.customer_id = in_quotes(std::string(64, 'c'));
  expect_accept(r.json());
  r.customer_id = in_quotes(std::string(65, 'c'));
  expect_reject(r, Reason::too_long, "customer_id");
  // Length counts unescaped bytes: 64 escaped characters are 64 bytes, not 384.
  std::string escaped;
  for (int i = 0; i < 64; ++i) escaped += "\\u0041";
  r.customer_id = in_quotes(escaped);
  const Outcome o = run(r);
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(o.event.customer_id == std::string(64, 'A'));
  r.customer_id = in_quotes(escaped + "\\u0041");
  expect_reject(r, Reason::too_long, "customer_id");
  // Multi-byte UTF-8 counts bytes: 32 x "é" = 64 bytes ok, 33 = 66 bytes too long.
  std::string e_acute;
  for (int i = 0; i < 32; ++i) e_acute += "\xc3\xa9";
  r.customer_id = in_quotes(e_acute);
  expect_accept(r.json());
  r.customer_id = in_quotes(e_acute + "\xc3\xa9");
  expect_reject(r, Reason::too_long, "customer_id");
}

BOOST_AUTO_TEST_CASE(bad_time) {
  for (const char* t :
       {"2025-02-29T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T10:05:00z", "2025-01-01T10:05:00+00:00",
        "2025-01-01", "2025-01-01T10:05:00.1234567890Z", "2025-13-01T10:05:00Z", "1500-01-01T00:00:00Z", "yesterday"}) {
    Rec r;
    r.event_time = in_quotes(t);
    expect_reject(r, Reason::bad_time, "event_time");
  }
  for (const char* t : {"2024-02-29T00:00:00Z", "2025-01-01T10:05:00.1Z", "2025-01-01T10:05:00.123456789Z"}) {
    Rec r;
    r.event_time = in_quotes(t);
    expect_accept(r.json());
  }
  Rec esc;  // escapes are resolved before the time is checked
  esc.event_time = R"("2025-01-01T10:05:00\u005A")";
  const Outcome o = run(esc);
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(o.event.time.ns == kJan1_2025_1005 * kNanosPerSecond);
  Rec frac;
  frac.event_time = R"("2025-01-01T10:05:00.250Z")";
  const Outcome f = run(frac);
  BOOST_TEST_REQUIRE(f.ok);
  BOOST_TEST(f.event.time.frac_digits == 3);
  BOOST_TEST(time_text(f.event.time) == "2025-01-01T10:05:00.250Z");
}

BOOST_AUTO_TEST_CASE(bad_amount) {
  for (const char* a : {"-1", "-0.01", "-0.001", "-120.50", "1e400", "-1e400", "1000000000.01", "1000000000.005",
                        "123456789012345678901234567890"}) {
    Rec r;
    r.amount = a;
    expect_reject(r, Reason::bad_amount, "amount");
  }
  for (const char* a : {"-0", "-0.0", "0", "-0e10", "0.004", "1000000000", "1000000000.004", "1e-400"}) {
    Rec r;
    r.amount = a;
    BOOST_TEST_CONTEXT("amount " << a) {
      const Outcome o = run(r);
      BOOST_TEST(o.ok);
    }
  }
  Rec neg_zero;
  neg_zero.amount = "-0";
  BOOST_TEST(run(neg_zero).event.cents == 0);
}

BOOST_AUTO_TEST_CASE(amount_rounding_through_parser) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0.005", 1},   {"1.005", 101},      {"120.50", 12050},
      {"1e2", 10000}, {"1.2345e2", 12345}, {"5e-3", 1},
      {"4.9e-3", 0},  {"7", 700},          {"18446744073709551615e-15", 1844674}};
  for (const auto& [text, cents] : cases) {
    Rec r;
    r.amount = text;
    const Outcome o = run(r);
    BOOST_TEST_REQUIRE(o.ok, text);
    BOOST_TEST(o.event.cents == cents, text);
  }
}

BOOST_AUTO_TEST_CASE(future) {
  const int64_t ns = kJan1_2025_1005 * kNanosPerSecond;
  expect_reject(Rec().json(), Reason::future, "event_time", ns - 1);
  const Outcome o = run(Rec().json(), ns);
  BOOST_TEST(o.ok);
}

BOOST_AUTO_TEST_CASE(extra_fields_ignored) {
  Rec r;
  r.extra = R"("meta":{"event_id":1,"amount":"x","deep":[{"customer_id":null}]},"tags":["a",1,null,true],)"
            R"("amount2":"nope","Event_id":5,"s":"esc\"aped\\ \u00e9","n":-1e400,"big":123456789012345678901234567890)";
  const Outcome o = run(r);
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(o.event.customer_id == "C123");
  BOOST_TEST(o.event.cents == 12050);
  // Extra members before the required ones as well.
  expect_accept(R"({"x":{"amount":-1},"event_id":"e","customer_id":"c","event_time":"2025-01-01T00:00:00Z",)"
                R"("event_type":"t","amount":2})");
}

BOOST_AUTO_TEST_CASE(escaped_strings) {
  Rec plain;
  plain.customer_id = R"("C1")";
  Rec escaped;
  escaped.customer_id = R"("C\u0031")";
  const Outcome a = run(plain);
  const Outcome b = run(escaped);
  BOOST_TEST_REQUIRE(a.ok);
  BOOST_TEST_REQUIRE(b.ok);
  BOOST_TEST(b.event.customer_id == "C1");
  BOOST_TEST(a.event.customer_hash == b.event.customer_hash);
  BOOST_TEST((a.event.key == b.event.key));
  Rec quote;
  quote.customer_id = R"("a\"b\\c\n\ud83d\ude00")";
  const Outcome q = run(quote);
  BOOST_TEST_REQUIRE(q.ok);
  BOOST_TEST(q.event.customer_id == "a\"b\\c\n\xf0\x9f\x98\x80");
  Rec key;  // escaped key names still count
  key.event_id.reset();
  key.extra = R"("\u0065vent_id":"e-1")";
  const Outcome k = run(key);
  BOOST_TEST_REQUIRE(k.ok);
  BOOST_TEST((k.event.key == run(Rec()).event.key));
  // A long escaped string (delivered in parts) in a required and in an ignored field.
  std::string long_id;
  for (int i = 0; i < 128; ++i) long_id += "\\u0078";
  Rec parts;
  parts.event_id = in_quotes(long_id);
  parts.extra = "\"note\":\"" + std::string(5000, 'n') + "\\n" + std::string(5000, 'm') + "\"";
  const Outcome p = run(parts);
  BOOST_TEST_REQUIRE(p.ok);
  Rec same;
  same.event_id = in_quotes(std::string(128, 'x'));
  BOOST_TEST((p.event.key == run(same).event.key));
  // A long event_type with an escape in the middle arrives in several parts.
  Rec long_type;
  long_type.event_type = in_quotes(std::string(5000, 't') + "\\u0041" + std::string(5000, 'u'));
  Rec plain_type;
  plain_type.event_type = in_quotes(std::string(5000, 't') + "A" + std::string(5000, 'u'));
  const Outcome lt = run(long_type);
  BOOST_TEST_REQUIRE(lt.ok);
  BOOST_TEST(lt.event.fingerprint == run(plain_type).event.fingerprint);
  Rec long_event;
  long_event.event_id = in_quotes(std::string(5000, 'i') + "\\n");
  const Outcome li = run(long_event);
  BOOST_TEST(!li.ok);
  BOOST_TEST(li.failure.detail == "5001 bytes, at most 128");
}

BOOST_AUTO_TEST_CASE(key_and_fingerprint) {
  Rec base;
  const ParsedEvent e = run(base).event;

  Rec later;  // same event_id and customer, different content
  later.event_time = R"("2025-01-02T00:00:00Z")";
  const ParsedEvent l = run(later).event;
  BOOST_TEST((l.key == e.key));
  BOOST_TEST(l.fingerprint != e.fingerprint);

  Rec other_customer;
  other_customer.customer_id = R"("C124")";
  BOOST_TEST(!(run(other_customer).event.key == e.key));

  Rec other_id;
  other_id.event_id = R"("e-2")";
  BOOST_TEST(!(run(other_id).event.key == e.key));

  Rec other_amount;
  other_amount.amount = "120.51";
  const ParsedEvent a = run(other_amount).event;
  BOOST_TEST((a.key == e.key));
  BOOST_TEST(a.fingerprint != e.fingerprint);

  for (const char* same : {"120.5", "120.50", "1.205e2", "12050e-2", "120.500000"}) {
    Rec r;
    r.amount = same;
    BOOST_TEST(run(r).event.fingerprint == e.fingerprint, same);
  }

  Rec other_type;
  other_type.event_type = R"("refund")";
  BOOST_TEST(run(other_type).event.fingerprint != e.fingerprint);

  Rec same_instant;  // same instant, other spelling: it would show in last_event_time
  same_instant.event_time = R"("2025-01-01T10:05:00.000Z")";
  BOOST_TEST(run(same_instant).event.fingerprint != e.fingerprint);

  Rec extra;  // extra fields do not matter
  extra.extra = R"("session":"s-9")";
  BOOST_TEST(run(extra).event.fingerprint == e.fingerprint);
}

BOOST_AUTO_TEST_CASE(parser_is_reusable) {
  EventParser parser;
  ParseOptions opts;
  ParsedEvent ev;
  ParseFailure f;
  Rec full;
  Rec no_amount;
  no_amount.amount.reset();
  Rec short_id;
  short_id.event_id = R"("e")";
  ev.record_index = 77;
  for (int round = 0; round < 3; ++round) {
    BOOST_TEST(parser.parse(full.json(), opts, &ev, &f));
    BOOST_TEST(ev.record_index == 77u);  // left to the caller
    BOOST_TEST(!parser.parse(no_amount.json(), opts, &ev, &f));
    BOOST_TEST(f.field == "amount");
    BOOST_TEST(!parser.parse("{\"event_id\":", opts, &ev, &f));
    BOOST_TEST(reason_name(f.reason) == "not_json");
    BOOST_TEST(f.field.empty());
    BOOST_TEST(parser.parse(short_id.json(), opts, &ev, &f));
    BOOST_TEST(ev.key.lo == dedup_key(ev.customer_id, "e").lo);
    BOOST_TEST(!parser.parse("[1]", opts, &ev, &f));
    BOOST_TEST(reason_name(f.reason) == "not_object");
  }
  EventParser moved = std::move(parser);
  BOOST_TEST(moved.parse(full.json(), opts, &ev, &f));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// A record that is JSON is never not_json, whatever Boost.JSON's own limits (nesting
// depth, exponents beyond int, lone surrogate escapes): contract section 1.
BOOST_AUTO_TEST_SUITE(parser_edges)

std::string nested_arrays(std::size_t depth, std::string_view inner = "") {
  return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

// `value` as an ignored member at nesting depth 1 + `depth`.
std::string with_extra_at_depth(std::string_view value, std::size_t depth) {
  Rec r;
  r.extra = "\"x\":" + nested_arrays(depth, value);
  return r.json();
}

Outcome with_amount(const std::string& amount) {
  Rec r;
  r.amount = amount;
  return run(r);
}

BOOST_AUTO_TEST_CASE(huge_and_tiny_exponents_are_numbers) {
  for (const char* a : {"1e99999999999999999999", "1E400", "1e2147483648", "-1e99999999999999999999",
                        "-1e-99999999999999999999", "-0.5e-2147483649", "1.5e+99999999999999999999"}) {
    BOOST_TEST_CONTEXT("amount " << a) {
      const Outcome o = with_amount(a);
      BOOST_TEST(!o.ok);
      BOOST_TEST(reason_name(o.failure.reason) == "bad_amount");
      BOOST_TEST(o.failure.field == "amount");
    }
  }
  // Zero whatever the exponent, and magnitudes that round to 0 cents (section 3).
  for (const char* a : {"0e99999999999999999999", "-0e99999999999999999999", "1e-99999999999999999999", "1e-400",
                        "0E-2147483649", "-0", "-0.0E+0"}) {
    BOOST_TEST_CONTEXT("amount " << a) {
      const Outcome o = with_amount(a);
      BOOST_TEST_REQUIRE(o.ok);
      BOOST_TEST(o.event.cents == 0);
    }
  }
  // Exact whatever the spelling: 120.50 as 1205 followed by 400 zeros, times 10^-401.
  const Outcome spelled = with_amount("1205" + std::string(400, '0') + "e-401");
  BOOST_TEST_REQUIRE(spelled.ok);
  BOOST_TEST(spelled.event.cents == 12050);
}

BOOST_AUTO_TEST_CASE(long_numbers_are_numbers) {
  const std::string digits400 = "1" + std::string(399, '0');
  BOOST_TEST(reason_name(with_amount(digits400).failure.reason) == "bad_amount");
  const Outcome tiny = with_amount("0." + std::string(400, '0') + "1");
  BOOST_TEST_REQUIRE(tiny.ok);
  BOOST_TEST(tiny.event.cents == 0);
  const Outcome exact = with_amount("12.345" + std::string(400, '0'));
  BOOST_TEST_REQUIRE(exact.ok);
  BOOST_TEST(exact.event.cents == 1235);
}

BOOST_AUTO_TEST_CASE(numbers_in_ignored_fields_are_ignored) {
  for (const char* n :
       {"1e99999999999999999999", "-1e-99999999999999999999", "1E400", "-0", "[1e2147483648,{\"y\":-1e-2147483649}]"}) {
    Rec r;
    r.extra = std::string("\"n\":") + n;
    expect_accept(r.json());
  }
  expect_accept(with_extra_at_depth("1e99999999999999999999", 3));
}

BOOST_AUTO_TEST_CASE(deep_ignored_fields_are_ignored) {
  for (std::size_t depth : {31, 32, 33, 100, 10000, 500000}) {
    BOOST_TEST_CONTEXT("depth " << depth) {
      const Outcome o = run(with_extra_at_depth("{\"customer_id\":\"Z\",\"amount\":-1}", depth));
      BOOST_TEST_REQUIRE(o.ok);
      BOOST_TEST(o.event.customer_id == "C123");  // the nested one is not the record's
      BOOST_TEST(o.event.cents == 12050);
    }
  }
  std::string objects;  // {"a":{"a":...{}...}}
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "{}" + std::string(100000, '}');
  Rec r;
  r.extra = "\"deep\":" + objects + ",\"after\":[" + objects + "]";
  expect_accept(r.json());
}

BOOST_AUTO_TEST_CASE(deep_records_keep_the_checks_and_their_order) {
  // Past Boost.JSON's depth the same rules apply to the top-level members.
  Rec nested_only;
  nested_only.customer_id.reset();
  nested_only.extra = "\"x\":" + nested_arrays(40, R"({"customer_id":"Z"})");
  expect_reject(nested_only, Reason::missing_field, "customer_id");
  Rec dup;
  dup.extra = "\"am\\u006funt\":1,\"x\":" + nested_arrays(40);
  expect_reject(dup, Reason::duplicate_field, "amount");
  Rec escaped_key;
  escaped_key.event_id.reset();
  escaped_key.extra = "\"\\u0065vent_id\":\"e-1\",\"x\":" + nested_arrays(40);
  const Outcome k = run(escaped_key);
  BOOST_TEST_REQUIRE(k.ok);
  BOOST_TEST((k.event.key == run(Rec()).event.key));
  Rec typed;
  typed.amount = "\"5\"";
  typed.extra = "\"x\":" + nested_arrays(40);
  expect_reject(typed, Reason::bad_type, "amount");
  Rec id;
  id.customer_id = R"("C\u0031\n\ud83d\ude00")";
  id.extra = "\"x\":" + nested_arrays(40);
  const Outcome i = run(id);
  BOOST_TEST_REQUIRE(i.ok);
  BOOST_TEST(i.event.customer_id == "C1\n\xf0\x9f\x98\x80");
  expect_reject(nested_arrays(40), Reason::not_object, "");
  expect_reject("{\"a\":" + nested_arrays(40) + "} x", Reason::not_json, "");
}

BOOST_AUTO_TEST_CASE(hostile_nesting_is_not_json_without_exhausting_the_stack) {
  const std::size_t mb = 1 << 20;
  for (const std::string& line :
       {std::string(mb, '['), std::string(mb, '{'), "{\"x\":" + std::string(mb, '['),
        std::string(mb / 2, '[') + std::string(mb / 2 - 1, ']') + "}", "{\"a\":" + nested_arrays(mb / 4) + "]"}) {
    expect_reject(line, Reason::not_json, "");
  }
  expect_reject(nested_arrays(mb / 2), Reason::not_object, "");
}

// Any value is valid JSON at depth 40 exactly when it is at depth 2: the same verdict
// from both ways the parser reads a record.
BOOST_AUTO_TEST_CASE(same_verdict_at_any_depth) {
  const char* valid[] = {"1",
                         "-0",
                         "0.5e-3",
                         "\"s\"",
                         "\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\"",
                         "{}",
                         "[]",
                         "{\"a\":1,\"a\":[true,false,null]}",
                         " [ 1 , { \"k\" : \"v\" } ] ",
                         "\"\xc3\xa9\"",
                         "1E+2",
                         "[\"a\",\"\"]"};
  const char* invalid[] = {"01",   "1.",    ".5",        "-",        "+1",         "1e",        "1e+",         "0x1",
                           "[1,]", "[1 2]", "{\"a\"}",   "{\"a\":}", "{\"a\":1,}", "{1:2}",     "{\"a\" 1}",   "\"a",
                           "tru",  "nul",   "True",      "NaN",      "\"\\x\"",    "\"\\u12\"", "\"\\u12G4\"", "\"\t\"",
                           "[",    "]",     "{\"a\":1]", "[1}",      "1 2",        "'a'",       "/* c */ 1",   "\"\\\"",
                           "{,}",  "[,1]",  "-01",       "1.e2",     "\x0c"};
  for (const char* v : valid) {
    BOOST_TEST_CONTEXT("valid value " << v) {
      expect_accept(with_extra_at_depth(v, 1));
      expect_accept(with_extra_at_depth(v, 40));
    }
  }
  for (const char* v : invalid) {
    BOOST_TEST_CONTEXT("invalid value " << v) {
      expect_reject(with_extra_at_depth(v, 1), Reason::not_json, "");
      expect_reject(with_extra_at_depth(v, 40), Reason::not_json, "");
    }
  }
}

BOOST_AUTO_TEST_CASE(long_strings_and_many_keys_are_fine) {
  Rec r;
  r.extra = "\"" + std::string(1 << 20, 'k') + "\":\"" + std::string(4 << 20, 'v') + "\"";
  expect_accept(r.json());
  Rec many;
  for (int i = 0; i < 200000; ++i) many.extra += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  expect_accept(many.json());
}

BOOST_AUTO_TEST_CASE(lone_surrogates) {
  // RFC 8259 section 8.2: JSON, but not Unicode text. Ignored where ignored...
  for (const char* s : {R"("\ud800")", R"("\udc00")", R"("a\ud800b")", R"("\ud800\u0041")", R"("\udbff\udbff")"}) {
    Rec r;
    r.extra = std::string("\"s\":") + s + ",\"\\ud800k\":1";
    expect_accept(r.json());
  }
  // ... and a required string that cannot be Unicode text is not the string it needs.
  Rec id;
  id.customer_id = R"("C\ud800")";
  expect_reject(id, Reason::bad_type, "customer_id");
  Rec time;
  time.event_time = R"("2025-01-01T10:05:00Z\udfff")";
  expect_reject(time, Reason::bad_type, "event_time");
}

BOOST_AUTO_TEST_CASE(byte_order_mark) {
  // RFC 8259 section 8.1 lets a parser ignore a leading BOM: a file saved by an editor
  // that writes one keeps its first record.
  const std::string bom = "\xef\xbb\xbf";
  expect_accept(bom + Rec().json());
  expect_reject(bom + "{}", Reason::missing_field, "event_id");
  expect_reject(bom + "[1]", Reason::not_object, "");
  for (const std::string& line : {" " + bom + Rec().json(), bom + bom + Rec().json(), Rec().json() + bom, bom})
    expect_reject(line, Reason::not_json, "");
}

BOOST_AUTO_TEST_CASE(nul_bytes) {
  using namespace std::string_literals;
  Rec raw;  // a raw control character in a string, or a NUL between tokens: not JSON
  raw.extra = "\"s\":\"a\0b\""s;
  expect_reject(raw.json(), Reason::not_json, "");
  expect_reject(Rec().json() + "\0"s, Reason::not_json, "");
  expect_reject("\0"s + Rec().json(), Reason::not_json, "");
  Rec escaped;  // an escaped NUL is a character like any other
  escaped.customer_id = R"("C\u0000")";
  escaped.extra = R"("s":"\u0000")";
  const Outcome o = run(escaped);
  BOOST_TEST_REQUIRE(o.ok);
  BOOST_TEST(o.event.customer_id == "C\0"s);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(dead_letter)

boost::json::object parse_line(const std::string& line) {
  BOOST_TEST_REQUIRE(!line.empty());
  BOOST_TEST_REQUIRE(line.back() == '\n');
  BOOST_TEST_REQUIRE(line.find('\n') == line.size() - 1);
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  BOOST_TEST_REQUIRE(!ec, "not valid JSON: " << line);
  BOOST_TEST_REQUIRE(v.is_object());
  return v.as_object();
}

BOOST_AUTO_TEST_CASE(line_is_valid_json) {
  const std::string raw = R"({"event_id":"e-1","event_time":"2025-02-29T00:00:00Z"})";
  std::string out;
  append_dead_letter(out, Reason::bad_time, "event_time", "day out of range for month", "events.jsonl:42", raw);
  const boost::json::object o = parse_line(out);
  BOOST_TEST(o.at("reason").as_string() == "bad_time");
  BOOST_TEST(o.at("field").as_string() == "event_time");
  BOOST_TEST(o.at("detail").as_string() == "day out of range for month");
  BOOST_TEST(o.at("source").as_string() == "events.jsonl:42");
  BOOST_TEST(o.at("raw").as_string() == raw);
  BOOST_TEST(out.rfind(R"({"reason":"bad_time","field":"event_time",)", 0) == 0);
}

BOOST_AUTO_TEST_CASE(field_omitted_when_empty) {
  std::string out;
  append_dead_letter(out, Reason::not_json, "", "syntax error", "topic/3/1234", "{\"a\":");
  const boost::json::object o = parse_line(out);
  BOOST_TEST(!o.contains("field"));
  BOOST_TEST(o.at("reason").as_string() == "not_json");
  BOOST_TEST(o.at("source").as_string() == "topic/3/1234");
  BOOST_TEST(o.at("raw").as_string() == "{\"a\":");
}

BOOST_AUTO_TEST_CASE(raw_with_control_chars_and_invalid_utf8) {
  const std::string raw = std::string("{\"id\":\"\xff\xfe\"}\r\t\x01") + std::string(1, '\0') + "\xe2\x82\xac";
  std::string out;
  append_dead_letter(out, Reason::not_json, "", "illegal UTF-8", "f.jsonl:1", raw);
  const boost::json::object o = parse_line(out);
  BOOST_TEST(o.at("raw").as_string() ==
             "{\"id\":\"\xc3\xbf\xc3\xbe\"}\r\t\x01" + std::string(1, '\0') + "\xe2\x82\xac");
}

BOOST_AUTO_TEST_CASE(parser_failure_renders) {
  const std::string line = "[1]";
  const Outcome r = run(line);
  std::string out;
  append_dead_letter(out, r.failure.reason, r.failure.field, r.failure.detail, "in.jsonl:7", line);
  append_dead_letter(out, Reason::expired, "event_time", "older than the current tick minus 30 days", "in.jsonl:8",
                     Rec().json());
  const size_t first_end = out.find('\n') + 1;
  BOOST_TEST(parse_line(out.substr(0, first_end)).at("reason").as_string() == "not_object");
  BOOST_TEST(parse_line(out.substr(first_end)).at("reason").as_string() == "expired");
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

BOOST_AUTO_TEST_CASE(writer_creates_dirs_truncates_and_appends) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("streamscore_dl_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "a" / "b" / "dead.jsonl").string();
  {
    DeadLetterWriter w;
    BOOST_TEST_REQUIRE(w.open(path, true).is_ok());
    BOOST_TEST(w.write("one\n").is_ok());
    BOOST_TEST(w.write("two\n").is_ok());
    BOOST_TEST(w.flush().is_ok());
    BOOST_TEST(slurp(path) == "one\ntwo\n");
    w.close();
  }
  {
    DeadLetterWriter w;
    BOOST_TEST_REQUIRE(w.open(path, false).is_ok());
    BOOST_TEST(w.write("three\n").is_ok());
  }  // the destructor closes (and flushes)
  BOOST_TEST(slurp(path) == "one\ntwo\nthree\n");
  {
    DeadLetterWriter w;
    BOOST_TEST_REQUIRE(w.open(path, true).is_ok());
    BOOST_TEST(w.write("fresh\n").is_ok());
    BOOST_TEST(w.flush().is_ok());
  }
  BOOST_TEST(slurp(path) == "fresh\n");
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(writer_empty_path_discards) {
  DeadLetterWriter w;
  BOOST_TEST(w.open("", true).is_ok());
  BOOST_TEST(w.write("ignored\n").is_ok());
  BOOST_TEST(w.flush().is_ok());
  w.close();
}

BOOST_AUTO_TEST_CASE(writer_reports_open_failure) {
  DeadLetterWriter w;
  const Status s = w.open("/proc/streamscore-no-such-dir/x/dead.jsonl", true);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(!w.write("x\n").is_ok());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(decode_utf8_returns_code_points_of_well_formed_sequences) {
  char32_t cp = 0;
  BOOST_TEST(decode_utf8("\xc3\xa9", 0, &cp) == 2u);
  BOOST_TEST(static_cast<uint32_t>(cp) == 0xE9u);
  BOOST_TEST(decode_utf8("x\xe2\x82\xac", 1, &cp) == 3u);
  BOOST_TEST(static_cast<uint32_t>(cp) == 0x20ACu);
  BOOST_TEST(decode_utf8("\xf0\x9f\x93\x81", 0, &cp) == 4u);
  BOOST_TEST(static_cast<uint32_t>(cp) == 0x1F4C1u);
  BOOST_TEST(decode_utf8("\xc0\xaf", 0, &cp) == 0u);      // overlong
  BOOST_TEST(decode_utf8("\xed\xa0\x80", 0, &cp) == 0u);  // surrogate
  BOOST_TEST(decode_utf8("\xe2\x82", 0, &cp) == 0u);      // truncated
}
