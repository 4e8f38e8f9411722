// The daemon's open-file budget. Every HTTP connection is an fd, and so is every table
// file RocksDB keeps open, its write-ahead log, a Kafka broker connection, the dead-letter
// file: when connections take them all, a commit fails with "Too many open files". So
// `run` raises the soft RLIMIT_NOFILE to the hard one, and refuses an
// `http.max_connections` that would leave the rest less than kFdsBesideHttp.
#pragma once

#include <cstdint>

#include "common/status.hpp"
#include "config/config.hpp"
#include "state/store.hpp"

namespace streamscore {

// RocksDB's table cache, plus 256 for everything else (WAL, MANIFEST and LOG files,
// Kafka sockets and librdkafka's pipes, the dead-letter file, model files, the listener).
constexpr uint64_t kFdsBesideHttp = kRocksDbMaxOpenFiles + 256;

// Raises the soft open-file limit to the hard one and logs both; returns the soft limit
// in force afterwards (unchanged, with a warning, when it cannot be raised).
uint64_t raise_open_file_limit();

// invalid_argument naming http.max_connections when it and kFdsBesideHttp together
// exceed `open_file_limit`.
Status check_http_fd_budget(const HttpConfig& http, uint64_t open_file_limit);

}  // namespace streamscore
