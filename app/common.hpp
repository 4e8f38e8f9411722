// Pieces the subcommands share: exit codes, opening the store, engine options from
// config, the progress line, and the end-of-run summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/engine.hpp"
#include "config/config.hpp"
#include "io/generator.hpp"
#include "io/kafka_sink_probe.hpp"
#include "io/partitioned_layout.hpp"
#include "io/s3_client.hpp"
#include "model/log_replay.hpp"
#include "state/dynamodb_store.hpp"
#include "state/store.hpp"

namespace streamscore {

// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Opens the configured backend ("rocksdb" at `path`, or "memory").
Status open_store(const std::string& backend, const std::string& path, std::unique_ptr<StateStore>* out);

// Opens the backend `state` names: RocksDB at state.path, memory, or the DynamoDB table.
// `bulk_load`: a rebuild (`replay`). `read_only`: RocksDB opened for reading only
// (`export`; a table is read as it is). Bad DynamoDB settings and missing credentials are
// invalid_argument (exit 2); see exit_code_of.
Status open_store(const StateConfig& state, std::unique_ptr<StateStore>* out, bool bulk_load = false,
                  bool read_only = false);
DynamoDbOptions dynamodb_options_from(const StateConfig& state);

// `--state DIR` of replay, export and backfill: RocksDB at DIR, unless the config says
// state.backend = "dynamodb" (then the table). invalid_argument when DIR is missing.
Status state_from_args(const std::string& state_dir, StateConfig* state);

// The exit code of a failed open: 2 for DynamoDB settings or credentials (configuration),
// 1 otherwise (I/O, a locked or foreign state directory, a missing table).
inline int exit_code_of_open(const StateConfig& state, const Status& s) {
  return state.backend == "dynamodb" && s.is_invalid_argument() ? 2 : 1;
}

// Whether two paths name the same file: the same path once symlinks and ".." are
// resolved, or (both existing) the same device and inode, as a hard link is.
bool same_file(const std::string& a, const std::string& b);

// The file source, before anything starts: it exists and is a regular file or a FIFO.
// invalid_argument naming source.path otherwise (exit 2).
Status check_source_file(const std::string& path);

// An output (`output_key` = `output`) that is an input (`input_key` = `input`) or lies
// inside the RocksDB state directory `state_dir` ("" for none): invalid_argument naming
// both keys (exit 2). A dead letter written into its own source is read back as input:
// a following daemon would dead-letter its own dead letters until the disk is full.
Status check_output_path(const std::string& output_key, const std::string& output, const std::string& input_key,
                         const std::string& input, const std::string& state_dir);

// The event logs that --events names, in reading order: a file as given; s3://bucket/key
// that object; s3://bucket/prefix/ (or s3://bucket) every object under the prefix, in key
// order, or, when they lie in partition=N directories (Kafka Connect's layout), in the
// order of io/partitioned_layout.hpp with the partition of each; such a prefix must be
// the only --events. `*s3` is made from [s3] at the first URL. invalid_argument (a usage
// error): a missing file or object, an empty prefix, a bad URL, no credentials, a bad
// layout; io_error: the store did not answer.
Status event_logs_of(const std::vector<std::string>& events, const S3Config& config, std::unique_ptr<S3Client>* s3,
                     PartitionedLogs* out);
// The same for a command that reads on one clock (train, features): a partitioned
// layout is a usage error, because its partitions, read one after the other on one
// clock, would expire each other's records.
Status event_logs_of(const std::vector<std::string>& events, const S3Config& config, std::unique_ptr<S3Client>* s3,
                     std::vector<std::string>* out);

// The Kafka sinks (when the config has them) count into `kafka_sinks`; null: nowhere.
EngineOptions engine_options_from(const Config& config, KafkaSinkProbe* kafka_sinks);
GeneratorOptions generator_options_from(const SourceConfig& source);

// A progress line on stderr, only when stderr is a terminal, at most 4 times a second.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  void update(const RouterProbe& router);
  void update(const LogReplayCounts& counts);  // a replay without the engine's actors
  void done();

 private:
  void show(uint64_t read, uint64_t accepted, uint64_t duplicates, uint64_t dead_lettered, const std::string& more);

  std::string label_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

// Prints the counters (and throughput) of a finished run to stdout, as text or JSON.
void print_summary(const char* command, const RunStats& stats, double seconds, bool as_json);

void print_error(const char* command, const std::string& message);

// One summary line of the store's own counters (DynamoDB's requests, retries...), when it
// has any.
void print_store_counters(const StateStore& store);

}  // namespace streamscore
