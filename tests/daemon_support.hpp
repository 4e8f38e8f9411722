// Reading a running daemon's /metrics in tests (its port and wait_for are in cli_support.hpp).
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "io/http_client.hpp"
#include "tests/cli_support.hpp"

namespace streamscore::testing {

// One sample of a metric from /metrics ("" when absent).
inline double metric(HttpClient& client, const std::string& name) {
  HttpResponse response;
  if (!client.get("/metrics", &response).is_ok()) return -1;
  std::istringstream in(response.body());
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

}  // namespace streamscore::testing
