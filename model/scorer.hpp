// Batched scoring with a loaded model (state/score_encoding.hpp writes a score into an item).
#pragma once

#include <string>
#include <vector>

#include "model/artifact.hpp"
#include "model/features.hpp"
#include "state/score_encoding.hpp"

namespace streamscore {

// One XGBoosterPredictFromDense call for the whole batch. Every row has one value per
// column of the model (feature_row with `model.columns`); another width is refused.
inline Status score_rows(const LoadedModel& model, const std::vector<FeatureRow>& rows, std::vector<float>* scores) {
  const std::size_t width = model.columns.size();
  std::vector<float> dense;
  dense.reserve(rows.size() * width);
  for (const FeatureRow& row : rows) {
    if (row.size() != width)
      return Status::invalid_argument("a row of " + std::to_string(row.size()) + " values for a model of " +
                                      std::to_string(width) + " features");
    dense.insert(dense.end(), row.begin(), row.end());
  }
  return model.booster.predict(dense.empty() ? nullptr : dense.data(), rows.size(), width, scores);
}

// Scores items by their values (item_feature_values: the engine's set order), each read
// through the model's columns. Items of another width than the set the model was checked
// against are refused: its columns would read the wrong values.
inline Status score_items(const LoadedModel& model, const std::vector<std::vector<FeatureValue>>& items,
                          std::vector<float>* scores) {
  std::vector<FeatureRow> rows;
  rows.reserve(items.size());
  for (const auto& values : items) {
    if (values.size() != model.engine_feature_count)
      return Status::invalid_argument("an item of " + std::to_string(values.size()) +
                                      " features for a model checked against " +
                                      std::to_string(model.engine_feature_count));
    rows.push_back(feature_row(values.data(), model.columns));
  }
  return score_rows(model, rows, scores);
}

}  // namespace streamscore
