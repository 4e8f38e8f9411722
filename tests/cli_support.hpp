// Helpers for tests that run the `streamscore` binary: temp dirs, running a command
// and capturing its output, and starting a daemon in the background.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/spawn.hpp"
#include "tests/temp_dir.hpp"

extern char** environ;

namespace streamscore::testing {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A daemon (`run`) in a test serves HTTP on any free port (http.port=0), so that tests
// running in parallel never compete for the default port. A later --set wins.
inline std::string with_free_port(const std::string& args) {
  return args.rfind("run ", 0) == 0 ? "run --set http.port=0 " + args.substr(4) : args;
}

// Runs the binary with `args` (shell words), capturing stdout and stderr.
inline Result run_cli(const TempDir& dir, const std::string& args) {
  const std::string out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = std::string(STREAMSCORE_BINARY) + " " + with_free_port(args) + " > " + out + " 2> " + err;
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// An argument list as shell words, for run_cli.
inline std::string words(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += a + " ";
  return out;
}

// `streamscore export` of a state directory; the test stops if it fails.
inline std::string export_of(const TempDir& dir, const std::string& state) {
  Result e = run_cli(dir, "export --state " + state);
  BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.err);
  return e.out;
}

// Features and last_event_time of every exported item (each line up to its as_of). A
// daemon that follows a topic (unbounded) reads what has arrived: when one partition's
// records arrive after the clock has passed them (a rebalance, a broker down, another
// daemon's clock), they are late and corrected at a later tick, so their customers' as_of
// is that tick (contract, section 3). Loss or double counting would still show here.
inline std::string features_only(const std::string& export_text) {
  std::string out;
  std::istringstream in(export_text);
  for (std::string line; std::getline(in, line);) out += line.substr(0, line.find(",\"as_of\":")) + "\n";
  return out;
}

// Starts the binary with `args` (one word each) in the background, stdout to `out_path`
// (and stderr to `err_path` when given).
inline pid_t spawn_streamscore(const std::vector<std::string>& args, const std::string& out_path,
                               const std::string& err_path = {}) {
  std::vector<std::string> words = {STREAMSCORE_BINARY};
  words.insert(words.end(), args.begin(), args.end());
  if (args.size() > 0 && args[0] == "run") words.insert(words.begin() + 2, {"--set", "http.port=0"});
  return spawn_process(std::move(words), out_path, err_path);
}

// SIGKILLs `pid` and requires that it was still running: a test of a resume needs the
// command interrupted, not finished.
inline void kill_before_it_ends(pid_t pid, const std::string& what = "the command") {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), what << " finished before it was killed");
}

// Runs `streamscore ARGS --max-writes-per-sec WRITES` for `after`, then kills it. The
// throttle keeps it running; it is not part of what makes a backfill the same one, so a
// resume with plain ARGS runs at full speed.
inline void kill_throttled_backfill(const std::vector<std::string>& args, const std::string& out_path,
                                    const std::string& err_path = {}, const std::string& writes = "20000",
                                    std::chrono::milliseconds after = std::chrono::milliseconds(1500)) {
  std::vector<std::string> throttled = args;
  throttled.insert(throttled.end(), {"--max-writes-per-sec", writes});
  const pid_t pid = spawn_streamscore(throttled, out_path, err_path);
  BOOST_REQUIRE(pid > 0);
  std::this_thread::sleep_for(after);
  kill_before_it_ends(pid, "the backfill");
}

// The port a daemon logged ("url=http://127.0.0.1:PORT") on stderr, waiting for it.
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

// Whether `done` came true within `seconds` (asked every 50 ms).
inline bool wait_for(const std::function<bool()>& done, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Waits until a daemon has started its engine on the state: by then RocksDB's
// write-ahead log (NNNNNN.log) holds the first meta writes.
inline void wait_until_open(const std::string& state) {
  auto started = [&] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(state, ec))
      if (entry.path().extension() == ".log" && entry.file_size(ec) > 0) return true;
    return false;
  };
  for (int i = 0; i < 400 && !started(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
}

}  // namespace streamscore::testing
