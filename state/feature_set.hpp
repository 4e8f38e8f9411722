// The features an engine computes, as declared by `[[feature]]` tables (or today's three
// when none is declared), validated, in config order. Pure data: the shards compute the
// values (shard_state), the config loader builds the set, the model layer matches a
// model's schema against it. Its canonical text is part of the state: a state built with
// other definitions is refused (the name of the first feature that differs is given).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

enum class Aggregation : uint8_t { count, sum, avg, min, max };

std::string_view aggregation_name(Aggregation a);
// false when `text` names no aggregation.
bool parse_aggregation(std::string_view text, Aggregation* out);

// Window lengths are counted in 5-minute windows (ticks).
constexpr int64_t kMinFeatureWindows = 1;             // 5 minutes
constexpr int64_t kMaxFeatureWindows = 90 * 24 * 12;  // 90 days
constexpr int kMaxFeatureScale = 6;
constexpr std::size_t kMaxFeatures = 64;
constexpr std::size_t kMaxFeatureNameBytes = 64;

// "5m", "1h", "24h", "7d", "90d" (one number and one unit: m, h or d). Fails with a message
// naming the rule broken when the text is not a multiple of 5 minutes from 5m to 90d.
Status parse_feature_window(std::string_view text, int64_t* windows);
// The shortest spelling in the largest unit that divides it: 12 -> "1h", 288 -> "1d".
std::string format_feature_window(int64_t windows);

struct FeatureSpec {
  std::string name;  // [a-z][a-z0-9_]{0,63}
  Aggregation aggregation = Aggregation::count;
  std::vector<std::string> event_types;  // empty: every event type
  std::string field = "amount";          // the aggregated number (ignored by count)
  int64_t window = 0;                    // in 5-minute windows
  int scale = 2;                         // decimals kept of the field's values (count: 0)
  bool uses_field() const { return aggregation != Aggregation::count; }
  // "aggregation=sum event_types=[transaction] field=amount scale=2 window=30d": two
  // specs compute the same values iff their definitions are equal (event types sorted
  // and deduplicated; field and scale left out for count).
  std::string definition() const;
};

// A feature's value at a tick: an integer in units of 10^-scale (count: scale 0).
// `present` is false only for min/max over no contributing event (printed null).
struct FeatureValue {
  int64_t scaled = 0;
  bool present = true;
  friend bool operator==(const FeatureValue& a, const FeatureValue& b) {
    return a.present == b.present && (!a.present || a.scaled == b.scaled);
  }
  friend bool operator!=(const FeatureValue& a, const FeatureValue& b) { return !(a == b); }
};

// The value as an item prints it: the shortest exact decimal (842.5, 70.21, 3), or null.
void append_feature_value(std::string& out, const FeatureValue& value, int scale);
// The value as a model reads it (NaN, XGBoost's missing value, when absent).
float feature_value_float(const FeatureValue& value, int scale);

class FeatureSet {
 public:
  // Today's three: total_txn_30d, total_amount_30d, avg_amount_30d.
  static FeatureSet defaults();
  // Validates every spec; the error names the feature (by name, or by position when the
  // name itself is bad) and the key: `feature "txn_1h": window "7m" is not a multiple
  // of 5m`. An empty list is an error (no declaration means defaults(), the caller's choice).
  static Status make(std::vector<FeatureSpec> specs, FeatureSet* out);

  const std::vector<FeatureSpec>& specs() const { return specs_; }
  std::size_t size() const { return specs_.size(); }
  // Position of the feature named `name`, or -1.
  int index_of(std::string_view name) const;
  // The longest window: the horizon of expiry, dedup forgetting and kept state.
  int64_t horizon_windows() const { return horizon_windows_; }
  // True when the specs are defaults()'s (the engine's fast path, today's output).
  bool is_default() const { return is_default_; }
  // One line per feature, "name: definition", in order: stored with the state.
  std::string canonical() const;
  // Empty when `stored` (a canonical() text) describes this set; else names the first
  // feature that differs, is missing or was added, for the refusal's message.
  std::string difference_from(std::string_view stored) const;

 private:
  std::vector<FeatureSpec> specs_;
  int64_t horizon_windows_ = 0;
  bool is_default_ = false;
};

}  // namespace streamscore
