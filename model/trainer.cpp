#include "model/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "model/features.hpp"
#include "state/format.hpp"

namespace streamscore {

namespace {

std::string instant(int64_t ns) {
  std::string s;
  append_instant_seconds(s, floor_div(ns, kNanosPerSecond));
  return s;
}

std::string amount_text(int64_t cents) {
  std::string s;
  append_cents(s, cents);
  return s;
}

}  // namespace

std::string label_definition(const TrainingSetOptions& o) {
  const std::string window =
      "the sum of the customer's accepted transaction amounts with event_time in "
      "[cut, cut + 30 days)";
  if (o.min_amount_cents >= 0)
    return "1 when " + window + " is at least " + amount_text(o.min_amount_cents) + ", else 0";
  char fraction[32];
  std::snprintf(fraction, sizeof fraction, "%g", o.top_fraction);
  return "1 when " + window + " is at least the amount of the ceil(n * " + fraction +
         ")-th of the cut's n active customers by that sum (descending; ties included) and "
         "above 0, else 0. Active: an item exists and its last_event_time is within the 30 "
         "days before the cut. Features: the customer's item as the engine serves it at the cut";
}

double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U: sum of the positives' (average, for ties) ranks.
  double positive_rank_sum = 0;
  uint64_t positives = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k)
      if (labels[order[k]] > 0.5f) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    i = j;
  }
  const uint64_t negatives = scores.size() - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double log_loss(const std::vector<float>& scores, const std::vector<float>& labels) {
  if (scores.empty()) return 0;
  double sum = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const double p = std::clamp(static_cast<double>(scores[i]), 1e-15, 1 - 1e-15);
    sum -= labels[i] > 0.5f ? std::log(p) : std::log(1 - p);
  }
  return sum / static_cast<double>(scores.size());
}

Status train_model(const TrainingSet& set, const TrainingSetOptions& set_options, const TrainerOptions& options,
                   TrainedModel* out) {
  const std::size_t cuts = set.cuts.size();
  if (cuts < 2)
    return Status::invalid_argument(
        "not enough history: " + std::to_string(cuts) +
        " labelled cut(s); training needs at least 2 cuts with a complete 30-day label window "
        "after them (a log of more than 32 days with daily cuts)");
  std::size_t validation_cuts =
      static_cast<std::size_t>(std::lround(static_cast<double>(cuts) * options.validation_fraction));
  validation_cuts = std::clamp<std::size_t>(validation_cuts, 1, cuts - 1);
  const int64_t first_validation_cut = set.cuts[cuts - validation_cuts];

  std::vector<ModelFeature> schema;
  Status s = select_model_features(options.features, options.feature_names, &schema);
  FeatureColumns columns;
  if (s.is_ok()) s = resolve_feature_columns(schema, options.features, &columns);
  if (!s.is_ok()) return s;
  // The columns index the engine's set: rows of another set would be read out of place.
  if (set.width != options.features.size())
    return Status::invalid_argument("the training rows hold " + std::to_string(set.width) +
                                    " features, the engine's set " + std::to_string(options.features.size()));
  std::vector<float> train_x, valid_x, train_y, valid_y;
  for (std::size_t i = 0; i < set.rows.size(); ++i) {
    const TrainingRow& r = set.rows[i];
    const bool validation = r.cut_tick >= first_validation_cut;
    auto& x = validation ? valid_x : train_x;
    const FeatureRow row = feature_row(set.values_of(i), columns);
    x.insert(x.end(), row.begin(), row.end());
    (validation ? valid_y : train_y).push_back(r.label);
  }
  const auto count_positive = [](const std::vector<float>& y) {
    return static_cast<uint64_t>(std::count(y.begin(), y.end(), 1.f));
  };
  const uint64_t train_positive = count_positive(train_y);
  if (train_positive == 0 || train_positive == train_y.size())
    return Status::invalid_argument("the training cuts have a single label class (" + std::to_string(train_positive) +
                                    " positives in " + std::to_string(train_y.size()) + " rows)");
  DMatrix train;
  if (!(s = DMatrix::from_dense(train_x, train_y.size(), columns.size(), train_y, options.params.nthread, &train))
           .is_ok())
    return s;
  std::vector<std::string> names;
  for (const ModelFeature& f : schema) names.push_back(f.name);
  Booster booster;
  if (!(s = Booster::train(train, options.params, names, &booster)).is_ok()) return s;
  std::vector<float> predictions;
  if (!(s = booster.predict(valid_x.data(), valid_y.size(), columns.size(), &predictions)).is_ok()) return s;
  TrainedModel m;
  if (!(s = booster.save_json(&m.artifact)).is_ok()) return s;

  ModelMeta& meta = m.meta;
  meta.training_date =
      instant(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count());
  meta.feature_schema = std::move(schema);
  meta.label_definition = label_definition(set_options);
  meta.label_kind = set_options.min_amount_cents >= 0 ? "min_amount" : "top_fraction";
  meta.label_top_fraction = set_options.top_fraction;
  meta.label_min_amount_cents = set_options.min_amount_cents;
  meta.label_horizon_days = 30;
  meta.first_event_time = instant(set.first_event_ns);
  meta.last_event_time = instant(set.last_event_ns);
  meta.cut_every_seconds = set_options.cut_every_windows * kWindowSeconds;
  meta.first_cut = instant(set.cuts.front() * kWindowNanos);
  meta.last_cut = instant(set.cuts.back() * kWindowNanos);
  meta.first_validation_cut = instant(first_validation_cut * kWindowNanos);
  meta.cuts_train = cuts - validation_cuts;
  meta.cuts_validation = validation_cuts;
  meta.rows_train = train_y.size();
  meta.rows_validation = valid_y.size();
  meta.positives_train = train_positive;
  meta.positives_validation = count_positive(valid_y);
  meta.validation_auc = roc_auc(predictions, valid_y);
  meta.validation_logloss = log_loss(predictions, valid_y);
  meta.params = options.params;
  meta.xgboost_version = xgboost_version();
  *out = std::move(m);
  return Status::ok();
}

}  // namespace streamscore
