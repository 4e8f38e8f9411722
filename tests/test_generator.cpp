// The event generator: determinism, exact line counts, the rates of duplicates, bad
// and late records, bounded disorder, skew, and the shape of every line. Lines are
// checked by parsing them (boost::json, libc timegm), independently of the generator.
#define BOOST_TEST_MODULE generator
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/generator.hpp"

using streamscore::BadKind;
using streamscore::EventGenerator;
using streamscore::GeneratorOptions;
using streamscore::RecordKind;

namespace {

constexpr int64_t kStartSeconds = 1'735'689'600;  // 2025-01-01T00:00:00Z

std::vector<std::string> generate(const GeneratorOptions& o, int64_t max_lines = -1) {
  EventGenerator g(o);
  std::vector<std::string> lines;
  std::string line;
  while ((max_lines < 0 || static_cast<int64_t>(lines.size()) < max_lines) && g.next(&line)) lines.push_back(line);
  return lines;
}

// Strict YYYY-MM-DDTHH:MM:SSZ naming a real instant, via libc: timegm normalises
// out-of-range fields, so a round trip through gmtime_r must give them back unchanged.
bool parse_time(const std::string& s, int64_t* unix_seconds) {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
    return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18})
    if (s[i] < '0' || s[i] > '9') return false;
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  const std::tm want = tm;
  const time_t t = timegm(&tm);
  std::tm back{};
  gmtime_r(&t, &back);
  if (back.tm_year != want.tm_year || back.tm_mon != want.tm_mon || back.tm_mday != want.tm_mday ||
      back.tm_hour != want.tm_hour || back.tm_min != want.tm_min || back.tm_sec != want.tm_sec)
    return false;
  *unix_seconds = static_cast<int64_t>(t);
  return true;
}

struct Record {
  std::string event_id, customer_id, event_type;
  int64_t time = 0;
  double amount = 0;
  bool late = false;  // set by classify()
};

// The spec's validity rules (section 1), enough for what the generator produces.
bool parse_valid(const std::string& line, Record* r) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return false;
  const auto& o = v.get_object();
  for (const char* k : {"event_id", "customer_id", "event_time", "event_type"})
    if (!o.contains(k) || !o.at(k).is_string() || o.at(k).get_string().empty()) return false;
  if (!o.contains("amount") || !o.at("amount").is_number()) return false;
  r->amount = o.at("amount").to_number<double>();
  if (r->amount < 0) return false;
  r->event_id = std::string(o.at("event_id").get_string());
  r->customer_id = std::string(o.at("customer_id").get_string());
  r->event_type = std::string(o.at("event_type").get_string());
  return parse_time(std::string(o.at("event_time").get_string()), &r->time);
}

// What the test sees in a stream, from the lines alone.
struct Classified {
  int64_t lines = 0, valid = 0, late = 0, duplicates = 0, bad = 0;
  int64_t max_disorder = 0;  // largest lag of an in-order (not late) event
  int64_t min_late_lag = INT64_MAX, max_late_lag = 0;
  std::map<std::string, int64_t> per_customer;  // valid and late events
  std::vector<Record> events;                   // valid and late, in arrival order
  bool kinds_agree = true;                      // the generator's last_kind() matches
};

Classified classify(const GeneratorOptions& o) {
  Classified c;
  EventGenerator g(o);
  std::unordered_map<std::string, std::string> first_line;  // event_id -> line
  int64_t max_seen = INT64_MIN;
  std::string line;
  while (g.next(&line)) {
    ++c.lines;
    Record r;
    RecordKind kind = RecordKind::bad;
    if (!parse_valid(line, &r)) {
      ++c.bad;
    } else if (first_line.count(r.event_id)) {
      BOOST_TEST(first_line[r.event_id] == line);  // a redelivery is the exact same line
      ++c.duplicates;
      kind = RecordKind::duplicate;
    } else {
      first_line.emplace(r.event_id, line);
      const int64_t lag = max_seen == INT64_MIN ? 0 : max_seen - r.time;
      if (lag > o.disorder_s) {
        ++c.late;
        r.late = true;
        kind = RecordKind::late;
        c.min_late_lag = std::min(c.min_late_lag, lag);
        c.max_late_lag = std::max(c.max_late_lag, lag);
      } else {
        ++c.valid;
        kind = RecordKind::valid;
        c.max_disorder = std::max(c.max_disorder, lag);
        max_seen = std::max(max_seen, r.time);
      }
      ++c.per_customer[r.customer_id];
      c.events.push_back(r);
    }
    if (kind != g.last_kind()) c.kinds_agree = false;
  }
  return c;
}

GeneratorOptions options(int64_t events, uint64_t seed = 42) {
  GeneratorOptions o;
  o.events = events;
  o.seed = seed;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_seed_same_output_different_seed_different) {
  const auto a = generate(options(50'000, 42));
  const auto b = generate(options(50'000, 42));
  const auto c = generate(options(50'000, 43));
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
  int64_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  BOOST_TEST(same == 0);  // event ids carry the seed, so no line is shared
}

BOOST_AUTO_TEST_CASE(golden_lines_pin_the_output_on_every_machine) {
  // Changing the generator on purpose means updating these; changing it by accident
  // (or a platform that rounds differently) fails here.
  const auto lines = generate(options(1'000'000), 100'000);
  BOOST_TEST(
      lines[0] ==
      R"({"event_id":"e42-1","customer_id":"C0005329","event_time":"2025-01-01T00:00:00Z","event_type":"login","amount":0.00})");
  BOOST_TEST(
      lines[2] ==
      R"({"event_id":"e42-3","customer_id":"C0001024","event_time":"2025-01-01T00:00:09Z","event_type":"transaction","amount":21.56})");
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a of the lines and their newlines
  for (const auto& line : lines) {
    for (const char ch : line + "\n") hash = (hash ^ static_cast<unsigned char>(ch)) * 0x100000001b3ULL;
  }
  BOOST_TEST(hash == 14290119004678556680ULL);
}

BOOST_AUTO_TEST_CASE(exactly_events_lines) {
  for (int64_t n : {1, 7, 1000, 12'345}) {
    EventGenerator g(options(n));
    std::string line;
    int64_t count = 0;
    while (g.next(&line)) ++count;
    BOOST_TEST(count == n);
    BOOST_TEST(g.produced() == n);
    BOOST_TEST(!g.next(&line));  // and stays ended
    const auto& k = g.counts();
    BOOST_TEST(k.valid + k.late + k.duplicates + k.bad == n);
  }
}

BOOST_AUTO_TEST_CASE(zero_events_never_ends) {
  EventGenerator g(options(0));
  std::string line;
  for (int i = 0; i < 2'500'000; ++i) BOOST_TEST_REQUIRE(g.next(&line));
  BOOST_TEST(g.produced() == 2'500'000);
  // Past the default span (1,000,000 lines per 45 days) time keeps going forward.
  Record r;
  BOOST_TEST_REQUIRE(parse_valid(line, &r));
  BOOST_TEST(r.time > kStartSeconds + 100 * 86'400);
}

BOOST_AUTO_TEST_CASE(rates_within_tolerance_and_kinds_agree) {
  const GeneratorOptions o = options(200'000);
  const Classified c = classify(o);
  BOOST_TEST(c.lines == 200'000);
  BOOST_TEST(c.kinds_agree);
  const double lines = static_cast<double>(c.lines);
  const double originals = static_cast<double>(c.valid + c.late);
  BOOST_TEST(c.duplicates / lines > 0.02 * 0.9);
  BOOST_TEST(c.duplicates / lines < 0.02 * 1.1);
  BOOST_TEST(c.bad / lines > 0.001 * 0.7);  // ~200 expected: +-30% is over 4 sigma
  BOOST_TEST(c.bad / lines < 0.001 * 1.3);
  BOOST_TEST(c.late / originals > 0.001 * 0.7);
  BOOST_TEST(c.late / originals < 0.001 * 1.3);
  // Late means 1..48 hours behind the stream.
  BOOST_TEST(c.min_late_lag >= 3600 - o.disorder_s - 10);
  BOOST_TEST(c.max_late_lag <= 48 * 3600);
  EventGenerator g(o);
  std::string line;
  while (g.next(&line)) {
  }
  BOOST_TEST(g.counts().duplicates == c.duplicates);
  BOOST_TEST(g.counts().bad == c.bad);
  BOOST_TEST(g.counts().late == c.late);
}

BOOST_AUTO_TEST_CASE(rates_zero_and_high) {
  GeneratorOptions o = options(20'000);
  o.dup_rate = o.bad_rate = o.late_rate = 0;
  Classified c = classify(o);
  BOOST_TEST(c.valid == 20'000);
  BOOST_TEST(c.kinds_agree);
  o.dup_rate = 0.3;
  o.bad_rate = 0.2;
  o.late_rate = 0.1;
  c = classify(o);
  BOOST_TEST(c.kinds_agree);
  BOOST_TEST(c.duplicates / 20'000.0 > 0.27);
  BOOST_TEST(c.duplicates / 20'000.0 < 0.33);
  BOOST_TEST(c.bad / 20'000.0 > 0.18);
  BOOST_TEST(c.bad / 20'000.0 < 0.22);
}

BOOST_AUTO_TEST_CASE(every_bad_class_appears_and_is_invalid) {
  GeneratorOptions o = options(5'000);
  o.bad_rate = 0.1;
  EventGenerator g(o);
  std::string line;
  std::vector<std::string> bad;
  while (g.next(&line))
    if (g.last_kind() == RecordKind::bad) bad.push_back(line);
  BOOST_TEST_REQUIRE(bad.size() >= 12u);
  for (const auto& b : bad) {
    Record r;
    BOOST_TEST(!parse_valid(b, &r), b);
  }
  // The classes cycle in BadKind order.
  boost::system::error_code ec;
  boost::json::parse(bad[0], ec);
  BOOST_TEST(bool(ec));                                                         // truncated
  BOOST_TEST(boost::json::parse(bad[1]).at("amount").is_string());              // amount as string
  BOOST_TEST(!boost::json::parse(bad[2]).as_object().contains("customer_id"));  // missing id
  BOOST_TEST(boost::json::parse(bad[3]).at("event_time").as_string() == "2025-13-01T00:00:00Z");
  BOOST_TEST(boost::json::parse(bad[4]).at("amount").to_number<double>() < 0);  // negative
  BOOST_TEST(boost::json::parse(bad[5]).is_array());                            // not an object
  BOOST_TEST(static_cast<int>(BadKind::not_an_object) == 5);
}

BOOST_AUTO_TEST_CASE(disorder_is_bounded) {
  for (int64_t disorder : {120, 0, 3600}) {
    GeneratorOptions o = options(200'000);
    o.disorder_s = disorder;
    const Classified c = classify(o);
    BOOST_TEST(c.kinds_agree);  // no in-order event was taken for a late one
    BOOST_TEST(c.max_disorder <= disorder);
    if (disorder > 0) BOOST_TEST(c.max_disorder >= disorder * 9 / 10);  // the bound is used
  }
}

BOOST_AUTO_TEST_CASE(times_spread_evenly_over_days) {
  GeneratorOptions o = options(200'000);
  o.days = 10;
  const Classified c = classify(o);
  const int64_t end = kStartSeconds + 10 * 86'400;
  std::vector<int64_t> per_day(10, 0);
  for (const auto& e : c.events) {
    // Only a late event may precede the start (it is late relative to the stream).
    BOOST_TEST_REQUIRE(e.time >= (e.late ? kStartSeconds - 48 * 3600 : kStartSeconds));
    BOOST_TEST_REQUIRE(e.time < end);
    if (e.time >= kStartSeconds) ++per_day[(e.time - kStartSeconds) / 86'400];
  }
  for (int64_t n : per_day) {  // ~19,600 a day
    BOOST_TEST(n > 19'000);
    BOOST_TEST(n < 20'200);
  }
  BOOST_TEST(c.events.front().time < kStartSeconds + 60);
  BOOST_TEST(c.events.back().time > end - 3600);
}

BOOST_AUTO_TEST_CASE(customer_activity_is_skewed) {
  const Classified c = classify(options(200'000));
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const auto& [id, n] : c.per_customer) {
    BOOST_TEST_REQUIRE(id.size() == 8u);
    BOOST_TEST_REQUIRE(id[0] == 'C');
    const int64_t number = std::stoll(id.substr(1));
    BOOST_TEST_REQUIRE(number >= 1);
    BOOST_TEST_REQUIRE(number <= 10'000);
    counts.push_back(n);
    total += n;
  }
  std::sort(counts.rbegin(), counts.rend());
  int64_t top = 0;
  for (std::size_t i = 0; i < 100; ++i) top += counts[i];  // top 1% of 10,000 customers
  BOOST_TEST(static_cast<double>(top) / static_cast<double>(total) > 0.10);
  BOOST_TEST(counts.size() > 9'000u);  // yet most customers show up
}

BOOST_AUTO_TEST_CASE(lines_have_the_contract_shape) {
  const GeneratorOptions o = options(100'000);
  EventGenerator g(o);
  std::string line;
  std::map<std::string, int64_t> types;
  std::vector<double> amounts;
  std::set<std::string> ids;
  const std::vector<std::string> order = {"event_id", "customer_id", "event_time", "event_type", "amount"};
  while (g.next(&line)) {
    if (g.last_kind() != RecordKind::valid && g.last_kind() != RecordKind::late) continue;
    const auto v = boost::json::parse(line).as_object();
    std::vector<std::string> keys;
    for (const auto& kv : v) keys.emplace_back(kv.key());
    BOOST_TEST_REQUIRE(keys == order);
    const std::string id(v.at("event_id").as_string());
    BOOST_TEST_REQUIRE(id.rfind("e42-", 0) == 0u);
    BOOST_TEST_REQUIRE(ids.insert(id).second);  // unique per original event
    // Exactly two decimals, written as a plain number.
    const auto at = line.find("\"amount\":");
    const std::string amount = line.substr(at + 9, line.size() - at - 10);
    const auto dot = amount.find('.');
    BOOST_TEST_REQUIRE(dot != std::string::npos);
    BOOST_TEST_REQUIRE(amount.size() - dot == 3u, line);
    BOOST_TEST_REQUIRE(amount.find_first_not_of("0123456789.") == std::string::npos, line);
    const std::string type(v.at("event_type").as_string());
    ++types[type];
    if (type == "login")
      BOOST_TEST_REQUIRE(amount == "0.00");
    else
      amounts.push_back(v.at("amount").to_number<double>());
  }
  const double n = static_cast<double>(ids.size());
  BOOST_TEST(types.size() == 3u);
  BOOST_TEST(types["transaction"] / n > 0.88);
  BOOST_TEST(types["transaction"] / n < 0.92);
  BOOST_TEST(types["refund"] / n > 0.05);
  BOOST_TEST(types["refund"] / n < 0.07);
  BOOST_TEST(types["login"] / n > 0.03);
  BOOST_TEST(types["login"] / n < 0.05);
  // Spend is skewed: the mean is well above the median (log-normal-like).
  std::sort(amounts.begin(), amounts.end());
  const double median = amounts[amounts.size() / 2];
  double mean = 0;
  for (double a : amounts) mean += a / static_cast<double>(amounts.size());
  BOOST_TEST(amounts.front() > 0);
  BOOST_TEST(median > 30);
  BOOST_TEST(median < 60);
  BOOST_TEST(mean > median * 1.3);
}

BOOST_AUTO_TEST_CASE(options_are_honoured) {
  GeneratorOptions o = options(20'000, 7);
  o.customers = 50;
  o.start_ns = 1'700'000'000LL * 1'000'000'000;  // 2023-11-14T22:13:20Z
  o.days = 1;
  o.dup_rate = o.bad_rate = o.late_rate = 0;
  const Classified c = classify(o);
  BOOST_TEST(c.per_customer.size() == 50u);
  for (const auto& e : c.events) {
    BOOST_TEST_REQUIRE(e.event_id.rfind("e7-", 0) == 0u);
    BOOST_TEST_REQUIRE(e.time >= 1'700'000'000);
    BOOST_TEST_REQUIRE(e.time < 1'700'000'000 + 86'400);
  }
}
