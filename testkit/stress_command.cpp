// `streamscore-stress --scenario NAME` (also `streamscore stress`): load against the real
// engine and store, ending with the invariant check; exit 1 when anything was lost or
// double counted.
#include "testkit/stress_command.hpp"

#include "app/common.hpp"
#include "common/spawn.hpp"
#include "testkit/stress.hpp"

namespace streamscore {

namespace {

struct StressArgs {
  StressOptions options;
  bool json = false;
  bool no_verify = false;
  bool checkpoint_given = false;
};

int stress(StressArgs& args) {
  StressOptions o = args.options;
  // A daemon killed before its first checkpoint would only start over: crash-restart
  // commits often unless told otherwise.
  if (o.scenario == "crash-restart" && !args.checkpoint_given) o.checkpoint_interval_ms = 20;
  o.verify = !args.no_verify;
  if (o.binary.empty()) o.binary = program_beside_this_one("streamscore");  // the daemon crash-restart runs
  StressReport report;
  const Status s = run_stress(o, &report);
  if (!s.is_ok()) {
    print_error("stress", s.message());
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  print_stress_report(report, args.json);
  return report.first_difference.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void add_stress_options(CLI::App* cmd, int* exit_code) {
  auto args = std::make_shared<StressArgs>();
  StressOptions& o = args->options;
  std::string names;
  for (const auto& n : stress_scenarios()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--scenario", o.scenario, "one of: " + names)->capture_default_str();
  cmd->add_option("--rate", o.rate, "records/s offered (burst: the base rate); 0 = as fast as possible")
      ->capture_default_str();
  cmd->add_option("--duration", o.duration_s, "seconds at the offered rate (sets the record count)")
      ->capture_default_str();
  cmd->add_option("--events", o.events, "records to offer instead of rate x duration");
  cmd->add_option("--customers", o.customers, "simulated customers")->capture_default_str();
  cmd->add_option("--days", o.days, "simulated days the records spread over")->capture_default_str();
  cmd->add_option("--seed", o.seed, "generator seed")->capture_default_str();
  cmd->add_option("--state", o.state_dir, "state directory, empty or absent (default: a temp dir, removed)");
  cmd->add_option("--shards", o.shards, "engine shards")->capture_default_str();
  cmd->add_option("--threads", o.threads, "engine threads (0 = cores)")->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "records per batch (0 = ~10 ms at the rate)");
  cmd->add_option("--checkpoint-ms", o.checkpoint_interval_ms, "checkpoint interval (crash-restart: 20)")
      ->capture_default_str()
      ->each([args](const std::string&) { args->checkpoint_given = true; });
  cmd->add_option("--kills", o.kills, "crash-restart: SIGKILLs before the daemon may finish")->capture_default_str();
  cmd->add_option("--binary", o.binary,
                  "the streamscore binary crash-restart and model-swap run (default: the one beside this program)");
  cmd->add_option("--daily-csv", o.daily_csv, "write one row per simulated day (bench/simulate.sh)");
  cmd->add_flag("--no-verify", args->no_verify, "skip the invariant check (it keeps every event in memory)");
  cmd->add_flag("--json", args->json, "print the report as one JSON object");
  cmd->footer(
      "Scenarios: steady (the generator's defaults), hot-keys (1% of the customers get half\n"
      "the events), burst (10x the rate for 0.2 s of every 2 s), duplicate-storm (50%\n"
      "redeliveries), late-storm (20% of the events 1..48 hours late), malformed-flood (30%\n"
      "malformed records), crash-restart (a `run` daemon on a file source, killed with SIGKILL\n"
      "--kills times and resumed; --rate only sizes the log, the daemon reads at full speed),\n"
      "model-swap (two models from `train`, swapped and rolled back at every checkpoint).\n"
      "Latency: from handing a batch to the engine to the commit of the first checkpoint that\n"
      "covers it (the record is then durable). Invariant: the counters balance and equal, with\n"
      "the exported items, a brute-force recomputation of the same generated stream; the\n"
      "first difference is named and the exit code is 1.\n"
      "Examples:\n"
      "  streamscore stress --scenario steady --rate 50000 --duration 10\n"
      "  streamscore stress --scenario hot-keys --customers 100000 --json\n"
      "  streamscore stress --scenario crash-restart --kills 6");
  cmd->callback([args, exit_code] { *exit_code = stress(*args); });
}

}  // namespace streamscore
