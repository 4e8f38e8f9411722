// A small blocking HTTP/1.1 client over one keep-alive connection (Boost.Beast), with
// a deadline per request: `streamscore status`, the tests and the HTTP load benchmark.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "io/http_api.hpp"

namespace streamscore {

// http://host[:port][/path] (no https, no user info). Port defaults to 80.
struct HttpUrl {
  std::string host;
  uint16_t port = 80;
  std::string path;  // without a trailing slash; "" for the root
};
Status parse_http_url(std::string_view url, HttpUrl* out);

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  ~HttpClient();

  // Sends one request (connecting first when needed) and reads the response. An I/O
  // error or a timeout closes the connection; the next request reconnects.
  Status request(http::verb method, const std::string& target, HttpResponse* out, const std::string& body = {},
                 const std::vector<std::pair<std::string, std::string>>& headers = {});
  Status get(const std::string& target, HttpResponse* out) { return request(http::verb::get, target, out); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamscore
