// `streamscore stress`: load scenarios against the real engine on a real RocksDB store,
// each ending with an invariant check against the reference model
// (testkit/reference_model.hpp). The command (testkit/stress_command.cpp), the tests
// (tests/test_stress.cpp) and the load simulation (bench/simulate.sh) drive this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "io/generator.hpp"
#include "messages/run_stats.hpp"

namespace streamscore {

// The scenarios, in the order `--help` lists them.
const std::vector<std::string>& stress_scenarios();

struct StressOptions {
  std::string scenario = "steady";
  int64_t rate = 20000;    // records/s offered (burst: the base rate); 0 = as fast as possible
  double duration_s = 10;  // wall time at the offered rate; sets the number of records
  int64_t events = 0;      // records to offer instead (0 = from rate x duration)
  int64_t customers = 10000;
  int64_t days = 45;  // simulated days the records spread over
  uint64_t seed = 42;
  std::string state_dir;  // empty: a temp dir, removed at the end
  int shards = 8;
  int threads = 0;             // CAF threads; 0 = cores
  std::size_t batch_size = 0;  // 0: ~10 ms of records at the rate (65536 when unpaced)
  int64_t checkpoint_interval_ms = 500;
  bool verify = true;  // the invariant check (needs memory for every accepted event)
  // The streamscore binary: crash-restart runs it as a daemon (and kills it `kills`
  // times), model-swap runs its `train`.
  std::string binary;
  int kills = 4;
  // Load simulation: one CSV row per simulated day (see bench/simulate.sh).
  std::string daily_csv;
};

struct LatencySummary {
  uint64_t samples = 0;  // records measured
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

struct StressReport {
  std::string scenario;
  GeneratorOptions generator;  // the simulated stream
  uint64_t records = 0;
  GeneratorCounts offered;  // what the records were: valid, late, duplicates, malformed
  double seconds = 0;       // first submit to the last commit
  double records_per_second = 0;
  LatencySummary latency;  // submit -> durable in a committed checkpoint
  uint64_t checkpoints = 0;
  uint64_t max_queued_records = 0;   // submitted but not yet through the window clock
  int64_t max_shard_mailbox = 0;     // deepest shard queue seen (batches sent, not applied; sampled per submit)
  uint64_t peak_rss_kb = 0;          // VmHWM at the end (in-process) / of the last daemon
  uint64_t median_rss_kb = 0;        // of the samples every 50 ms
  int kills = 0;                     // crash-restart: SIGKILLs delivered
  int swaps = 0;                     // model-swap: swaps and rollbacks under load
  uint64_t scores_checked = 0;       // model-swap: item scores recomputed with their model
  double last_recovery_seconds = 0;  // crash-restart: the last restart's state load
  RunStats stats;                    // the engine's counters (crash-restart: last daemon)
  bool verified = false;
  double verify_seconds = 0;
  std::string first_difference;  // "" when the invariant check passed
};

// Runs one scenario. A failed invariant check is not an error status: it is reported in
// `first_difference` (the command exits 1). Errors: I/O, a bad option (invalid_argument).
Status run_stress(const StressOptions& options, StressReport* report);

void print_stress_report(const StressReport& report, bool as_json);

}  // namespace streamscore
