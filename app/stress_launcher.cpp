// `streamscore stress ARGS`: runs `streamscore-stress ARGS`, the test kit's harness built
// beside this binary, so that the daemon carries no test code (docs/architecture.md).
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "common/spawn.hpp"

namespace streamscore {

namespace {

// Replaces this process by the harness; returns only when that fails.
int run_stress_binary(const std::vector<std::string>& args) {
  const std::string binary = program_beside_this_one("streamscore-stress");
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(binary.c_str(), argv.data());
  print_error("stress", "cannot run " + binary + ": " + std::strerror(errno) +
                            " (the harness is its own program: build it with "
                            "`cmake --build build --target streamscore-stress`)");
  return kExitFailure;
}

}  // namespace

void register_stress_command(CLI::App& root, int* exit_code) {
  CLI::App* cmd = root.add_subcommand(
      "stress",
      "Load scenarios against the engine and a RocksDB store, with an invariant check (runs streamscore-stress; "
      "`streamscore stress --help` lists its options)");
  // Every argument, --help included, belongs to the harness.
  cmd->set_help_flag();
  cmd->prefix_command();
  cmd->callback([cmd, exit_code] { *exit_code = run_stress_binary(cmd->remaining()); });
}

}  // namespace streamscore
