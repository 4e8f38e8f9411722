// streamscore-stress: the stress harness of the test kit, as its own program, so that the
// daemon binary carries no test code. `streamscore stress ARGS` runs it with the same ARGS.
#include <CLI/CLI.hpp>

#include "app/common.hpp"
#include "app/logging.hpp"
#include "testkit/stress_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "streamscore-stress: load scenarios against the engine and a RocksDB store, ending with an\n"
      "invariant check (the test kit's harness; `streamscore stress` runs it)."};
  app.set_version_flag("--version", std::string("streamscore-stress ") + STREAMSCORE_VERSION);
  static_cast<void>(streamscore::configure_logging("info"));  // logs to stderr: stdout has the report
  int exit_code = streamscore::kExitOk;
  streamscore::add_stress_options(&app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the usage error
    return code == 0 ? streamscore::kExitOk : streamscore::kExitUsage;
  }
  return exit_code;
}
