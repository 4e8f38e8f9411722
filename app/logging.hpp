// Logs: spdlog to stderr, one `key=value` line per event (logfmt), UTC timestamps:
//   ts=2025-11-25T16:05:52.123Z level=info msg="http listening" address=127.0.0.1 port=8480
// Messages never carry secrets (the admin token) or raw request headers.
#pragma once

#include <string>

#include "common/status.hpp"

namespace streamscore {

// Installs the stderr logger (once) and sets the level: trace, debug, info, warn, error, off.
Status configure_logging(const std::string& level);

}  // namespace streamscore
