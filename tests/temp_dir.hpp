// The tests' scratch directory: one fresh directory under the system temp dir per
// instance, removed with its contents at the end.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace streamscore::testing {

struct TempDir {
  std::filesystem::path path;

  // Unique per process and instance, so that tests running in parallel, and several
  // directories of one test, never share one.
  explicit TempDir(const std::string& prefix = "streamscore-test-") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace streamscore::testing
