#include "io/http_server.hpp"

#include "actors/thread_priority.hpp"
#include "state/format.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace streamscore {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpApi* api = nullptr;
  // Before ioc: sessions still queued in ioc are destroyed with it, and count down.
  std::atomic<std::size_t> connections{0};
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;

  void accept();
};

namespace {

std::string quoted_log_value(std::string_view client_bytes) {
  std::string out;
  append_json_string_lossless(out, client_bytes);
  return out;
}

// One connection: read a request (bounded in size and time), answer, repeat while the
// client keeps the connection alive. All handlers run on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server) {
    ++server_.connections;
  }
  ~Session() { --server_.connections; }

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.header_limit));
    parser_->body_limit(server_.options.body_limit);
    timed_out_ = false;
    arm_deadline(server_.options.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  // The whole request must arrive within the deadline (a slow-loris client cannot hold
  // a connection by trickling bytes). On expiry the read is cancelled and on_read answers.
  void arm_deadline(std::chrono::milliseconds timeout) {
    timer_.expires_after(timeout);
    // An expiry already queued when the operation finished must not hit the next one.
    const uint64_t deadline = ++deadline_;
    timer_.async_wait([self = shared_from_this(), deadline](beast::error_code ec) {
      if (ec || deadline != self->deadline_) return;  // cancelled, or a stale deadline
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  void on_read(beast::error_code ec) {
    timer_.cancel();
    ++deadline_;
    if (timed_out_) {
      // Idle keep-alive connections just close; a started request gets a 408.
      if (parser_->got_some()) return reply(error_response(http::status::request_timeout,
                                                           "request not complete in time", 11, false));
      return close();
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof) return close();
    if (ec.category() == http::make_error_code(http::error::bad_target).category())  // parse errors
      return reply(parse_error_response(ec));
    if (ec) return close();
    const auto start = std::chrono::steady_clock::now();
    read_at_ = start;
    HttpResponse res = server_.api->handle(parser_->get());
    if (spdlog::should_log(spdlog::level::debug)) log_request(parser_->get(), res, start);
    reply(std::move(res));
  }

  // Method and path are the client's bytes: quoted and escaped (quotes, backslashes,
  // control and non-UTF-8 bytes), so that a request cannot forge fields or lines.
  static void log_request(const HttpRequest& req, const HttpResponse& res,
                          std::chrono::steady_clock::time_point start) {
    constexpr std::size_t kLoggedTargetBytes = 200;
    const std::string_view target(req.target().data(), req.target().size());
    spdlog::debug("msg=\"http request\" method={} path={} status={} micros={}",
                  quoted_log_value(std::string_view(req.method_string().data(), req.method_string().size())),
                  quoted_log_value(target.substr(0, kLoggedTargetBytes)), res.result_int(),
                  std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
                      .count());
  }

  void reply(HttpResponse res) {
    response_ = std::move(res);
    server_.api->metrics().count(response_.result_int());
    const bool close_after = !response_.keep_alive();
    // The answer to a slow reader is bounded in time too.
    timed_out_ = false;
    arm_deadline(server_.options.request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
                        self->timer_.cancel();
                        ++self->deadline_;
                        if (!ec && self->read_at_ != std::chrono::steady_clock::time_point{}) {
                          self->server_.api->metrics().request_duration.observe_ns(
                              std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - self->read_at_).count());
                          self->read_at_ = {};
                        }
                        if (ec || close_after || self->timed_out_) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  HttpServer::Impl& server_;
  bool timed_out_ = false;
  uint64_t deadline_ = 0;  // the armed deadline; bumped by each arm_deadline()
  std::chrono::steady_clock::time_point read_at_;  // when the request being answered was read
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      if (connections.load() >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
    } else {
      spdlog::warn("msg=\"http accept failed\" error=\"{}\"", ec.message());
    }
    accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

Status HttpServer::start(const HttpServerOptions& options, HttpApi* api,
                         std::unique_ptr<HttpServer>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->api = api;
  beast::error_code ec;
  const auto address = net::ip::make_address(options.address, ec);
  if (ec) return Status::invalid_argument("http.address = \"" + options.address + "\": not an IP address");
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::io_error("http.address/http.port: cannot listen on " + where + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  const int threads = std::max(1, options.threads);
  for (int i = 0; i < threads; ++i)
    impl->threads.emplace_back([io = &impl->ioc, priority = options.realtime_priority, first = i == 0] {
      pthread_setname_np(pthread_self(), "http");  // for top -H, perf sched, /proc
      // Never fatal: without the privilege the server runs at normal priority. Logged
      // by the first thread only (they all get the same answer).
      bool denied = false;
      const Status s = raise_this_thread_to_realtime(priority, &denied);
      if (!s.is_ok() && first)
        spdlog::warn("msg=\"http.realtime_priority = {} not applied, serving at normal priority{}\" error=\"{}\"",
                     priority,
                     denied ? " (needs root, CAP_SYS_NICE or RLIMIT_RTPRIO; 0 turns it off)" : "",
                     s.message());
      io->run();
    });
  out->reset(new HttpServer(std::move(impl)));
  return Status::ok();
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace streamscore
