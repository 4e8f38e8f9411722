// Lowering the CPU priority of the engine's threads (config `engine.nice`), so that the
// HTTP server's thread gets a core as soon as a request arrives, even while ingestion
// keeps every core busy. Only ever lowers: that needs no privilege, whereas raising the
// server's priority would.
#pragma once

#include "state/status.hpp"

namespace streamscore {

// Adds `steps` (0..19) to the calling thread's nice value, capped at 19. Linux keeps a
// nice value per thread, and threads started later by this one inherit it.
Status lower_this_thread_priority(int steps);

// The calling thread's nice value (for tests and logs).
int this_thread_nice();

}  // namespace streamscore
