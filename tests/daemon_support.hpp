// Helpers for tests that drive a running daemon over its HTTP API: its port (from its
// log), one sample of a metric, and waiting for a condition.
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

// The port a daemon logged ("url=http://127.0.0.1:PORT"), waiting for it.
inline uint16_t daemon_port(const std::string& err_path) {
  for (int i = 0; i < 400; ++i) {
    const std::string err = slurp(err_path);
    const auto at = err.find("url=http://127.0.0.1:");
    if (at != std::string::npos) return static_cast<uint16_t>(std::stoi(err.substr(at + 21)));
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  BOOST_FAIL("the daemon did not log its HTTP address: " + slurp(err_path));
  return 0;
}

// One sample of a metric from /metrics ("" when absent).
inline double metric(HttpClient& client, const std::string& name) {
  HttpResponse response;
  if (!client.get("/metrics", &response).is_ok()) return -1;
  std::istringstream in(response.body());
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

inline bool wait_for(const std::function<bool()>& done, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace streamscore::testing
