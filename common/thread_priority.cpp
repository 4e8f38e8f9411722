#include "common/thread_priority.hpp"

#include <pthread.h>
#include <sched.h>
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
id_t this_thread_id() {
  return static_cast<id_t>(syscall(SYS_gettid));
}

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
  if (current == -1 && errno != 0) return Status::io_error(std::string("getpriority: ") + std::strerror(errno));
  const int target = std::min(19, current + steps);
  if (setpriority(PRIO_PROCESS, this_thread_id(), target) != 0)
    return Status::io_error(std::string("setpriority: ") + std::strerror(errno));
  return Status::ok();
}

Status raise_this_thread_to_realtime(int priority, bool* permission_denied) {
  if (permission_denied) *permission_denied = false;
  if (priority < 0 || priority > 99) return Status::invalid_argument("real-time priority must be 0..99");
  if (priority == 0) return Status::ok();
  // Round robin rather than FIFO: several threads at the same priority (http.threads > 1)
  // take turns instead of one keeping the core.
  sched_param param{};
  param.sched_priority = priority;
  const int err = pthread_setschedparam(pthread_self(), SCHED_RR, &param);
  if (err == 0) return Status::ok();
  if (permission_denied) *permission_denied = err == EPERM;
  return Status::io_error(std::string("pthread_setschedparam(SCHED_RR, ") + std::to_string(priority) +
                          "): " + std::strerror(err));
}

int this_thread_realtime_priority() {
  int policy = 0;
  sched_param param{};
  if (pthread_getschedparam(pthread_self(), &policy, &param) != 0) return 0;
  return policy == SCHED_FIFO || policy == SCHED_RR ? param.sched_priority : 0;
}

}  // namespace streamscore
