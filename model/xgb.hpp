// RAII wrappers over the XGBoost C API (1.7): a booster and a dense DMatrix. Every
// call's failure becomes a Status carrying XGBGetLastError(). Thread counts are always
// explicit (XGBoost would otherwise take every core of a machine shared with the engine).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

// A dense row-major float matrix with optional labels, for training.
class DMatrix {
 public:
  DMatrix() = default;
  ~DMatrix();
  DMatrix(DMatrix&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  DMatrix& operator=(DMatrix&& o) noexcept;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;

  // `values` has rows * cols floats; `labels` has rows floats (0/1).
  static Status from_dense(const std::vector<float>& values, std::size_t rows, std::size_t cols,
                           const std::vector<float>& labels, int nthread, DMatrix* out);
  void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;
};

struct TrainParams {
  int rounds = 50;
  int max_depth = 4;
  double eta = 0.3;
  int seed = 0;
  int nthread = 1;
};

class Booster {
 public:
  Booster() = default;
  ~Booster();
  Booster(Booster&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  Booster& operator=(Booster&& o) noexcept;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;

  // binary:logistic, tree_method hist, base_score 0.5, fixed seed and nthread: the same
  // data and parameters give the same model bytes.
  static Status train(const DMatrix& data, const TrainParams& params, const std::vector<std::string>& feature_names,
                      Booster* out);
  // Loads an XGBoost JSON model from memory; `nthread` is used for prediction.
  static Status load_json(const std::string& bytes, int nthread, Booster* out);

  Status save_json(std::string* out) const;
  Status num_features(std::size_t* out) const;
  Status feature_names(std::vector<std::string>* out) const;

  // Probabilities for `rows` dense rows of `cols` floats (row-major, NaN = missing),
  // in one XGBoosterPredictFromDense call. The result is copied out of XGBoost's
  // thread-local buffer into `out`.
  Status predict(const float* values, std::size_t rows, std::size_t cols, std::vector<float>* out) const;

  bool loaded() const { return handle_ != nullptr; }

 private:
  void* handle_ = nullptr;
};

// "1.7.4"
std::string xgboost_version();

}  // namespace streamscore
