// Helpers shared by the model tests (test_model, test_rollout): temp directories
// (tests/temp_dir.hpp) and reading a whole file.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/temp_dir.hpp"

namespace streamscore::testing {

inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace streamscore::testing
