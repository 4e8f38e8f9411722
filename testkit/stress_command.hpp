// The stress harness's command line, on the root of `streamscore-stress` (testkit/main.cpp).
// The daemon binary does not link the test kit: its `stress` command runs that program.
#pragma once

#include <CLI/CLI.hpp>

namespace streamscore {

// Adds the options and the run of the harness to `cmd`; its exit code goes to *exit_code.
void add_stress_options(CLI::App* cmd, int* exit_code);

}  // namespace streamscore
