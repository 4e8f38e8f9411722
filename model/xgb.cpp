#include "model/xgb.hpp"

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>

namespace streamscore {

namespace {

// XGBoost's message, first line only: the rest is its stack trace and a parameter's help
// text, which would spread one refusal over a dozen log lines and HTTP answers.
std::string last_error_line() {
  std::string text = XGBGetLastError();
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == ':')) text.pop_back();
  return text;
}

// `call` is the call's text: named by its function, without the arguments.
Status xgb_error(const char* call) {
  const std::string text(call);
  return Status::invalid_argument("xgboost " + text.substr(0, text.find('(')) + ": " + last_error_line());
}

#define XGB_CHECK(call)                       \
  do {                                        \
    if ((call) != 0) return xgb_error(#call); \
  } while (0)

}  // namespace

DMatrix::~DMatrix() {
  if (handle_) XGDMatrixFree(handle_);
}

DMatrix& DMatrix::operator=(DMatrix&& o) noexcept {
  if (this != &o) {
    if (handle_) XGDMatrixFree(handle_);
    handle_ = std::exchange(o.handle_, nullptr);
  }
  return *this;
}

Status DMatrix::from_dense(const std::vector<float>& values, std::size_t rows, std::size_t cols,
                           const std::vector<float>& labels, int nthread, DMatrix* out) {
  if (values.size() != rows * cols || labels.size() != rows)
    return Status::invalid_argument("DMatrix: " + std::to_string(values.size()) + " values and " +
                                    std::to_string(labels.size()) + " labels for " + std::to_string(rows) +
                                    " rows of " + std::to_string(cols));
  DMatrix m;
  DMatrixHandle h = nullptr;
  if (XGDMatrixCreateFromMat_omp(values.data(), rows, cols, NAN, &h, nthread) != 0)
    return xgb_error("XGDMatrixCreateFromMat_omp");
  m.handle_ = h;
  if (XGDMatrixSetFloatInfo(h, "label", labels.data(), rows) != 0) return xgb_error("XGDMatrixSetFloatInfo");
  *out = std::move(m);
  return Status::ok();
}

Booster::~Booster() {
  if (handle_) XGBoosterFree(handle_);
}

Booster& Booster::operator=(Booster&& o) noexcept {
  if (this != &o) {
    if (handle_) XGBoosterFree(handle_);
    handle_ = std::exchange(o.handle_, nullptr);
  }
  return *this;
}

Status Booster::train(const DMatrix& data, const TrainParams& params, const std::vector<std::string>& feature_names,
                      Booster* out) {
  Booster b;
  DMatrixHandle dmats[] = {data.handle()};
  XGB_CHECK(XGBoosterCreate(dmats, 1, &b.handle_));
  const std::pair<const char*, std::string> settings[] = {
      {"objective", "binary:logistic"},
      {"tree_method", "hist"},
      {"base_score", "0.5"},
      {"max_depth", std::to_string(params.max_depth)},
      {"eta", std::to_string(params.eta)},
      {"seed", std::to_string(params.seed)},
      {"nthread", std::to_string(params.nthread)},
      {"validate_parameters", "1"},
  };
  for (const auto& [key, value] : settings) XGB_CHECK(XGBoosterSetParam(b.handle_, key, value.c_str()));
  std::vector<const char*> names;
  for (const auto& n : feature_names) names.push_back(n.c_str());
  XGB_CHECK(XGBoosterSetStrFeatureInfo(b.handle_, "feature_name", names.data(), names.size()));
  for (int i = 0; i < params.rounds; ++i) XGB_CHECK(XGBoosterUpdateOneIter(b.handle_, i, data.handle()));
  *out = std::move(b);
  return Status::ok();
}

Status Booster::load_json(const std::string& bytes, int nthread, Booster* out) {
  Booster b;
  XGB_CHECK(XGBoosterCreate(nullptr, 0, &b.handle_));
  XGB_CHECK(XGBoosterLoadModelFromBuffer(b.handle_, bytes.data(), bytes.size()));
  XGB_CHECK(XGBoosterSetParam(b.handle_, "nthread", std::to_string(nthread).c_str()));
  *out = std::move(b);
  return Status::ok();
}

Status Booster::save_json(std::string* out) const {
  bst_ulong len = 0;
  const char* data = nullptr;
  XGB_CHECK(XGBoosterSaveModelToBuffer(handle_, R"({"format":"json"})", &len, &data));
  out->assign(data, len);  // XGBoost's buffer is only valid until its next call
  return Status::ok();
}

Status Booster::num_features(std::size_t* out) const {
  bst_ulong n = 0;
  XGB_CHECK(XGBoosterGetNumFeature(handle_, &n));
  *out = n;
  return Status::ok();
}

Status Booster::feature_names(std::vector<std::string>* out) const {
  bst_ulong n = 0;
  const char** names = nullptr;
  XGB_CHECK(XGBoosterGetStrFeatureInfo(handle_, "feature_name", &n, &names));
  out->assign(names, names + n);
  return Status::ok();
}

Status Booster::predict(const float* values, std::size_t rows, std::size_t cols, std::vector<float>* out) const {
  out->clear();
  if (rows == 0) return Status::ok();
  // __array_interface__ of the row-major float32 matrix ("<f4": little-endian float).
  char array[160];
  std::snprintf(array, sizeof array,
                R"({"data":[%llu,true],"shape":[%zu,%zu],"strides":[%zu,4],"typestr":"<f4","version":3})",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(values)), rows, cols, cols * sizeof(float));
  // The full configuration 1.7 requires: value predictions over every tree, NaN = missing.
  static const char* kConfig = R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,)"
                               R"("strict_shape":false,"missing":NaN,"cache_id":0})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  XGB_CHECK(XGBoosterPredictFromDense(handle_, array, kConfig, nullptr, &shape, &dim, &result));
  bst_ulong n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  if (n != rows)
    return Status::invalid_argument("xgboost returned " + std::to_string(n) + " predictions for " +
                                    std::to_string(rows) + " rows");
  out->assign(result, result + n);  // thread-local buffer: copy before the next call
  return Status::ok();
}

std::string xgboost_version() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace streamscore
