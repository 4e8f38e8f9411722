// `streamscore dynamodb create-table`: the table of `[state] backend = "dynamodb"`.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "app/commands.hpp"
#include "app/common.hpp"
#include "state/dynamodb_store.hpp"

namespace streamscore {

namespace {

struct CreateTableArgs {
  std::string endpoint, region;
  std::string table = "customer_feature_state";
};

int create_table(const CreateTableArgs& args) {
  DynamoDbOptions options;
  options.endpoint = args.endpoint;
  options.region = args.region;
  options.table = args.table;
  bool existed = false;
  Status s = create_dynamodb_table(options, &existed);
  if (!s.is_ok()) {
    // Settings and credentials are the caller's to fix (2); the service's answers are 1.
    std::string message = s.message();
    for (const auto& [key, flag] :
         {std::pair<const char*, const char*>{"state.endpoint", "--endpoint"}, {"state.table", "--table"}})
      if (message.rfind(key, 0) == 0) message.replace(0, std::string(key).size(), flag);
    print_error("dynamodb create-table", message);
    return s.is_invalid_argument() ? kExitUsage : kExitFailure;
  }
  const DynamoDbOptions resolved = resolve_dynamodb_options(options);
  std::printf(existed ? "dynamodb create-table: table '%s' already exists at %s; nothing changed\n"
                      : "dynamodb create-table: table '%s' created at %s (PK, SK strings; on-demand capacity)\n",
              resolved.table.c_str(), resolved.endpoint.c_str());
  return kExitOk;
}

}  // namespace

void register_dynamodb_command(CLI::App& root, int* exit_code) {
  CLI::App* cmd = root.add_subcommand("dynamodb", "DynamoDB backend administration (state.backend = \"dynamodb\")");
  cmd->require_subcommand(1);
  auto args = std::make_shared<CreateTableArgs>();
  CLI::App* create = cmd->add_subcommand(
      "create-table", "Create the customer_feature_state table (PK and SK strings, on-demand capacity)");
  create->add_option("--endpoint", args->endpoint,
                     "DynamoDB endpoint URL (default: https://dynamodb.REGION.amazonaws.com)");
  create->add_option("--region", args->region,
                     "AWS region (default: $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1)");
  create->add_option("--table", args->table, "table name")->capture_default_str();
  create->footer(
      "Examples:\n"
      "  streamscore dynamodb create-table --region eu-west-1\n"
      "  streamscore dynamodb create-table --endpoint http://127.0.0.1:8000 --table features_test\n"
      "Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or the\n"
      "profile AWS_PROFILE (default \"default\") of ~/.aws/credentials. A table that already\n"
      "exists is left as it is (exit 0). Exit code 1 on a service error, 2 on usage errors and\n"
      "missing credentials.");
  create->callback([args, exit_code] { *exit_code = create_table(*args); });
}

}  // namespace streamscore
