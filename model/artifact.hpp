// A versioned model artifact: DIR/high_value_customer_model_vN.json (the XGBoost JSON
// model) and its sidecar DIR/high_value_customer_model_vN.meta.json (ModelMeta).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "model/features.hpp"
#include "model/xgb.hpp"

namespace streamscore {

struct ModelMeta {
  int version = 0;                           // N of vN
  std::string training_date;                 // UTC, YYYY-MM-DDTHH:MM:SSZ (wall clock)
  std::vector<ModelFeature> feature_schema;  // the features read, in column order
  std::string label_definition;              // the label in words (see docs/semantics.md)
  std::string label_kind;                    // "top_fraction" | "min_amount"
  double label_top_fraction = 0;             // label_kind == top_fraction
  int64_t label_min_amount_cents = 0;        // label_kind == min_amount
  int64_t label_horizon_days = 30;
  std::string first_event_time, last_event_time;  // accepted events of the log
  std::string first_cut, last_cut;                // all cuts that got rows
  std::string first_validation_cut;               // cuts from here on are held out
  int64_t cut_every_seconds = 86400;
  uint64_t cuts_train = 0, cuts_validation = 0;
  uint64_t rows_train = 0, rows_validation = 0;
  uint64_t positives_train = 0, positives_validation = 0;
  double validation_auc = 0;
  double validation_logloss = 0;
  TrainParams params;
  std::string xgboost_version;
  std::string sha256;  // of the artifact bytes

  std::string version_name() const { return "v" + std::to_string(version); }
};

std::string artifact_file_name(int version);  // high_value_customer_model_vN.json
std::string meta_file_name(int version);      // high_value_customer_model_vN.meta.json

// The sidecar as pretty-enough JSON (one key per line), keys in a fixed order.
// `feature_schema` is [{"name": "...", "definition": "..."}, ...], or, for a model of the
// default features in their order, ["total_txn_30d", "total_amount_30d", "avg_amount_30d"]
// (the form of the sidecars before declared features: their bytes do not change).
std::string render_meta(const ModelMeta& meta);
// Parses a sidecar; a missing or mistyped key is a corruption naming the key. A name
// alone in `feature_schema` means the default feature of that name, with its default
// definition; a name alone that is no default feature is a corruption.
Status parse_meta(const std::string& text, ModelMeta* out);

// A model ready to score: its metadata, its booster, and where its columns are in the
// items of the engine it was loaded for.
struct LoadedModel {
  ModelMeta meta;
  Booster booster;
  FeatureColumns columns;
  std::size_t engine_feature_count = 0;  // the size of the set `columns` index into
};

// Loads DIR's vN and checks it for an engine computing `engine_features`, refusing (with
// an error naming the mismatch): a missing or unreadable sidecar, a sidecar for another
// version, a feature the engine does not define or defines otherwise (the error names it
// and both definitions), an artifact whose sha256 differs from the sidecar's, an artifact
// whose structure is not a model the engine can run (validate_model_json; every path
// that activates or loads a model comes through here), an artifact XGBoost cannot load,
// or a booster whose feature count or names differ from the sidecar's schema.
Status load_model(const std::string& dir, int version, int nthread, const FeatureSet& engine_features,
                  LoadedModel* out);

// The largest file of a models directory that is read: a model is read whole into
// memory (and parsed twice), so a huge or sparse file placed there by mistake or on
// purpose must be refused before it exhausts the daemon's memory. XGBoost JSON models of
// thousands of deep trees stay far below it.
constexpr std::size_t kMaxModelFileBytes = 256u << 20;  // 256 MiB

// Reads a whole regular file of at most `max_bytes`; Status::not_found when it does not
// exist, Status::invalid_argument naming both sizes when it is larger.
Status read_file(const std::string& path, std::string* out, std::size_t max_bytes = kMaxModelFileBytes);
// Writes `bytes` to `path` through a temporary file, fsync and rename, so that a reader
// sees the old content or the new one, never a part.
Status write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace streamscore
