// The engine's feature schema as the model sees it: names, order, and the float row of
// an item's features. Scoring and training both go through feature_row(), so a model
// sees in production exactly the numbers it was trained on.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace streamscore {

constexpr std::size_t kFeatureCount = 3;
using FeatureRow = std::array<float, kFeatureCount>;

// Names and order of the columns: the engine's schema. A model whose metadata lists
// anything else is refused.
const std::vector<std::string>& engine_feature_schema();

// The item's features as floats: the count, and the amounts in currency units (cents
// / 100, the values the item prints). avg is the item's rounded average.
FeatureRow feature_row(int64_t txn_count, int64_t cents);

}  // namespace streamscore
