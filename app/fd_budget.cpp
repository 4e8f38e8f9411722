#include "app/fd_budget.hpp"

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "state/format.hpp"

#include <cerrno>
#include <cstring>
#include <string>

namespace streamscore {

uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
      limit = raised;
    else
      spdlog::warn("msg=\"open file limit not raised\" soft={} hard={} error={}", before, limit.rlim_max,
                   quoted_log_value(std::strerror(errno)));
  }
  spdlog::info("msg=\"open file limit\" soft={} was={} hard={}", limit.rlim_cur, before, limit.rlim_max);
  return limit.rlim_cur;
}

Status check_http_fd_budget(const HttpConfig& http, uint64_t open_file_limit) {
  if (!http.enabled) return Status::ok();
  const uint64_t connections = static_cast<uint64_t>(http.max_connections);
  if (connections + kFdsBesideHttp <= open_file_limit) return Status::ok();
  const uint64_t fits = open_file_limit > kFdsBesideHttp ? open_file_limit - kFdsBesideHttp : 0;
  return Status::invalid_argument("http.max_connections = " + std::to_string(connections) +
                                  ": the open file limit (ulimit -n) is " + std::to_string(open_file_limit) + " and " +
                                  std::to_string(kFdsBesideHttp) + " of it are kept for RocksDB, Kafka and logs: " +
                                  (fits == 0
                                       ? std::string("raise the hard limit")
                                       : "set it to at most " + std::to_string(fits) + " or raise the hard limit"));
}

}  // namespace streamscore
