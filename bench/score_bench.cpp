// score_bench: batched scoring throughput and single-row latency of a model artifact.
//
//   score_bench --models DIR --version N [--rows 1000000] [--batch 8192] [--nthread 2]
//
// Rows are synthetic but plausible feature rows (counts 0..200, amounts 0..20000),
// generated once from a fixed seed. Prints one JSON line:
//   {"rows":..,"batch":..,"nthread":..,"batched_rows_per_second":..,
//    "single_row_p50_us":..,"single_row_p99_us":..}
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/artifact.hpp"
#include "model/scorer.hpp"

using namespace streamscore;

int main(int argc, char** argv) {
  std::string dir;
  int version = 0, nthread = 2;
  std::size_t rows = 1'000'000, batch = 8192, single = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--models")
      dir = argv[i + 1];
    else if (a == "--version")
      version = std::atoi(argv[i + 1]);
    else if (a == "--rows")
      rows = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--batch")
      batch = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--nthread")
      nthread = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "score_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (dir.empty() || version <= 0 || batch == 0) {
    std::fprintf(stderr, "usage: score_bench --models DIR --version N [--rows N] [--batch N] [--nthread N]\n");
    return 2;
  }
  LoadedModel model;
  Status s = load_model(dir, version, nthread, FeatureSet::defaults(), &model);
  if (!s.is_ok()) {
    std::fprintf(stderr, "score_bench: %s\n", s.to_string().c_str());
    return 1;
  }
  std::mt19937_64 rng(42);
  std::vector<FeatureRow> data(rows);
  for (auto& r : data) {
    const int64_t count = static_cast<int64_t>(rng() % 200);
    const int64_t cents = count == 0 ? 0 : static_cast<int64_t>(rng() % 2'000'000);
    r = feature_row(default_item_values(count, cents).data(), model.columns);
  }
  std::vector<float> scores, chunk_scores;
  double checksum = 0;
  // Batched: the whole set in `batch`-row calls, scores copied out per call.
  std::vector<FeatureRow> chunk;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t begin = 0; begin < rows; begin += batch) {
    const std::size_t end = std::min(rows, begin + batch);
    chunk.assign(data.begin() + begin, data.begin() + end);
    if (!(s = score_rows(model, chunk, &chunk_scores)).is_ok()) {
      std::fprintf(stderr, "score_bench: %s\n", s.to_string().c_str());
      return 1;
    }
    for (float f : chunk_scores) checksum += f;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Single-row latency: one call per row.
  std::vector<double> micros;
  micros.reserve(single);
  for (std::size_t i = 0; i < single; ++i) {
    chunk.assign(1, data[i % rows]);
    const auto t0 = std::chrono::steady_clock::now();
    s = score_rows(model, chunk, &chunk_scores);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!s.is_ok()) return 1;
    checksum += chunk_scores[0];
  }
  std::sort(micros.begin(), micros.end());
  std::printf(
      "{\"rows\":%zu,\"batch\":%zu,\"nthread\":%d,\"trees\":%d,\"seconds\":%.3f,"
      "\"batched_rows_per_second\":%.0f,\"single_row_p50_us\":%.2f,\"single_row_p99_us\":%.2f,"
      "\"checksum\":%.3f}\n",
      rows, batch, nthread, model.meta.params.rounds, seconds, rows / seconds, micros[micros.size() / 2],
      micros[micros.size() * 99 / 100], checksum);
  return 0;
}
