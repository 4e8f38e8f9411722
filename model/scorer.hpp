// Batched scoring with a loaded model, and how a score is written into an item.
#pragma once

#include <string>
#include <vector>

#include "model/artifact.hpp"
#include "model/features.hpp"

namespace streamscore {

// One XGBoosterPredictFromDense call for the whole batch.
inline Status score_rows(const LoadedModel& model, const std::vector<FeatureRow>& rows, std::vector<float>* scores) {
  static_assert(sizeof(FeatureRow) == kFeatureCount * sizeof(float), "rows must be dense");
  return model.booster.predict(rows.empty() ? nullptr : rows.front().data(), rows.size(), kFeatureCount, scores);
}

// The shortest decimal that reads back as the same float32 (what XGBoost computed):
// no digits invented by a double conversion, none lost by rounding to a fixed count.
void append_score(std::string& out, float score);

// Reads back `"score":S,"model_version":"vN"` from an item written with append_score
// (a restart keeps the scores). An item without them gives model_version 0. False when
// they are present but malformed.
bool read_score(const std::string& item_json, float* score, int32_t* model_version);

}  // namespace streamscore
