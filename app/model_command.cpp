// `streamscore model list|activate vN|rollback --models DIR`: the models directory and
// its active reference (model/registry.hpp).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/model_support.hpp"
#include "model/registry.hpp"

namespace streamscore {

namespace {

struct ModelArgs {
  std::string models_dir;
  std::string version;
  std::string config_path;  // the engine's config: the features a model must match
  std::vector<std::string> sets;
  bool json = false;
};

// The registry for a change of the active model: its checks use the features the engine
// computes with the config. A bad config is a usage error (exit 2).
bool registry_for_change(const char* command, const ModelArgs& args, std::unique_ptr<ModelRegistry>* out) {
  Config config;
  const Status s = load_config(args.config_path, args.sets, &config);
  if (!s.is_ok()) {
    print_error(command, s.message());
    return false;
  }
  *out = std::make_unique<ModelRegistry>(args.models_dir, /*wait_for_lock=*/true, config.features);
  return true;
}

void add_config_options(CLI::App* cmd, ModelArgs* args) {
  cmd->add_option("--config", args->config_path,
                  "the engine's TOML config: the model's features must be defined in it as the model defines them");
  cmd->add_option("--set", args->sets, "config override section.key=value (repeatable)");
}

std::string version_list(const std::vector<int>& versions) {
  std::string out;
  for (int v : versions) out += (out.empty() ? "v" : ", v") + std::to_string(v);
  return out.empty() ? "(none)" : out;
}

int exit_code_of(const Status& s) {
  return s.is_not_found() ? kExitUsage : kExitFailure;
}

int list(const ModelArgs& args) {
  ModelRegistry registry(args.models_dir);
  std::vector<ModelEntry> entries;
  ActiveRef active;
  Status s = registry.list(&entries);
  if (s.is_ok()) s = registry.read_active(&active);
  if (!s.is_ok()) {
    print_error("model list", s.message());
    return exit_code_of(s);
  }
  if (args.json) {
    std::string out = "{\"active\":";
    out += active.active ? "\"v" + std::to_string(active.active) + "\"" : "null";
    out += ",\"models\":[";
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const ModelEntry& e = entries[i];
      out += fmt::format("{}{{\"version\":\"v{}\",\"active\":{}", i ? "," : "", e.version,
                         e.version == active.active ? "true" : "false");
      if (e.meta_status.is_ok())
        out += fmt::format(
            ",\"training_date\":\"{}\",\"validation_auc\":{:.6f},"
            "\"validation_logloss\":{:.6f},\"rows_train\":{},\"rows_validation\":{}}}",
            e.meta.training_date, e.meta.validation_auc, e.meta.validation_logloss, e.meta.rows_train,
            e.meta.rows_validation);
      else
        out += ",\"error\":\"metadata unreadable\"}";
    }
    std::printf("%s]}\n", out.c_str());
    return kExitOk;
  }
  std::string out = fmt::format("{:<3}{:<8}{:<22}{:>8}{:>10}{:>12}{:>12}\n", "", "version", "trained", "AUC", "logloss",
                                "rows train", "rows valid");
  for (const ModelEntry& e : entries) {
    const char* mark = e.version == active.active ? "*" : "";
    if (e.meta_status.is_ok())
      out += fmt::format("{:<3}{:<8}{:<22}{:>8.4f}{:>10.4f}{:>12}{:>12}\n", mark, "v" + std::to_string(e.version),
                         e.meta.training_date, e.meta.validation_auc, e.meta.validation_logloss, e.meta.rows_train,
                         e.meta.rows_validation);
    else
      out += fmt::format("{:<3}{:<8}metadata unreadable: {}\n", mark, "v" + std::to_string(e.version),
                         e.meta_status.message());
  }
  if (entries.empty()) out += "   (no models)\n";
  out += fmt::format("active: {}; rollback history: {}\n",
                     active.active ? "v" + std::to_string(active.active) : "(none)", version_list(active.history));
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int activate(const ModelArgs& args) {
  int version = 0;
  Status s = parse_version_name(args.version, &version);
  if (!s.is_ok()) {
    print_error("model activate", s.message());
    return kExitUsage;
  }
  std::unique_ptr<ModelRegistry> registry;
  if (!registry_for_change("model activate", args, &registry)) return kExitUsage;
  ActiveRef after;
  if (!(s = registry->activate(version, &after)).is_ok()) {
    print_error("model activate", s.message());
    return exit_code_of(s);
  }
  std::printf("model activate: v%d is active (rollback history: %s)\n", after.active,
              version_list(after.history).c_str());
  return kExitOk;
}

int rollback(const ModelArgs& args) {
  std::unique_ptr<ModelRegistry> registry;
  if (!registry_for_change("model rollback", args, &registry)) return kExitUsage;
  ActiveRef before, after;
  Status s = registry->read_active(&before);
  if (s.is_ok()) s = registry->rollback(&after);
  if (!s.is_ok()) {
    print_error("model rollback", s.message());
    return s.code() == Status::Code::invalid_argument ? kExitFailure : exit_code_of(s);
  }
  std::printf("model rollback: v%d is active again (was v%d; rollback history: %s)\n", after.active, before.active,
              version_list(after.history).c_str());
  return kExitOk;
}

}  // namespace

void register_model_command(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<ModelArgs>();
  CLI::App* cmd = root.add_subcommand("model", "List the models of a models directory, activate a version, roll back");
  cmd->require_subcommand(1);
  cmd->footer(
      "Examples:\n"
      "  streamscore model list --models models\n"
      "  streamscore model activate v2 --models models\n"
      "  streamscore model rollback --models models\n"
      "The active reference is models/active.json, replaced atomically; a running daemon with\n"
      "[model] dir = \"models\" picks a change up within 2 seconds.");
  CLI::App* ls = cmd->add_subcommand("list", "Versions, training dates, metrics, and which is active");
  ls->add_option("--models", args->models_dir, "models directory")->required();
  ls->add_flag("--json", args->json, "print the list as one JSON object");
  ls->footer("Example:\n  streamscore model list --models models");
  ls->callback([args, exit_code] { *exit_code = list(*args); });
  CLI::App* act = cmd->add_subcommand("activate", "Check version vN and make it the active model");
  act->add_option("version", args->version, "the version to activate, e.g. v2")->required();
  act->add_option("--models", args->models_dir, "models directory")->required();
  add_config_options(act, args.get());
  act->footer(
      "Example:\n  streamscore model activate v2 --models models --config streamscore.toml\n"
      "A corrupt model, a checksum mismatch, or a feature the engine (with --config; without,\n"
      "the default features) does not define as the model does is refused (exit 1), and the\n"
      "active model does not change.");
  act->callback([args, exit_code] { *exit_code = activate(*args); });
  CLI::App* rb = cmd->add_subcommand("rollback", "Make the previously active version active again");
  rb->add_option("--models", args->models_dir, "models directory")->required();
  add_config_options(rb, args.get());
  rb->footer("Example:\n  streamscore model rollback --models models");
  rb->callback([args, exit_code] { *exit_code = rollback(*args); });
}

}  // namespace streamscore
