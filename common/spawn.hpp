// Child processes (posix_spawn): the stress harness's crash-restart daemons and the tests'
// daemons and CLI runs start them through this one helper.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace streamscore {

// Starts `words` (the program's path, then its arguments) in the background, stdout to
// `out_path` and stderr to `err_path` (each created or truncated; an empty path leaves
// that stream as this process's), with `environment` ("NAME=value" each) or, when null,
// this process's environment. Returns the child's pid, or -1 when it cannot start.
pid_t spawn_process(const std::vector<std::string>& words, const std::string& out_path,
                    const std::string& err_path = {}, const std::vector<std::string>* environment = nullptr);

// The path of program `name` in this program's own directory (the daemon and
// streamscore-stress are built side by side); just `name` when that cannot be read.
std::string program_beside_this_one(const std::string& name);

// Waits for child `pid` to end: its exit code, or -1 when it did not exit (a signal ended it).
int wait_for_exit(pid_t pid);

}  // namespace streamscore
