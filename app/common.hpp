// Pieces the subcommands share: exit codes, opening the store, engine options from
// config, the progress line, and the end-of-run summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/engine.hpp"
#include "actors/metrics.hpp"
#include "config/config.hpp"
#include "io/generator.hpp"
#include "state/store.hpp"

namespace streamscore {

// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Opens the configured backend ("rocksdb" at `path`, or "memory").
Status open_store(const std::string& backend, const std::string& path,
                  std::unique_ptr<StateStore>* out);

EngineOptions engine_options_from(const Config& config);
GeneratorOptions generator_options_from(const SourceConfig& source);

// A progress line on stderr, only when stderr is a terminal, at most 4 times a second.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  void update(const EngineMetrics& metrics);
  void done();

 private:
  std::string label_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

// Prints the counters (and throughput) of a finished run to stdout, as text or JSON.
void print_summary(const char* command, const RunStats& stats, double seconds, bool as_json);

void print_error(const char* command, const std::string& message);

}  // namespace streamscore
