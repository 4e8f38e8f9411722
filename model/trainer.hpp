// Trains the high-value-customer model on a point-in-time training set: the latest
// cuts are held out as a time-based validation set; the artifact is the XGBoost JSON
// model, the metadata carries everything else (artifact.hpp).
#pragma once

#include <string>
#include <vector>

#include "model/artifact.hpp"
#include "model/training_set.hpp"
#include "model/xgb.hpp"

namespace streamscore {

struct TrainerOptions {
  TrainParams params;
  double validation_fraction = 0.2;              // of the cuts, the latest ones (at least one)
  FeatureSet features = FeatureSet::defaults();  // the engine's set: the training rows' values
  std::vector<std::string> feature_names;        // the model's columns, in order (empty: every feature)
};

struct TrainedModel {
  std::string artifact;  // XGBoost JSON model bytes
  ModelMeta meta;        // everything but version, sha256 (set when published)
};

// Fails when there are fewer than two labelled cuts, when the training part has a
// single class (XGBoost would learn a constant), or when `feature_names` names a feature
// that `features` does not define, or one twice (invalid_argument).
Status train_model(const TrainingSet& set, const TrainingSetOptions& set_options, const TrainerOptions& options,
                   TrainedModel* out);

// Area under the ROC curve (ties count half) and mean log loss (probabilities clipped
// to [1e-15, 1 - 1e-15]). AUC is 0.5 when one class is absent.
double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels);
double log_loss(const std::vector<float>& scores, const std::vector<float>& labels);

// Human text of the label definition written in the metadata.
std::string label_definition(const TrainingSetOptions& options);

}  // namespace streamscore
