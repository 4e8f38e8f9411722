// The structural check of a model artifact, before XGBoost loads it. XGBoost's loader
// trusts the file: a child index out of range or a split on a missing feature reads out
// of bounds when it predicts, and a cycle never ends. A checksum only proves the file is
// the one its sidecar describes, not that it is a model the engine can run.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.hpp"

namespace streamscore {

// The objective every artifact must have: the engine's scores are probabilities.
constexpr const char* kExpectedObjective = "binary:logistic";

// Checks an XGBoost 1.7 JSON model (`learner.gradient_booster` a gbtree) for a model of
// `feature_count` features: the objective, num_feature, and every tree: array lengths equal
// to num_nodes, children in range (both -1 for a leaf), every node reached exactly once
// from the root (no cycle, no shared node, no orphan), parents that agree, split indices
// below `feature_count`, numerical splits only, finite thresholds and leaf values.
// Anything else (UBJSON, binary, another booster) is refused: it cannot be checked.
// The error names the first defect ("tree 3 node 7: left child 99 is out of range ...").
Status validate_model_json(const std::string& bytes, std::size_t feature_count);

}  // namespace streamscore
