#include "io/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <optional>

namespace streamscore {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

Status parse_http_url(std::string_view url, HttpUrl* out) {
  constexpr std::string_view kScheme = "http://";
  const auto bad = [&](const char* why) { return Status::invalid_argument("URL '" + std::string(url) + "': " + why); };
  if (!beast::iequals(url.substr(0, kScheme.size()), kScheme)) return bad("expected http://host:port");
  std::string_view rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl u;
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view port = authority.substr(colon + 1);
    unsigned long value = 0;
    if (port.empty() || port.size() > 5) return bad("bad port");
    for (char c : port) {
      if (c < '0' || c > '9') return bad("bad port");
      value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (value == 0 || value > 65535) return bad("port out of range");
    u.port = static_cast<uint16_t>(value);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return bad("no host");
  u.host = std::string(authority);
  *out = std::move(u);
  return Status::ok();
}

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  Status run(const char* what, beast::error_code* ec) {
    ioc.restart();
    ioc.run();
    if (*ec) {
      stream.reset();
      buffer.clear();
      return Status::io_error(std::string(what) + " http://" + host + ":" + std::to_string(port) + ": " +
                              ec->message());
    }
    return Status::ok();
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

Status HttpClient::request(http::verb method, const std::string& target, HttpResponse* out, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& c = *impl_;
  beast::error_code ec;
  Status s;
  if (!c.stream) {
    c.stream.emplace(c.ioc);
    tcp::resolver resolver(c.ioc);
    const auto endpoints = resolver.resolve(c.host, std::to_string(c.port), ec);
    if (ec) {
      c.stream.reset();
      return Status::io_error("cannot resolve '" + c.host + "': " + ec.message());
    }
    c.stream->expires_after(c.timeout);
    c.stream->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    if (!(s = c.run("connect to", &ec)).is_ok()) return s;
    c.stream->socket().set_option(tcp::no_delay(true), ec);
  }
  HttpRequest req{method, target, 11};
  req.set(http::field::host, c.host);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  c.stream->expires_after(c.timeout);
  http::async_write(*c.stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  if (!(s = c.run("write to", &ec)).is_ok()) return s;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::async_read(*c.stream, c.buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  if (!(s = c.run("read from", &ec)).is_ok()) return s;
  *out = parser.release();
  if (!out->keep_alive()) {
    c.stream.reset();
    c.buffer.clear();
  }
  return Status::ok();
}

}  // namespace streamscore
