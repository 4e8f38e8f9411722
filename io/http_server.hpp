// The HTTP server: Boost.Beast on its own Asio threads, never on CAF's scheduler, so a
// slow or hostile client can delay only other HTTP requests, never ingestion. Requests
// go to an HttpApi (io/http_api.hpp). Limits answer fast and close the connection:
// oversize headers 431, oversize bodies 413, malformed requests 400, a request not
// complete within `request_timeout` 408; an idle keep-alive connection is closed after
// the same time. At most `max_connections` are open: at the cap, and when accept runs
// out of fds, the connection that has waited longest on its client is closed to make
// room (a flood of idle or slow clients cannot lock out a health probe), and accept
// backs off after a failure instead of spinning.
//
// Nothing slow runs on the server's threads, nor waits there: a route whose work takes
// long (a model change) hands it off and answers later through a responder, from any
// thread; meanwhile its connection reads nothing, has no deadline and is never shed,
// and the thread serves the other connections. A responder called after stop(), or
// after its connection closed, does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "io/http_api.hpp"

namespace streamscore {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port (see HttpServer::port())
  int threads = 1;
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 64 * 1024;
  std::chrono::milliseconds request_timeout{5000};
  std::size_t max_connections = 512;  // at the cap a new connection sheds the longest waiting
  // SCHED_RR priority of the server's threads (1..99), 0 = normal scheduling. Without the
  // privilege a warning is logged once and the threads serve at normal priority.
  int realtime_priority = 0;
};

class HttpServer {
 public:
  // Binds and starts serving `api`, which must outlive the server.
  static Status start(const HttpServerOptions& options, HttpApi* api, std::unique_ptr<HttpServer>* out);
  ~HttpServer();  // stop()

  uint16_t port() const;
  // Stops accepting, closes every connection (those awaiting a late answer too), joins
  // the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamscore
