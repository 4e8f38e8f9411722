// `streamscore generate`: writes the simulated customer-events stream (io/generator.hpp)
// as JSONL to a file or stdout.
#pragma once

namespace CLI {
class App;
}

namespace streamscore {

// Adds the `generate` subcommand to `root`; its callback stores the exit code (0 ok,
// 1 I/O failure; bad options make CLI11 throw, which main turns into exit code 2).
void register_generate_command(CLI::App& root, int* exit_code);

}  // namespace streamscore
