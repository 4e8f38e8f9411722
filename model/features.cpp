#include "model/features.hpp"

#include "state/shard_state.hpp"

namespace streamscore {

const std::vector<std::string>& engine_feature_schema() {
  static const std::vector<std::string> schema = {"total_txn_30d", "total_amount_30d", "avg_amount_30d"};
  return schema;
}

FeatureRow feature_row(int64_t txn_count, int64_t cents) {
  return {static_cast<float>(txn_count), static_cast<float>(static_cast<double>(cents) / 100.0),
          static_cast<float>(static_cast<double>(average_cents(cents, txn_count)) / 100.0)};
}

}  // namespace streamscore
