// `streamscore export`: the items as JSONL sorted by PK (contract, section 5).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "app/commands.hpp"
#include "app/common.hpp"

namespace streamscore {

namespace {

struct ExportArgs {
  std::string state_dir;
  std::string out = "-";
  std::string config_path;
  std::vector<std::string> sets;
};

int export_items(const ExportArgs& args) {
  Config config;
  Status s = load_config(args.config_path, args.sets, &config);
  if (!s.is_ok()) {
    print_error("export", s.message());
    return kExitUsage;
  }
  // --state DIR is RocksDB; state.backend = "dynamodb" reads the table instead.
  if (!(s = state_from_args(args.state_dir, &config.state)).is_ok()) {
    print_error("export", s.message());
    return kExitUsage;
  }
  if (config.state.backend == "rocksdb" && !std::filesystem::is_directory(args.state_dir)) {
    print_error("export", "--state '" + args.state_dir + "': no such state directory");
    return kExitUsage;
  }
  // Read only: an export changes nothing, and reads a state it cannot write.
  std::unique_ptr<StateStore> store;
  if (!(s = open_store(config.state, &store, /*bulk_load=*/false, /*read_only=*/true)).is_ok()) {
    print_error("export", s.to_string());
    return exit_code_of_open(config.state, s);
  }
  if (!(s = check_session(store.get())).is_ok()) {
    print_error("export", s.to_string());
    return kExitFailure;
  }
  FILE* out = args.out == "-" ? stdout : std::fopen(args.out.c_str(), "wb");
  if (!out) {
    print_error("export", "cannot write '" + args.out + "'");
    return kExitFailure;
  }
  std::string line;
  bool write_failed = false;
  s = store->scan([&](const ItemRecord& item) {
    if (item.item_json.empty()) return true;  // a customer without a public item yet
    line.assign(item.item_json).push_back('\n');
    write_failed = std::fwrite(line.data(), 1, line.size(), out) != line.size();
    return !write_failed;
  });
  const bool close_failed = out == stdout ? std::fflush(out) != 0 : std::fclose(out) != 0;
  if (!s.is_ok() || write_failed || close_failed) {
    print_error("export", s.is_ok() ? "cannot write '" + args.out + "'" : s.to_string());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void register_export_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = root.add_subcommand("export", "Write the customer_feature_state items as JSONL, sorted by PK");
  cmd->add_option("--state", args->state_dir, "RocksDB state directory; not with state.backend = \"dynamodb\"");
  cmd->add_option("--out", args->out, "output file ('-' = stdout)")->capture_default_str();
  cmd->add_option("--config", args->config_path, "TOML config file (only [state] is used)");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
  cmd->footer(
      "Examples:\n"
      "  streamscore export --state data/state --out items.jsonl\n"
      "  streamscore export --set state.backend=dynamodb --set state.endpoint=http://127.0.0.1:8000");
  cmd->callback([args, exit_code] { *exit_code = export_items(*args); });
}

}  // namespace streamscore
