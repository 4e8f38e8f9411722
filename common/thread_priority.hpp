// Thread priorities, so that the HTTP server's thread gets a core as soon as a request
// arrives, even while ingestion keeps every core busy: lowering the engine's threads
// (config `engine.nice`) needs no privilege; raising the server's thread to a real-time
// policy (config `http.realtime_priority`) does (root, CAP_SYS_NICE or RLIMIT_RTPRIO).
#pragma once

#include "common/status.hpp"

namespace streamscore {

// Adds `steps` (0..19) to the calling thread's nice value, capped at 19. Linux keeps a
// nice value per thread, and threads started later by this one inherit it.
Status lower_this_thread_priority(int steps);

// The calling thread's nice value (for tests and logs).
int this_thread_nice();

// Moves the calling thread to SCHED_RR at `priority` (1..99; 0 = leave it as it is): it
// then runs ahead of every normal thread whenever it is runnable. Without the privilege
// the result is an error (`*permission_denied` set) and the thread keeps its policy.
// Threads started later by this one inherit the policy.
Status raise_this_thread_to_realtime(int priority, bool* permission_denied = nullptr);

// The calling thread's real-time priority, 0 under a normal policy (for tests and logs).
int this_thread_realtime_priority();

}  // namespace streamscore
