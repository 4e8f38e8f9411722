// Fault tests that need a file system of their own (a small tmpfs, a read-only bind
// mount) run a shell script in a private mount namespace (`unshare -m`), as root. Where
// mounting is impossible the test is skipped, with the reason in the test log.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/cli_support.hpp"

namespace streamscore::testing {

// Runs `script` with sh in a private mount namespace; STREAMSCORE is the binary. The
// exit code of the script, or -1 when it did not exit.
inline int run_in_mount_namespace(const TempDir& dir, const std::string& script) {
  const std::string path = dir / "namespace.sh";
  std::ofstream(path) << "set -u\nSTREAMSCORE=" << STREAMSCORE_BINARY << "\n" << script << "\n";
  const int status = std::system(("unshare -m sh " + path + " > " + (dir / "namespace.out") + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A precondition for boost::unit_test::precondition: can this process mount a tmpfs in a
// private mount namespace (root, unshare, no seccomp veto)?
struct CanMount {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    TempDir dir("streamscore-mount-probe-");
    const int rc =
        run_in_mount_namespace(dir, "mkdir -p " + (dir / "m") + " && mount -t tmpfs -o size=1m tmpfs " + (dir / "m"));
    boost::test_tools::assertion_result result(rc == 0);
    if (rc != 0) result.message() << "skipped: cannot mount in a private mount namespace (needs root and unshare)";
    return result;
  }
};

}  // namespace streamscore::testing
