// Batched scoring with a loaded model (state/score_encoding.hpp writes a score into an item).
#pragma once

#include <string>
#include <vector>

#include "model/artifact.hpp"
#include "model/features.hpp"
#include "state/score_encoding.hpp"

namespace streamscore {

// One XGBoosterPredictFromDense call for the whole batch.
inline Status score_rows(const LoadedModel& model, const std::vector<FeatureRow>& rows, std::vector<float>* scores) {
  static_assert(sizeof(FeatureRow) == kFeatureCount * sizeof(float), "rows must be dense");
  return model.booster.predict(rows.empty() ? nullptr : rows.front().data(), rows.size(), kFeatureCount, scores);
}

}  // namespace streamscore
