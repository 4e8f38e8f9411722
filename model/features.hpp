// The features as a model sees them: which of the engine's features a model reads (its
// schema: names and definitions, in column order), where each column's value sits in an
// item, and the float row of an item. Scoring and training both build rows with
// feature_row() from item_feature_values(), so a model sees in production exactly the
// numbers it was trained on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "state/feature_set.hpp"

namespace streamscore {

struct CustomerState;

// One column of a model: the feature's name and its definition (FeatureSpec::definition()).
struct ModelFeature {
  std::string name;
  std::string definition;
  friend bool operator==(const ModelFeature& a, const ModelFeature& b) {
    return a.name == b.name && a.definition == b.definition;
  }
  friend bool operator!=(const ModelFeature& a, const ModelFeature& b) { return !(a == b); }
};

// The features `names` of `engine`, in that order (empty `names`: every feature, in the
// set's order). An unknown name (the error lists the defined ones) or a repeated one is
// invalid_argument.
Status select_model_features(const FeatureSet& engine, const std::vector<std::string>& names,
                             std::vector<ModelFeature>* out);

// Where a model's column is in an item's values, and that feature's scale.
struct FeatureColumn {
  std::size_t index = 0;
  int scale = 0;
};
using FeatureColumns = std::vector<FeatureColumn>;

// The columns of a model whose schema is `schema` in an engine computing `engine`:
// refused (invalid_argument) when a feature is not defined in the engine, or is defined
// otherwise; the error names the feature and both definitions. Resolved once, when a
// model is loaded: rows are then built without looking names up.
Status resolve_feature_columns(const std::vector<ModelFeature>& schema, const FeatureSet& engine, FeatureColumns* out);

// A model's float row: one value per column, in the model's column order.
using FeatureRow = std::vector<float>;

// The row of an item whose values (the engine's set order) start at `item_values`: each
// column's value through feature_value_float (a null min/max is NaN, XGBoost's missing
// value). The columns were resolved against that set (resolve_feature_columns).
FeatureRow feature_row(const FeatureValue* item_values, const FeatureColumns& columns);

// The values of the item the engine last wrote for `customer`, in the engine's set order:
// what scoring and training rows are built from.
std::vector<FeatureValue> item_feature_values(const CustomerState& customer);

// The default set's values of an item with these totals: the count, the sum and the
// rounded average, in cents (an export's numbers, read back by tests and benches).
std::vector<FeatureValue> default_item_values(int64_t txn_count, int64_t cents);

}  // namespace streamscore
