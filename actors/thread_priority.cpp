#include "actors/thread_priority.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace streamscore {

namespace {

// PRIO_PROCESS with a thread id addresses that one thread on Linux (not the process).
id_t this_thread_id() { return static_cast<id_t>(syscall(SYS_gettid)); }

}  // namespace

int this_thread_nice() {
  errno = 0;
  return getpriority(PRIO_PROCESS, this_thread_id());
}

Status lower_this_thread_priority(int steps) {
  if (steps < 0 || steps > 19) return Status::invalid_argument("nice steps must be 0..19");
  if (steps == 0) return Status::ok();
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, this_thread_id());
  if (current == -1 && errno != 0)
    return Status::io_error(std::string("getpriority: ") + std::strerror(errno));
  const int target = std::min(19, current + steps);
  if (setpriority(PRIO_PROCESS, this_thread_id(), target) != 0)
    return Status::io_error(std::string("setpriority: ") + std::strerror(errno));
  return Status::ok();
}

}  // namespace streamscore
