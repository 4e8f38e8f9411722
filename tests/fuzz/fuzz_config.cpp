// libFuzzer target: the config loader, on TOML files and on --set overrides.
// It must never crash, and must either accept the input (and then the values are
// inside their documented ranges) or reject it with a message.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace streamscore;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

void check_ranges(const Config& c) {
  check(c.engine.shards >= 1 && c.engine.shards <= 1024);
  check(c.engine.batch_size >= 1 && c.engine.batch_size <= 1000000);
  check(c.window.allowed_lateness_ns >= 0);
  check(c.window.max_future_skew_ns > 0);
  check(c.source.kind == "file" || c.source.kind == "generator");
  check(c.state.backend == "rocksdb" || c.state.backend == "memory");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  Config config;
  Status s;
  if (size > 0 && data[0] == '!') {  // "!" + one override per line
    std::vector<std::string> sets;
    std::size_t start = 1;
    for (std::size_t i = 1; i <= input.size(); ++i) {
      if (i == input.size() || input[i] == '\n') {
        sets.push_back(input.substr(start, i - start));
        start = i + 1;
      }
    }
    s = load_config("", sets, &config);
  } else {  // a TOML file
    static const std::string path = "/tmp/streamscore-fuzz-config-" + std::to_string(::getpid());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << input;
    s = load_config(path, {}, &config);
  }
  if (s.is_ok())
    check_ranges(config);
  else
    check(!s.message().empty());
  return 0;
}
