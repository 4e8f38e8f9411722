// Parses and validates one `customer-events` record (spec section 1) in a single pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "state/event.hpp"
#include "state/feature_plan.hpp"

namespace streamscore {

struct ParseOptions {
  int64_t max_event_ns = INT64_MAX;  // events with ns > this are `future`
  // Declared features other than the default set: the fields and event-type filters to
  // extract into ParsedEvent::filters/present/values. Null: the default set (none).
  const FeaturePlan* features = nullptr;
};

struct ParseFailure {
  Reason reason = Reason::not_json;
  std::string field;   // the field concerned; empty for not_json / not_object
  std::string detail;  // short human-readable explanation
};

// The dedup key of an event: XXH3-128 of the length-prefixed (customer_id, event_id) pair.
DedupKey dedup_key(std::string_view customer_id, std::string_view event_id);
// What tells conflicting duplicates apart: the instant as spelled (it shows in
// last_event_time), the event type and the amount in cents. 32 bits: a conflicting
// duplicate is counted as an exact one with probability 2^-32 (features never differ).
uint32_t event_fingerprint(EventTime time, std::string_view event_type, int64_t cents);

// One per thread; reusable (buffers are kept between calls), not thread-safe.
// Validation order: not_json, not_object, duplicate_field, then the fields in the order
// event_id, customer_id, event_time, event_type, amount (first failure wins), then future.
class EventParser {
 public:
  EventParser();
  ~EventParser();
  EventParser(EventParser&&) noexcept;
  EventParser& operator=(EventParser&&) noexcept;
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  // true: `out` filled (all fields except record_index). false: `failure` filled.
  bool parse(std::string_view line, const ParseOptions& opts, ParsedEvent* out, ParseFailure* failure);

 private:
  // Keeps Boost.JSON out of this header: the SAX parser lives in the .cpp.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamscore
