#include "model/features.hpp"

#include <set>

#include "state/shard_state.hpp"

namespace streamscore {

namespace {

std::string defined_names(const FeatureSet& engine) {
  std::string out;
  for (const FeatureSpec& spec : engine.specs()) out += (out.empty() ? "" : ", ") + spec.name;
  return out;
}

}  // namespace

Status select_model_features(const FeatureSet& engine, const std::vector<std::string>& names,
                             std::vector<ModelFeature>* out) {
  std::vector<ModelFeature> schema;
  if (names.empty())
    for (const FeatureSpec& spec : engine.specs()) schema.push_back(ModelFeature{spec.name, spec.definition()});
  std::set<std::string> seen;
  for (const std::string& name : names) {
    const int index = engine.index_of(name);
    if (index < 0)
      return Status::invalid_argument("feature \"" + name + "\" is not defined (defined: " + defined_names(engine) +
                                      ")");
    if (!seen.insert(name).second) return Status::invalid_argument("feature \"" + name + "\" is named twice");
    schema.push_back(ModelFeature{name, engine.specs()[static_cast<std::size_t>(index)].definition()});
  }
  *out = std::move(schema);
  return Status::ok();
}

Status resolve_feature_columns(const std::vector<ModelFeature>& schema, const FeatureSet& engine, FeatureColumns* out) {
  FeatureColumns columns;
  for (const ModelFeature& feature : schema) {
    const int index = engine.index_of(feature.name);
    if (index < 0)
      return Status::invalid_argument("feature \"" + feature.name + "\" (model: " + feature.definition +
                                      ") is not defined in the engine (defined: " + defined_names(engine) + ")");
    const FeatureSpec& spec = engine.specs()[static_cast<std::size_t>(index)];
    if (spec.definition() != feature.definition)
      return Status::invalid_argument("feature \"" + feature.name + "\" is defined differently (model: " +
                                      feature.definition + "; engine: " + spec.definition() + ")");
    columns.push_back(FeatureColumn{static_cast<std::size_t>(index), spec.scale});
  }
  *out = std::move(columns);
  return Status::ok();
}

FeatureRow feature_row(const FeatureValue* item_values, const FeatureColumns& columns) {
  FeatureRow row;
  row.reserve(columns.size());
  for (const FeatureColumn& column : columns)
    row.push_back(feature_value_float(item_values[column.index], column.scale));
  return row;
}

// A declared set's values are kept as written; the default set's are its totals.
std::vector<FeatureValue> item_feature_values(const CustomerState& customer) {
  if (customer.declared.plan) {
    std::vector<FeatureValue> values(customer.declared.plan->outputs.size());
    for (std::size_t f = 0; f < values.size(); ++f) values[f] = customer.declared.written(f);
    return values;
  }
  return default_item_values(customer.written.txn_count, customer.written.cents);
}

std::vector<FeatureValue> default_item_values(int64_t txn_count, int64_t cents) {
  return {FeatureValue{txn_count}, FeatureValue{cents}, FeatureValue{average_cents(cents, txn_count)}};
}

}  // namespace streamscore
