#include "io/http_server.hpp"

#include "common/thread_priority.hpp"
#include "state/format.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace streamscore {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {
class Session;

// What a responder (a route answering later) reaches of the server: stop() closes it
// first, so that a responder called meanwhile on another thread, or after the server is
// gone, touches neither a session nor the io_context.
struct ResponderGate {
  std::mutex mu;
  bool open = true;
};
}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpApi* api = nullptr;
  std::shared_ptr<ResponderGate> gate = std::make_shared<ResponderGate>();
  // Before ioc: sessions still queued in ioc are destroyed with it, and unregister.
  std::mutex sessions_mu;
  std::list<Session*> sessions;  // every open connection, to pick one to shed
  // The sessions waiting for a route's late answer: no I/O of theirs is pending, so this
  // is what keeps them alive (a responder holds only a weak reference). Dropped by stop().
  std::map<Session*, std::shared_ptr<Session>> awaiting;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  // Accepting again at once after EMFILE would spin: the pending connection stays queued.
  net::steady_timer accept_backoff{ioc};
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point accept_error_logged_at;
  uint64_t accept_errors_unlogged = 0;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;

  void accept();
  void on_accepted(tcp::socket socket);
  void on_accept_error(const beast::error_code& ec);
  void log_accept_error(const beast::error_code& ec);
  std::list<Session*>::iterator add(Session* session);
  void remove(std::list<Session*>::iterator registration);
  bool shed_longest_waiting();
  void hold_awaiting(const std::shared_ptr<Session>& session);
  void release_awaiting(Session* session);
  void drop_awaiting();
};

namespace {

// One connection: read a request (bounded in size and time), answer, repeat while the
// client keeps the connection alive. All handlers run on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server), registration_(server.add(this)) {}
  ~Session() { server_.remove(registration_); }

  void start() { read(); }

  // Since when the connection has waited on its client (for a request, or for it to
  // read an answer); 0 while the server works on a request or once it is shed.
  int64_t waiting_since_ns() const { return waiting_since_ns_.load(); }

  // Closes the connection to make room for another: on its strand, like all its I/O.
  void shed() {
    waiting_since_ns_ = 0;
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void wait_on_client() { waiting_since_ns_ = std::chrono::steady_clock::now().time_since_epoch().count(); }

  void read() {
    wait_on_client();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.header_limit));
    parser_->body_limit(server_.options.body_limit);
    timed_out_ = false;
    arm_deadline(server_.options.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
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
    waiting_since_ns_ = 0;
    timer_.cancel();
    ++deadline_;
    if (timed_out_) {
      // Idle keep-alive connections just close; a started request gets a 408.
      if (parser_->got_some())
        return reply(error_response(http::status::request_timeout, "request not complete in time", 11, false));
      return close();
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof) return close();
    if (ec.category() == http::make_error_code(http::error::bad_target).category())  // parse errors
      return reply(parse_error_response(ec));
    if (ec) return close();
    read_at_ = std::chrono::steady_clock::now();
    std::optional<HttpResponse> res = server_.api->handle(parser_->get(), [this] { return await_answer(); });
    if (res) answer(std::move(*res));
    // Else the route answers later: nothing is read meanwhile, no deadline runs, and the
    // connection is not waiting on its client, so it is never shed.
  }

  void answer(HttpResponse res) {
    if (spdlog::should_log(spdlog::level::debug)) log_request(parser_->get(), res, read_at_);
    reply(std::move(res));
  }

  // The responder of the request being handled (on the strand). It posts the answer
  // onto the strand, where the session writes it and reads the next request; the
  // server's gate keeps it from touching a stopped server, the weak reference from
  // touching a closed connection.
  Responder await_answer() {
    const uint64_t awaited = ++awaited_;
    server_.hold_awaiting(shared_from_this());
    return [gate = server_.gate, session = weak_from_this(), awaited](HttpResponse res) {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (!gate->open) return;
      std::shared_ptr<Session> self = session.lock();
      if (self == nullptr) return;
      net::post(self->stream_.get_executor(),
                [self, awaited, res = std::move(res)]() mutable { self->on_late_answer(awaited, std::move(res)); });
    };
  }

  // Only the first answer to the awaited request counts.
  void on_late_answer(uint64_t awaited, HttpResponse res) {
    if (awaited != awaited_ || answered_ == awaited) return;
    answered_ = awaited;
    server_.release_awaiting(this);
    answer(std::move(res));
  }

  // Method and path are the client's bytes: quoted and escaped (quotes, backslashes,
  // control and non-UTF-8 bytes), so that a request cannot forge fields or lines.
  static void log_request(const HttpRequest& req, const HttpResponse& res,
                          std::chrono::steady_clock::time_point start) {
    constexpr std::size_t kLoggedTargetBytes = 200;
    const std::string_view target(req.target().data(), req.target().size());
    spdlog::debug(
        "msg=\"http request\" method={} path={} status={} micros={}",
        quoted_log_value(std::string_view(req.method_string().data(), req.method_string().size())),
        quoted_log_value(target.substr(0, kLoggedTargetBytes)), res.result_int(),
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  }

  void reply(HttpResponse res) {
    response_ = std::move(res);
    server_.api->metrics().count(response_.result_int());
    const bool close_after = !response_.keep_alive();
    // The answer to a slow reader is bounded in time too.
    wait_on_client();
    timed_out_ = false;
    arm_deadline(server_.options.request_timeout);
    http::async_write(stream_, response_, [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
      self->timer_.cancel();
      ++self->deadline_;
      if (!ec && self->read_at_ != std::chrono::steady_clock::time_point{}) {
        self->server_.api->metrics().request_duration.observe_ns(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - self->read_at_)
                .count());
        self->read_at_ = {};
      }
      if (ec || close_after || self->timed_out_) return self->close();
      self->read();
    });
  }

  void close() {
    waiting_since_ns_ = 0;
    timer_.cancel();  // its handler holds the session: release it now, not at the deadline
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
  uint64_t deadline_ = 0;                          // the armed deadline; bumped by each arm_deadline()
  std::chrono::steady_clock::time_point read_at_;  // when the request being answered was read
  std::atomic<int64_t> waiting_since_ns_{0};       // steady clock; read by the acceptor
  const std::list<Session*>::iterator registration_;
  uint64_t awaited_ = 0;   // the last request given a responder (strand only)
  uint64_t answered_ = 0;  // the last of them answered
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec == net::error::connection_aborted) return accept();  // the client gave up first
    if (ec) return on_accept_error(ec);
    backoff = std::chrono::milliseconds(0);
    on_accepted(std::move(socket));
    accept();
  });
}

// At the cap, the connection that has waited longest on its client (idle, trickling a
// request, or not reading its answer) makes room: the newcomer may be a health probe.
void HttpServer::Impl::on_accepted(tcp::socket socket) {
  std::size_t open = 0;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    open = sessions.size();
  }
  beast::error_code ignored;
  if (open >= options.max_connections && !shed_longest_waiting()) {
    socket.close(ignored);  // every connection is being answered right now
    return;
  }
  socket.set_option(tcp::no_delay(true), ignored);
  std::make_shared<Session>(std::move(socket), *this)->start();
}

// Out of fds (EMFILE, ENFILE) or memory: the connection stays queued in the kernel, so
// accepting again at once would spin. Shed one connection to free an fd, back off
// (10 ms doubling to 1 s, reset by the next accept), never exit.
void HttpServer::Impl::on_accept_error(const beast::error_code& ec) {
  ++api->metrics().accept_errors;
  log_accept_error(ec);
  shed_longest_waiting();
  backoff = std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  accept_backoff.expires_after(backoff);
  accept_backoff.async_wait([this](beast::error_code wait_ec) {
    if (!wait_ec && acceptor.is_open()) accept();
  });
}

// One line per 10 s at most, counting the failures it stands for: this runs on the
// real-time HTTP thread, and a flood of log lines would be a second fault.
void HttpServer::Impl::log_accept_error(const beast::error_code& ec) {
  constexpr auto kInterval = std::chrono::seconds(10);
  ++accept_errors_unlogged;
  const auto now = std::chrono::steady_clock::now();
  if (accept_error_logged_at != std::chrono::steady_clock::time_point{} && now - accept_error_logged_at < kInterval)
    return;
  spdlog::warn(
      "msg=\"http accept failed; backing off and shedding the connection waiting longest\" "
      "error={} failures={} open_connections={}",
      quoted_log_value(ec.message()), accept_errors_unlogged, api->metrics().connections_open.load());
  accept_error_logged_at = now;
  accept_errors_unlogged = 0;
}

std::list<Session*>::iterator HttpServer::Impl::add(Session* session) {
  std::lock_guard<std::mutex> lock(sessions_mu);
  sessions.push_back(session);
  api->metrics().connections_open = sessions.size();
  return std::prev(sessions.end());
}

void HttpServer::Impl::remove(std::list<Session*>::iterator registration) {
  std::lock_guard<std::mutex> lock(sessions_mu);
  sessions.erase(registration);
  api->metrics().connections_open = sessions.size();
}

void HttpServer::Impl::hold_awaiting(const std::shared_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(sessions_mu);
  awaiting[session.get()] = session;
}

void HttpServer::Impl::release_awaiting(Session* session) {
  std::shared_ptr<Session> held;  // released after the lock: its destructor takes it
  std::lock_guard<std::mutex> lock(sessions_mu);
  auto it = awaiting.find(session);
  if (it == awaiting.end()) return;
  held = std::move(it->second);
  awaiting.erase(it);
}

// At stop, once no thread serves: the sessions still waiting for an answer close.
void HttpServer::Impl::drop_awaiting() {
  std::map<Session*, std::shared_ptr<Session>> dropped;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    dropped.swap(awaiting);
  }
}

bool HttpServer::Impl::shed_longest_waiting() {
  std::shared_ptr<Session> victim;  // released after the lock: its destructor takes it
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    Session* longest = nullptr;
    int64_t longest_since = 0;
    for (Session* s : sessions) {
      const int64_t since = s->waiting_since_ns();
      if (since != 0 && (longest == nullptr || since < longest_since)) {
        longest = s;
        longest_since = since;
      }
    }
    if (longest == nullptr) return false;
    victim = longest->weak_from_this().lock();
    if (victim == nullptr) return true;  // being destroyed: its fd is closed already
    victim->shed();
  }
  ++api->metrics().connections_shed;
  return true;
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop();
}

uint16_t HttpServer::port() const {
  return impl_->port;
}

Status HttpServer::start(const HttpServerOptions& options, HttpApi* api, std::unique_ptr<HttpServer>* out) {
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
  if (ec) return Status::io_error("http.address/http.port: cannot listen on " + where + ": " + ec.message());
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
        spdlog::warn("msg=\"http.realtime_priority = {} not applied, serving at normal priority{}\" error={}", priority,
                     denied ? " (needs root, CAP_SYS_NICE or RLIMIT_RTPRIO; 0 turns it off)" : "",
                     quoted_log_value(s.message()));
      io->run();
    });
  out->reset(new HttpServer(std::move(impl)));
  return Status::ok();
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard<std::mutex> lock(impl_->gate->mu);  // waits for a responder at work
    impl_->gate->open = false;
  }
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->drop_awaiting();
}

}  // namespace streamscore
