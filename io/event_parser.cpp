#include "io/event_parser.hpp"

#include <cstring>

#include <xxhash.h>

#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <vector>

#include "io/json_scanner.hpp"
#include "state/format.hpp"

namespace streamscore {

namespace {

using boost::json::error_code;
using boost::json::string_view;

enum Field : int { kEventId, kCustomerId, kEventTime, kEventType, kAmount, kFieldCount };
constexpr int kOtherKey = -1;
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {"event_id", "customer_id", "event_time",
                                                                   "event_type", "amount"};

constexpr size_t kMaxEventIdBytes = 128;
constexpr size_t kMaxCustomerIdBytes = 64;
// Boost.JSON recurses once per level: deeper records are read by the JsonScanner instead.
constexpr size_t kMaxDepth = 32;
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

enum class Kind : uint8_t { absent, string, number, boolean, null, object, array, lone_surrogate };

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::absent:
      return "nothing";
    case Kind::string:
      return "string";
    case Kind::number:
      return "number";
    case Kind::boolean:
      return "boolean";
    case Kind::null:
      return "null";
    case Kind::object:
      return "object";
    case Kind::array:
      return "array";
    case Kind::lone_surrogate:
      return "a string with a lone UTF-16 surrogate escape (not Unicode text)";
  }
  return "unknown";
}

int classify_key(std::string_view k) {
  switch (k.size()) {
    case 6:
      return k == "amount" ? kAmount : kOtherKey;
    case 8:
      return k == "event_id" ? kEventId : kOtherKey;
    case 10:
      return k == "event_time" ? kEventTime : k == "event_type" ? kEventType : kOtherKey;
    case 11:
      return k == "customer_id" ? kCustomerId : kOtherKey;
    default:
      return kOtherKey;
  }
}

// What the record said about one required field (its first occurrence).
struct FieldValue {
  uint32_t count = 0;  // occurrences as a top-level key
  Kind kind = Kind::absent;
  std::string text;  // unescaped string, or the number's text
};

// SAX handler for basic_parser and visitor of the JsonScanner: remembers the required
// top-level fields and ignores everything else (which the parser still validates).
class Handler final : public JsonVisitor {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  // The top-level fields read beyond the required ones (declared features'), numbered
  // from kFieldCount on.
  void set_extra_fields(const std::vector<std::string>& names) {
    extra_names_ = names;
    fields_.resize(kFieldCount + names.size());
  }

  void reset() {
    for (FieldValue& f : fields_) {
      f.count = 0;
      f.kind = Kind::absent;
    }
    depth_ = 0;
    top_is_object_ = false;
    current_ = kOtherKey;
    sink_ = nullptr;
    key_.clear();
  }

  bool top_is_object() const { return top_is_object_; }
  const FieldValue& field(int f) const { return fields_[f]; }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code&) {
    begin_object();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) { return leave(); }
  bool on_array_begin(error_code&) {
    begin_array();
    return true;
  }
  bool on_array_end(std::size_t, error_code&) { return leave(); }

  bool on_key_part(string_view s, std::size_t, error_code&) {
    if (depth_ == 1) key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code&) {
    if (depth_ != 1) return true;
    std::string_view key(s.data(), s.size());
    if (!key_.empty()) {  // the key came in parts (it had escapes)
      key_.append(key);
      key = key_;
    }
    start_member(key);
    key_.clear();
    return true;
  }

  // Parts arrive only while a required member's first value is pending (sink_ set).
  bool on_string_part(string_view s, std::size_t, error_code&) { return append_part(s); }
  bool on_string(string_view s, std::size_t, error_code&) { return value(Kind::string, s); }
  bool on_number_part(string_view s, error_code&) { return append_part(s); }
  bool on_int64(std::int64_t, string_view s, error_code&) { return value(Kind::number, s); }
  bool on_uint64(std::uint64_t, string_view s, error_code&) { return value(Kind::number, s); }
  bool on_double(double, string_view s, error_code&) { return value(Kind::number, s); }
  bool on_bool(bool, error_code&) { return value(Kind::boolean, {}); }
  bool on_null(error_code&) { return value(Kind::null, {}); }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

  // JsonVisitor: the same events from the JsonScanner.
  void begin_object() override {
    if (depth_ == 0) top_is_object_ = true;
    value(Kind::object, {});
    ++depth_;
  }
  void end_object() override { leave(); }
  void begin_array() override {
    value(Kind::array, {});
    ++depth_;
  }
  void end_array() override { leave(); }
  void key(std::string_view unescaped) override {
    if (depth_ == 1) start_member(unescaped);
  }
  void string(std::string_view s) override { value(Kind::string, {s.data(), s.size()}); }
  void lone_surrogate_string() override { value(Kind::lone_surrogate, {}); }
  void number(std::string_view text) override { value(Kind::number, {text.data(), text.size()}); }
  void boolean() override { value(Kind::boolean, {}); }
  void null() override { value(Kind::null, {}); }

 private:
  bool leave() {
    --depth_;
    return true;
  }

  int classify_extra(std::string_view key) const {
    for (std::size_t i = 0; i < extra_names_.size(); ++i)
      if (key == extra_names_[i]) return kFieldCount + static_cast<int>(i);
    return kOtherKey;
  }

  void start_member(std::string_view key) {
    current_ = classify_key(key);
    if (current_ == kOtherKey && !extra_names_.empty()) current_ = classify_extra(key);
    sink_ = nullptr;
    if (current_ == kOtherKey) return;
    FieldValue& f = fields_[current_];
    if (++f.count > 1) return;  // duplicate: keep the first value, validation reports it
    f.text.clear();
    sink_ = &f.text;
  }

  bool append_part(string_view s) {
    if (sink_ != nullptr) sink_->append(s.data(), s.size());
    return true;
  }

  // A value (or the start of a container) at the current depth.
  bool value(Kind kind, string_view s) {
    if (depth_ != 1 || current_ == kOtherKey) return true;
    if (sink_ != nullptr) {
      fields_[current_].kind = kind;
      sink_->append(s.data(), s.size());
    }
    current_ = kOtherKey;
    sink_ = nullptr;
    return true;
  }

  std::vector<FieldValue> fields_ = std::vector<FieldValue>(kFieldCount);
  std::vector<std::string> extra_names_;
  std::string key_;  // top-level key being assembled from parts
  std::size_t depth_ = 0;
  bool top_is_object_ = false;
  int current_ = kOtherKey;      // required field whose value comes next, if any
  std::string* sink_ = nullptr;  // where that value's text goes (first occurrence only)
};

boost::json::parse_options strict_json() {
  boost::json::parse_options o;
  o.max_depth = kMaxDepth;
  o.allow_comments = false;
  o.allow_trailing_commas = false;
  o.allow_invalid_utf8 = false;
  return o;
}

bool fail(ParseFailure* f, Reason reason, std::string_view field, std::string_view detail) {
  f->reason = reason;
  f->field.assign(field);
  f->detail.assign(detail);
  return false;
}

// "-0", "-0.0e7" are zero, not negative; "-0.001" is negative even though it rounds to 0.
bool is_negative_number(std::string_view text) {
  if (text.empty() || text[0] != '-') return false;
  for (char c : text.substr(1)) {
    if (c == 'e' || c == 'E') break;
    if (c >= '1' && c <= '9') return true;
  }
  return false;
}

// Presence and JSON type of a required field.
bool check_type(const Handler& h, int f, Kind expected, ParseFailure* failure) {
  const Kind kind = h.field(f).kind;
  const std::string_view name = kFieldNames[f];
  if (kind == Kind::absent) return fail(failure, Reason::missing_field, name, "required field is absent");
  if (kind == expected) return true;
  fail(failure, Reason::bad_type, name, "expected ");
  failure->detail.append(kind_name(expected)).append(", got ").append(kind_name(kind));
  return false;
}

// event_id, customer_id, event_type: non-empty strings, optionally bounded in bytes.
bool check_id(const Handler& h, int f, size_t max_bytes, ParseFailure* failure) {
  if (!check_type(h, f, Kind::string, failure)) return false;
  const std::string& text = h.field(f).text;
  const std::string_view name = kFieldNames[f];
  if (text.empty()) return fail(failure, Reason::empty_field, name, "must not be empty");
  if (max_bytes != 0 && text.size() > max_bytes) {
    fail(failure, Reason::too_long, name, std::to_string(text.size()));
    failure->detail.append(" bytes, at most ").append(std::to_string(max_bytes));
    return false;
  }
  return true;
}

// An empty event_time is a bad_time, not an empty_field (that reason is for the ids).
bool check_time(const Handler& h, EventTime* time, ParseFailure* failure) {
  if (!check_type(h, kEventTime, Kind::string, failure)) return false;
  std::string_view why;
  if (parse_event_time(h.field(kEventTime).text, time, &why)) return true;
  return fail(failure, Reason::bad_time, kFieldNames[kEventTime], why);
}

bool check_amount(const Handler& h, int64_t* cents, ParseFailure* failure) {
  if (!check_type(h, kAmount, Kind::number, failure)) return false;
  const std::string& text = h.field(kAmount).text;
  const std::string_view name = kFieldNames[kAmount];
  bool too_large = false;
  if (!parse_amount_cents(text, cents, &too_large))  // cannot happen after JSON validation
    return fail(failure, Reason::bad_amount, name, "not a decimal number");
  if (is_negative_number(text)) return fail(failure, Reason::bad_amount, name, "negative amount");
  if (too_large) return fail(failure, Reason::bad_amount, name, "amount above 1000000000.00");
  return true;
}

void fill_event(const Handler& h, EventTime time, int64_t cents, ParsedEvent* out) {
  const std::string& event_id = h.field(kEventId).text;
  const std::string& customer = h.field(kCustomerId).text;
  const std::string& type = h.field(kEventType).text;
  out->customer_id.assign(customer);
  out->time = time;
  out->cents = cents;
  out->is_transaction = type == "transaction";
  out->customer_hash = XXH3_64bits(customer.data(), customer.size());
  out->key = dedup_key(customer, event_id);
  out->fingerprint = event_fingerprint(time, type, cents);
}

// A declared feature's value: absent unless the field appears once, as a number within
// kMaxScaledValue at its scale. Never an error: only `amount` can make a record invalid.
bool feature_field_value(const Handler& h, int f, int scale, int64_t* scaled) {
  const FieldValue& v = h.field(f);
  return v.count == 1 && v.kind == Kind::number && parse_scaled_number(v.text, scale, scaled);
}

void fill_feature_inputs(const Handler& h, const FeaturePlan& plan, ParsedEvent* out) {
  FeatureInputs& in = out->inputs;
  in.filters = plan.filters_of(h.field(kEventType).text);
  in.present = 0;
  in.values.assign(plan.values.size(), 0);
  for (std::size_t k = 0; k < plan.values.size(); ++k) {
    const FeaturePlan::ValueSlot& slot = plan.values[k];
    const int f = slot.extra_field < 0 ? kAmount : kFieldCount + slot.extra_field;
    if (feature_field_value(h, f, slot.scale, &in.values[k])) in.present |= uint64_t{1} << k;
  }
}

}  // namespace

DedupKey dedup_key(std::string_view customer_id, std::string_view event_id) {
  // Length-prefixed, so that no two pairs share a byte string.
  const auto customer_len = static_cast<uint32_t>(customer_id.size());
  if (customer_id.size() > kMaxCustomerIdBytes || event_id.size() > kMaxEventIdBytes) {
    // Not reachable from the parser (it rejects such ids as too_long); kept correct anyway.
    XXH3_state_t* state = XXH3_createState();
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, &customer_len, 4);
    XXH3_128bits_update(state, customer_id.data(), customer_id.size());
    XXH3_128bits_update(state, event_id.data(), event_id.size());
    const XXH128_hash_t key = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    return DedupKey{key.low64, key.high64};
  }
  char pair[4 + kMaxCustomerIdBytes + kMaxEventIdBytes];
  std::memcpy(pair, &customer_len, 4);
  std::memcpy(pair + 4, customer_id.data(), customer_id.size());
  std::memcpy(pair + 4 + customer_id.size(), event_id.data(), event_id.size());
  const XXH128_hash_t key = XXH3_128bits(pair, 4 + customer_id.size() + event_id.size());
  return DedupKey{key.low64, key.high64};
}

uint32_t event_fingerprint(EventTime time, std::string_view event_type, int64_t cents) {
  const uint64_t seed = static_cast<uint64_t>(time.ns) * 0x9E3779B97F4A7C15ULL ^
                        static_cast<uint64_t>(cents) * 0xC2B2AE3D27D4EB4FULL ^ time.frac_digits;
  const uint64_t h = XXH3_64bits_withSeed(event_type.data(), event_type.size(), seed);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

struct EventParser::Impl {
  boost::json::basic_parser<Handler> parser{strict_json()};
  JsonScanner scanner;
  std::string scanner_error;
  const FeaturePlan* features = nullptr;  // whose fields the handler extracts
};

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;
EventParser::EventParser(EventParser&&) noexcept = default;
EventParser& EventParser::operator=(EventParser&&) noexcept = default;

bool EventParser::parse(std::string_view line, const ParseOptions& opts, ParsedEvent* out, ParseFailure* failure) {
  // RFC 8259 lets a parser ignore a byte order mark: an editor may start a file with one.
  if (line.substr(0, kByteOrderMark.size()) == kByteOrderMark) line.remove_prefix(kByteOrderMark.size());
  auto& parser = impl_->parser;
  parser.reset();
  Handler& h = parser.handler();
  if (impl_->features != opts.features) {
    h.set_extra_fields(opts.features ? opts.features->fields : std::vector<std::string>());
    impl_->features = opts.features;
  }
  h.reset();
  error_code ec;
  const size_t used = parser.write_some(false, line.data(), line.size(), ec);
  if (ec) {
    // Boost reports bad UTF-8 as a plain syntax error; say what it was.
    if (!is_valid_utf8(line)) return fail(failure, Reason::not_json, {}, "invalid UTF-8");
    // Boost.JSON also stops at its own limits on text that is JSON (depth, exponents
    // beyond int, lone surrogate escapes): the scanner, which has none, decides.
    h.reset();
    if (!impl_->scanner.scan(line, h, &impl_->scanner_error))
      return fail(failure, Reason::not_json, {}, impl_->scanner_error);
  } else if (used != line.size()) {  // write_some stops after the first value and its whitespace
    return fail(failure, Reason::not_json, {}, "extra data after the JSON value");
  }
  if (!h.top_is_object()) return fail(failure, Reason::not_object, {}, "expected a JSON object");
  for (int f = 0; f < kFieldCount; ++f)
    if (h.field(f).count > 1)
      return fail(failure, Reason::duplicate_field, kFieldNames[f], "key appears more than once");

  EventTime time;
  int64_t cents = 0;
  if (!check_id(h, kEventId, kMaxEventIdBytes, failure)) return false;
  if (!check_id(h, kCustomerId, kMaxCustomerIdBytes, failure)) return false;
  if (!check_time(h, &time, failure)) return false;
  if (!check_id(h, kEventType, 0, failure)) return false;
  if (!check_amount(h, &cents, failure)) return false;
  if (time.ns > opts.max_event_ns)
    return fail(failure, Reason::future, kFieldNames[kEventTime], "ahead of the allowed clock skew");
  fill_event(h, time, cents, out);
  if (opts.features) fill_feature_inputs(h, *opts.features, out);
  return true;
}

}  // namespace streamscore
