// libFuzzer target: the event parser and what the engine does with its output.
// Invariants checked on every input:
//  - a valid record has fields inside the contract's bounds, and its time prints
//    and parses back to the same instant and spelling;
//  - an invalid record has a known reason, and its dead-letter line is valid JSON;
//  - a record is not_json only when Boost.JSON, without its depth limit, rejects it too
//    (the parser reads what Boost.JSON's limits stop at with its own scanner).
#include <boost/json.hpp>

#include <cstdlib>
#include <string>
#include <string_view>

#include "io/dead_letter.hpp"
#include "io/event_parser.hpp"
#include "state/format.hpp"

using namespace streamscore;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EventParser parser;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  ParsedEvent event;
  ParseFailure failure;
  ParseOptions options;
  options.max_event_ns = 4102444800LL * kNanosPerSecond;  // 2100-01-01: some inputs are future
  if (parser.parse(line, options, &event, &failure)) {
    check(!event.customer_id.empty() && event.customer_id.size() <= 64);
    check(event.cents >= 0 && event.cents <= kMaxAmountCents);
    check(event.time.frac_digits <= 9 && event.time.ns <= options.max_event_ns);
    std::string printed;
    append_event_time(printed, event.time);
    EventTime back;
    check(parse_event_time(printed, &back) && back == event.time);
  } else {
    check(static_cast<int>(failure.reason) < kReasonCount);
    if (failure.reason == Reason::not_json) {
      boost::json::parse_options deep;
      deep.max_depth = size + 1;  // fuzz inputs are small: Boost.JSON's recursion is safe
      boost::system::error_code json_ec;
      boost::json::parse(line, json_ec, {}, deep);
      check(json_ec.failed());
    }
    std::string dead;
    append_dead_letter(dead, failure.reason, failure.field, failure.detail, "fuzz:1", line);
    boost::system::error_code ec;
    boost::json::parse(std::string_view(dead).substr(0, dead.size() - 1), ec);
    check(!ec);
  }
  return 0;
}
