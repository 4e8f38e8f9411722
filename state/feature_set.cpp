#include "state/feature_set.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "common/time.hpp"

namespace streamscore {

namespace {

constexpr std::string_view kAggregationNames[] = {"count", "sum", "avg", "min", "max"};
constexpr int64_t kWindowsPerHour = 3600 / kWindowSeconds;
constexpr int64_t kWindowsPerDay = 24 * kWindowsPerHour;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxFeatureNameBytes || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; });
}

// A top-level key of the event, not one of the four the contract gives a type that is not a number.
Status check_field(const std::string& field) {
  if (field.empty() || field.size() > kMaxFeatureNameBytes)
    return Status::invalid_argument("field must be 1 to " + std::to_string(kMaxFeatureNameBytes) + " bytes");
  for (std::string_view reserved : {"event_id", "customer_id", "event_type", "event_time"})
    if (field == reserved) return Status::invalid_argument("field \"" + field + "\" is not a number");
  for (unsigned char ch : field)
    if (ch < 0x20 || ch == '"' || ch == '\\')
      return Status::invalid_argument("field must not hold quotes, backslashes or control characters");
  return Status::ok();
}

Status check_spec(FeatureSpec& spec) {
  if (spec.window < kMinFeatureWindows || spec.window > kMaxFeatureWindows)
    return Status::invalid_argument("window must be from 5m to 90d");
  for (const std::string& type : spec.event_types)
    if (type.empty() || type.size() > 128)
      return Status::invalid_argument("event_types entries must be 1 to 128 bytes");
  std::sort(spec.event_types.begin(), spec.event_types.end());
  spec.event_types.erase(std::unique(spec.event_types.begin(), spec.event_types.end()), spec.event_types.end());
  if (!spec.uses_field()) {
    spec.field.clear();
    spec.scale = 0;
    return Status::ok();
  }
  if (spec.scale < 0 || spec.scale > kMaxFeatureScale)
    return Status::invalid_argument("scale must be from 0 to " + std::to_string(kMaxFeatureScale));
  return check_field(spec.field);
}

std::vector<FeatureSpec> default_specs() {
  const std::vector<std::string> txn = {"transaction"};
  const int64_t days30 = 30 * kWindowsPerDay;
  return {FeatureSpec{"total_txn_30d", Aggregation::count, txn, "", days30, 0},
          FeatureSpec{"total_amount_30d", Aggregation::sum, txn, "amount", days30, 2},
          FeatureSpec{"avg_amount_30d", Aggregation::avg, txn, "amount", days30, 2}};
}

}  // namespace

std::string_view aggregation_name(Aggregation a) {
  return kAggregationNames[static_cast<std::size_t>(a)];
}

bool parse_aggregation(std::string_view text, Aggregation* out) {
  for (std::size_t i = 0; i < std::size(kAggregationNames); ++i)
    if (text == kAggregationNames[i]) {
      *out = static_cast<Aggregation>(i);
      return true;
    }
  return false;
}

Status parse_feature_window(std::string_view text, int64_t* windows) {
  const auto bad = [&](const std::string& why) {
    return Status::invalid_argument("window \"" + std::string(text) + "\" " + why);
  };
  if (text.size() < 2) return bad("is not a number and a unit (m, h or d), like 5m, 1h or 7d");
  int64_t per_unit = 0;
  switch (text.back()) {
    case 'm':
      per_unit = 0;
      break;
    case 'h':
      per_unit = kWindowsPerHour;
      break;
    case 'd':
      per_unit = kWindowsPerDay;
      break;
    default:
      return bad("is not a number and a unit (m, h or d), like 5m, 1h or 7d");
  }
  int64_t number = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || (i == 0 && text[i] == '0' && text.size() > 2))
      return bad("is not a number and a unit (m, h or d), like 5m, 1h or 7d");
    number = number * 10 + (text[i] - '0');
    if (number > 1'000'000) return bad("is longer than 90d");
  }
  if (per_unit == 0) {
    if (number % (kWindowSeconds / 60) != 0) return bad("is not a multiple of 5m");
    *windows = number / (kWindowSeconds / 60);
  } else {
    *windows = number * per_unit;
  }
  if (*windows < kMinFeatureWindows) return bad("is shorter than 5m");
  if (*windows > kMaxFeatureWindows) return bad("is longer than 90d");
  return Status::ok();
}

std::string format_feature_window(int64_t windows) {
  if (windows % kWindowsPerDay == 0) return std::to_string(windows / kWindowsPerDay) + "d";
  if (windows % kWindowsPerHour == 0) return std::to_string(windows / kWindowsPerHour) + "h";
  return std::to_string(windows * (kWindowSeconds / 60)) + "m";
}

std::string FeatureSpec::definition() const {
  std::vector<std::string> types = event_types;
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  std::string out = "aggregation=" + std::string(aggregation_name(aggregation)) + " event_types=[";
  for (std::size_t i = 0; i < types.size(); ++i) out += (i > 0 ? "," : "") + types[i];
  out += "]";
  if (uses_field()) out += " field=" + field + " scale=" + std::to_string(scale);
  return out + " window=" + format_feature_window(window);
}

void append_feature_value(std::string& out, const FeatureValue& value, int scale) {
  if (!value.present) {
    out.append("null");
    return;
  }
  // Magnitude as unsigned so that INT64_MIN does not overflow.
  const uint64_t mag = value.scaled < 0 ? 0 - static_cast<uint64_t>(value.scaled) : static_cast<uint64_t>(value.scaled);
  uint64_t unit = 1;
  for (int i = 0; i < scale; ++i) unit *= 10;
  if (value.scaled < 0) out.push_back('-');
  out.append(std::to_string(mag / unit));
  uint64_t frac = mag % unit;
  if (frac == 0) return;
  int digits = scale;
  while (frac % 10 == 0) {
    frac /= 10;
    --digits;
  }
  const std::string text = std::to_string(frac);
  out.push_back('.');
  out.append(static_cast<std::size_t>(digits) - text.size(), '0');
  out.append(text);
}

float feature_value_float(const FeatureValue& value, int scale) {
  if (!value.present) return std::numeric_limits<float>::quiet_NaN();
  double unit = 1;
  for (int i = 0; i < scale; ++i) unit *= 10;
  return static_cast<float>(static_cast<double>(value.scaled) / unit);
}

FeatureSet FeatureSet::defaults() {
  FeatureSet set;
  const Status s = make(default_specs(), &set);
  (void)s;  // the defaults are valid (tested)
  return set;
}

Status FeatureSet::make(std::vector<FeatureSpec> specs, FeatureSet* out) {
  if (specs.empty()) return Status::invalid_argument("no feature declared");
  if (specs.size() > kMaxFeatures)
    return Status::invalid_argument(std::to_string(specs.size()) + " features declared; at most " +
                                    std::to_string(kMaxFeatures));
  std::set<std::string> names;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    FeatureSpec& spec = specs[i];
    if (!valid_name(spec.name))
      return Status::invalid_argument("feature " + std::to_string(i + 1) + ": name \"" + spec.name +
                                      "\" must match [a-z][a-z0-9_]{0,63}");
    if (!names.insert(spec.name).second)
      return Status::invalid_argument("feature \"" + spec.name + "\": the name is declared twice");
    Status s = check_spec(spec);
    if (!s.is_ok()) return Status::invalid_argument("feature \"" + spec.name + "\": " + s.message());
  }
  FeatureSet set;
  set.specs_ = std::move(specs);
  for (const FeatureSpec& spec : set.specs_) set.horizon_windows_ = std::max(set.horizon_windows_, spec.window);
  const std::vector<FeatureSpec> defaults = default_specs();
  set.is_default_ =
      set.specs_.size() == defaults.size() &&
      std::equal(defaults.begin(), defaults.end(), set.specs_.begin(), [](const FeatureSpec& a, const FeatureSpec& b) {
        return a.name == b.name && a.definition() == b.definition();
      });
  *out = std::move(set);
  return Status::ok();
}

int FeatureSet::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string FeatureSet::canonical() const {
  std::string out;
  for (const FeatureSpec& spec : specs_) out += spec.name + ": " + spec.definition() + "\n";
  return out;
}

std::string FeatureSet::difference_from(std::string_view stored) const {
  std::vector<std::string_view> lines;
  while (!stored.empty()) {
    const std::size_t end = stored.find('\n');
    lines.push_back(stored.substr(0, end));
    stored = end == std::string_view::npos ? std::string_view() : stored.substr(end + 1);
  }
  const auto name_of = [](std::string_view line) { return std::string(line.substr(0, line.find(':'))); };
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const std::string mine = specs_[i].name + ": " + specs_[i].definition();
    if (i >= lines.size()) return specs_[i].name + " (not in the stored definitions)";
    if (lines[i] == mine) continue;
    if (name_of(lines[i]) == specs_[i].name)
      return specs_[i].name + " (stored: " + std::string(lines[i].substr(specs_[i].name.size() + 2)) +
             "; configured: " + specs_[i].definition() + ")";
    return specs_[i].name + " (stored in its place: " + name_of(lines[i]) + ")";
  }
  if (lines.size() > specs_.size()) return name_of(lines[specs_.size()]) + " (stored, no longer configured)";
  return std::string();
}

}  // namespace streamscore
