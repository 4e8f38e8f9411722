#include "app/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace streamscore {

Status configure_logging(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str answers "off" for anything it does not know: only trust it for "off" itself.
  if (parsed == spdlog::level::off && level != "off")
    return Status::invalid_argument("log.level = \"" + level +
                                    "\": expected one of trace, debug, "
                                    "info, warn, error, off");
  static std::once_flag once;
  std::call_once(once, [] {
    auto logger = spdlog::stderr_logger_mt("streamscore");
    logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
    logger->flush_on(spdlog::level::trace);  // a daemon's logs are read live (and by tests)
    spdlog::set_default_logger(logger);
  });
  spdlog::set_level(parsed);
  return Status::ok();
}

}  // namespace streamscore
