// Every subcommand registers itself on the root CLI11 app; its callback stores the
// process exit code (0 ok, 1 failure, 2 usage/config error).
#pragma once

namespace CLI {
class App;
}

namespace streamscore {

void register_generate_command(CLI::App& root, int* exit_code);
void register_replay_command(CLI::App& root, int* exit_code);
void register_export_command(CLI::App& root, int* exit_code);
void register_run_command(CLI::App& root, int* exit_code);
void register_backfill_command(CLI::App& root, int* exit_code);
void register_stress_command(CLI::App& root, int* exit_code);
void register_status_command(CLI::App& root, int* exit_code);
void register_train_command(CLI::App& root, int* exit_code);
void register_features_command(CLI::App& root, int* exit_code);
void register_model_command(CLI::App& root, int* exit_code);
void register_mock_kafka_command(CLI::App& root, int* exit_code);
void register_dynamodb_command(CLI::App& root, int* exit_code);

}  // namespace streamscore
