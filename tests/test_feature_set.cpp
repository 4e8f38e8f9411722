// Feature definitions alone: window spellings, validation messages, canonical text and
// the difference a refusal names, and how values print.
#define BOOST_TEST_MODULE feature_set
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "state/feature_set.hpp"

using namespace streamscore;

namespace {

FeatureSpec spec(std::string name, Aggregation a, int64_t window, std::vector<std::string> types = {"transaction"}) {
  FeatureSpec s;
  s.name = std::move(name);
  s.aggregation = a;
  s.window = window;
  s.event_types = std::move(types);
  return s;
}

std::string error_of(std::vector<FeatureSpec> specs) {
  FeatureSet set;
  const Status s = FeatureSet::make(std::move(specs), &set);
  return s.is_ok() ? std::string("ok") : s.message();
}

std::string printed(int64_t scaled, int scale, bool present = true) {
  std::string out;
  append_feature_value(out, FeatureValue{scaled, present}, scale);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(windows_are_multiples_of_five_minutes_up_to_ninety_days) {
  int64_t w = 0;
  BOOST_TEST(parse_feature_window("5m", &w).is_ok());
  BOOST_TEST(w == 1);
  BOOST_TEST(parse_feature_window("1h", &w).is_ok());
  BOOST_TEST(w == 12);
  BOOST_TEST(parse_feature_window("90d", &w).is_ok());
  BOOST_TEST(w == 90 * 288);
  BOOST_TEST(parse_feature_window("2160h", &w).is_ok());
  BOOST_TEST(w == 90 * 288);
  for (const char* bad :
       {"", "m", "7m", "0m", "0h", "91d", "2161h", "1w", "1.5h", "-5m", "05m", "1h30m", " 5m", "99999999999999999999d"})
    BOOST_TEST(!parse_feature_window(bad, &w).is_ok(), bad);
  BOOST_TEST(parse_feature_window("7m", &w).message().find("multiple of 5m") != std::string::npos);
  BOOST_TEST(format_feature_window(1) == "5m");
  BOOST_TEST(format_feature_window(18) == "90m");
  BOOST_TEST(format_feature_window(12) == "1h");
  BOOST_TEST(format_feature_window(288 * 7) == "7d");
  for (int64_t windows : {1, 5, 12, 13, 36, 287, 288, 289, 2016, 25920}) {
    BOOST_TEST(parse_feature_window(format_feature_window(windows), &w).is_ok());
    BOOST_TEST(w == windows);
  }
}

BOOST_AUTO_TEST_CASE(defaults_are_todays_three_features) {
  const FeatureSet set = FeatureSet::defaults();
  BOOST_TEST(set.size() == 3u);
  BOOST_TEST(set.is_default());
  BOOST_TEST(set.horizon_windows() == 30 * 288);
  BOOST_TEST(set.index_of("avg_amount_30d") == 2);
  BOOST_TEST(set.index_of("nope") == -1);
  BOOST_TEST(set.canonical() ==
             "total_txn_30d: aggregation=count event_types=[transaction] window=30d\n"
             "total_amount_30d: aggregation=sum event_types=[transaction] field=amount scale=2 window=30d\n"
             "avg_amount_30d: aggregation=avg event_types=[transaction] field=amount scale=2 window=30d\n");
  // The same three declared again are the defaults; any change is not.
  std::vector<FeatureSpec> same = set.specs();
  FeatureSet declared;
  BOOST_TEST_REQUIRE(FeatureSet::make(same, &declared).is_ok());
  BOOST_TEST(declared.is_default());
  same[1].scale = 3;
  BOOST_TEST_REQUIRE(FeatureSet::make(same, &declared).is_ok());
  BOOST_TEST(!declared.is_default());
}

BOOST_AUTO_TEST_CASE(invalid_definitions_name_the_feature_and_the_key) {
  BOOST_TEST(error_of({}) == "no feature declared");
  BOOST_TEST(error_of({spec("Bad", Aggregation::count, 12)}).find("feature 1: name \"Bad\"") == 0);
  BOOST_TEST(error_of({spec("a", Aggregation::count, 12), spec("a", Aggregation::sum, 12)}) ==
             "feature \"a\": the name is declared twice");
  BOOST_TEST(error_of({spec("a", Aggregation::count, 0)}) == "feature \"a\": window must be from 5m to 90d");
  BOOST_TEST(error_of({spec("a", Aggregation::count, 12, {""})}).find("feature \"a\": event_types") == 0);
  FeatureSpec scaled = spec("s", Aggregation::sum, 12);
  scaled.scale = 7;
  BOOST_TEST(error_of({scaled}).find("feature \"s\": scale") == 0);
  FeatureSpec reserved = spec("r", Aggregation::max, 12);
  reserved.field = "event_time";
  BOOST_TEST(error_of({reserved}) == "feature \"r\": field \"event_time\" is not a number");
  std::vector<FeatureSpec> many;
  for (int i = 0; i < 65; ++i) many.push_back(spec("f" + std::to_string(i), Aggregation::count, 1));
  BOOST_TEST(error_of(many).find("65 features declared") == 0);
  BOOST_TEST(error_of({spec(std::string(64, 'a'), Aggregation::count, 1)}) == "ok");
  BOOST_TEST(error_of({spec(std::string(65, 'a'), Aggregation::count, 1)}) != "ok");
}

BOOST_AUTO_TEST_CASE(definitions_ignore_what_cannot_change_the_values) {
  FeatureSpec a = spec("c", Aggregation::count, 12, {"b", "a", "b"});
  a.field = "risk";
  a.scale = 5;
  FeatureSpec b = spec("c", Aggregation::count, 12, {"a", "b"});
  BOOST_TEST(a.definition() == b.definition());
  BOOST_TEST(a.definition() == "aggregation=count event_types=[a,b] window=1h");
  FeatureSpec every = spec("e", Aggregation::max, 288, {});
  every.field = "items";
  every.scale = 0;
  BOOST_TEST(every.definition() == "aggregation=max event_types=[] field=items scale=0 window=1d");
}

BOOST_AUTO_TEST_CASE(a_stored_set_that_differs_names_the_first_feature_that_differs) {
  FeatureSet one, two;
  BOOST_TEST_REQUIRE(
      FeatureSet::make({spec("a", Aggregation::count, 12), spec("b", Aggregation::sum, 288)}, &one).is_ok());
  BOOST_TEST(one.difference_from(one.canonical()).empty());
  BOOST_TEST_REQUIRE(
      FeatureSet::make({spec("a", Aggregation::count, 12), spec("b", Aggregation::sum, 24)}, &two).is_ok());
  BOOST_TEST(two.difference_from(one.canonical()).find("b (stored: ") == 0);
  BOOST_TEST(two.difference_from(one.canonical()).find("window=1d; configured:") != std::string::npos);
  BOOST_TEST_REQUIRE(FeatureSet::make({spec("a", Aggregation::count, 12)}, &two).is_ok());
  BOOST_TEST(two.difference_from(one.canonical()) == "b (stored, no longer configured)");
  BOOST_TEST(one.difference_from(two.canonical()) == "b (not in the stored definitions)");
  BOOST_TEST_REQUIRE(
      FeatureSet::make({spec("z", Aggregation::count, 12), spec("b", Aggregation::sum, 288)}, &two).is_ok());
  BOOST_TEST(two.difference_from(one.canonical()) == "z (stored in its place: a)");
  BOOST_TEST(FeatureSet::defaults().difference_from("").find("total_txn_30d") == 0);
}

BOOST_AUTO_TEST_CASE(values_print_as_the_shortest_exact_decimal) {
  BOOST_TEST(printed(84250, 2) == "842.5");
  BOOST_TEST(printed(7021, 2) == "70.21");
  BOOST_TEST(printed(84200, 2) == "842");
  BOOST_TEST(printed(1, 2) == "0.01");
  BOOST_TEST(printed(-150, 2) == "-1.5");
  BOOST_TEST(printed(12, 0) == "12");
  BOOST_TEST(printed(1000001, 6) == "1.000001");
  BOOST_TEST(printed(10, 6) == "0.00001");
  BOOST_TEST(printed(0, 4) == "0");
  BOOST_TEST(printed(INT64_MIN, 0) == "-9223372036854775808");
  BOOST_TEST(printed(5, 2, false) == "null");
  BOOST_TEST(feature_value_float(FeatureValue{84250, true}, 2) == 842.5f);
  BOOST_TEST(std::isnan(feature_value_float(FeatureValue{0, false}, 2)));
}
