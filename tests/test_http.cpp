// The HTTP API on real loopback sockets: every route, token enforcement, bad and
// oversize requests, slow clients, keep-alive, the Prometheus text, and the daemon glue
// (DaemonOps) over a real engine and store: metrics move as events flow, customer
// lookups match the export, SIGHUP-style reload applies the token and refuses the rest.
#define BOOST_TEST_MODULE http
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <list>
#include <map>
#include <thread>

#include "app/daemon_ops.hpp"
#include "engine_support.hpp"
#include "io/generator.hpp"
#include "io/http_client.hpp"
#include "io/http_server.hpp"
#include "io/metrics_text.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

using namespace streamscore;
namespace net = boost::asio;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;

namespace {

class FakeLookup final : public CustomerLookup {
 public:
  std::map<std::string, std::string> items;
  Status get_item(std::string_view id, std::string* json) override {
    if (id == "broken") return Status::io_error("the store is unreadable");
    auto it = items.find(std::string(id));
    if (it == items.end()) return Status::not_found();
    *json = it->second;
    return Status::ok();
  }
};

class FakeMetrics final : public MetricsSource {
 public:
  std::string render_metrics() override { return "# TYPE x counter\nx 1\n"; }
};

// A registry of versions v1..v3 with an activation history, like the CLI's.
class FakeModelAdmin final : public ModelAdmin {
 public:
  std::vector<std::string> history;  // activations, oldest first; back() is active
  Status describe(std::string* json) override {
    boost::json::object o;
    o["active"] = history.empty() ? boost::json::value(nullptr) : boost::json::value(history.back());
    boost::json::array h;
    for (const auto& v : history) h.push_back(boost::json::value(v));
    o["history"] = std::move(h);
    *json = boost::json::serialize(o);
    return Status::ok();
  }
  void activate(const std::string& version, Done done) override {
    if (version != "v1" && version != "v2" && version != "v3")
      return done(Status::not_found("no model version " + version), {});
    history.push_back(version);
    answer(done);
  }
  void rollback(Done done) override {
    if (history.size() < 2) return done(Status::conflict("no earlier version to roll back to"), {});
    history.pop_back();
    answer(done);
  }

 private:
  void answer(const Done& done) {
    std::string json;
    const Status s = describe(&json);
    done(s, std::move(json));
  }
};

// A model admin whose changes answer when the test calls their callbacks, from the
// test's thread, as the registry's admin thread does once a model is checked.
class LateModelAdmin final : public ModelAdmin {
 public:
  Status describe(std::string* json) override {
    *json = "{}";
    return Status::ok();
  }
  void activate(const std::string&, Done done) override { keep(std::move(done)); }
  void rollback(Done done) override { keep(std::move(done)); }

  std::size_t waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }
  Done take() {
    std::lock_guard<std::mutex> lock(mu_);
    Done done = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return done;
  }

 private:
  void keep(Done done) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(done));
  }
  std::mutex mu_;
  std::vector<Done> pending_;
};

struct ApiFixture {
  FakeLookup lookup;
  FakeMetrics metrics;
  FakeModelAdmin model;
  std::atomic<bool> ready{false};
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<HttpServer> server;

  // `admin`: another model admin than the fake registry (it must outlive the fixture).
  explicit ApiFixture(HttpServerOptions options = {}, ModelAdmin* admin = nullptr) {
    lookup.items["C0000001"] = R"({"PK":"CUSTOMER#C0000001","version":3})";
    lookup.items["a b/c"] = R"({"PK":"CUSTOMER#a b/c"})";
    HttpApiOptions o;
    o.customers = &lookup;
    o.metrics = &metrics;
    o.model = admin != nullptr ? admin : &model;
    o.ready = [this] { return ready.load(); };
    api = std::make_unique<HttpApi>(o);
    api->set_admin_token("t0ken");
    Status s = HttpServer::start(options, api.get(), &server);
    BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  }
  HttpClient client() const { return HttpClient("127.0.0.1", server->port()); }
};

HttpResponse call(HttpClient& c, http::verb method, const std::string& target, const std::string& body = {},
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse res;
  Status s = c.request(method, target, &res, body, headers);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return res;
}

const std::vector<std::pair<std::string, std::string>> kGoodToken = {{"Authorization", "Bearer t0ken"}};

// Sends raw bytes on a fresh connection and returns everything the server answers until
// it closes the connection (or 5 s pass).
std::string raw_exchange(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds pause_after = std::chrono::milliseconds(0)) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  timeval tv{5, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  boost::system::error_code ec;
  net::write(socket, net::buffer(bytes), ec);
  if (pause_after.count() > 0) std::this_thread::sleep_for(pause_after);
  std::string answer;
  char buf[4096];
  for (;;) {
    const std::size_t n = socket.read_some(net::buffer(buf), ec);
    answer.append(buf, n);
    if (ec) break;
  }
  return answer;
}

// The SCHED_RR/SCHED_FIFO priority of this process's thread named `name` (0: normal
// policy), -1 if there is no such thread.
int realtime_priority_of_thread(const std::string& name) {
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string n;
    if (!std::getline(comm, n) || n != name) continue;
    const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
    const int policy = sched_getscheduler(tid);
    sched_param param{};
    if (policy < 0 || sched_getparam(tid, &param) != 0) return -1;
    return policy == SCHED_RR || policy == SCHED_FIFO ? param.sched_priority : 0;
  }
  return -1;
}

// Whether `value()` equals `expected` within 5 s.
template <typename F, typename T>
bool wait_for_value(F value, T expected) {
  for (int i = 0; i < 500; ++i) {
    if (value() == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0) return -1;
  return std::stoi(raw.substr(9, 3));
}

}  // namespace

BOOST_AUTO_TEST_CASE(health_readiness_metrics_and_unknown_routes) {
  ApiFixture f;
  HttpClient c = f.client();
  HttpResponse r = call(c, http::verb::get, "/healthz");
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(call(c, http::verb::get, "/readyz").result_int() == 503);
  f.ready = true;
  BOOST_TEST(call(c, http::verb::get, "/readyz").result_int() == 200);
  r = call(c, http::verb::get, "/metrics");
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(std::string(r[http::field::content_type]).find("text/plain; version=0.0.4") == 0);
  BOOST_TEST(r.body() == "# TYPE x counter\nx 1\n");
  r = call(c, http::verb::get, "/nope");
  BOOST_TEST(r.result_int() == 404);
  BOOST_TEST(boost::json::parse(r.body()).at("error").as_string() == "no such route");
  r = call(c, http::verb::delete_, "/healthz");
  BOOST_TEST(r.result_int() == 405);
  BOOST_TEST(std::string(r[http::field::allow]) == "GET");
  BOOST_TEST(call(c, http::verb::get, "/healthz?verbose=1").result_int() == 200);
  BOOST_TEST(f.api->requests() == 7u);  // all of them on one keep-alive connection
}

BOOST_AUTO_TEST_CASE(customer_route_answers_the_item_404_or_400) {
  ApiFixture f;
  HttpClient c = f.client();
  HttpResponse r = call(c, http::verb::get, "/v1/customers/C0000001");
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(std::string(r[http::field::content_type]) == "application/json");
  BOOST_TEST(r.body() == f.lookup.items["C0000001"]);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/C0000002").result_int() == 404);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/a%20b%2Fc").result_int() == 200);  // URL-decoded
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/").result_int() == 400);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/a/b").result_int() == 400);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/bad%zz").result_int() == 400);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/nul%00").result_int() == 400);
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/" + std::string(257, 'x')).result_int() == 400);
  BOOST_TEST(call(c, http::verb::post, "/v1/customers/C0000001").result_int() == 405);
}

// {"ids":[...]} of the given ids, as a batchGet body.
std::string batch_body(const std::vector<std::string>& ids) {
  boost::json::array a;
  for (const auto& id : ids) a.emplace_back(id);
  boost::json::object o;
  o["ids"] = std::move(a);
  return boost::json::serialize(o);
}

BOOST_AUTO_TEST_CASE(batch_get_answers_items_or_null_in_request_order) {
  ApiFixture f;
  HttpClient c = f.client();
  const std::string route = "/v1/customers:batchGet";
  HttpResponse r = call(c, http::verb::post, route, batch_body({"C0000002", "C0000001", "a b/c", "C0000001"}));
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(std::string(r[http::field::content_type]) == "application/json");
  // Each item is spliced byte for byte as the single GET answers it.
  BOOST_TEST(r.body() == "{\"items\":[null," + f.lookup.items["C0000001"] + "," + f.lookup.items["a b/c"] + "," +
                             f.lookup.items["C0000001"] + "]}");
  BOOST_TEST(call(c, http::verb::post, route, R"({"ids":[]})").body() == R"({"items":[]})");
  // Up to kMaxBatchGetIds ids; one more is 413.
  std::vector<std::string> ids(kMaxBatchGetIds, "C0000001");
  r = call(c, http::verb::post, route, batch_body(ids));
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(boost::json::parse(r.body()).at("items").as_array().size() == kMaxBatchGetIds);
  ids.push_back("C0000001");
  r = call(c, http::verb::post, route, batch_body(ids));
  BOOST_TEST(r.result_int() == 413);
  BOOST_TEST(std::string(boost::json::parse(r.body()).at("error").as_string()) ==
             "at most 1000 ids per batchGet, got 1001");
  // Anything but {"ids":[strings of 1..256 bytes]} is 400, naming the bad id's index.
  for (const char* bad : {"", "not json", "[]", R"({"ids":"C1"})", R"({"id":["C1"]})", R"({"ids":null})"}) {
    r = call(c, http::verb::post, route, bad);
    BOOST_TEST(r.result_int() == 400, bad);
  }
  for (const std::string& bad_id : {std::string(), std::string(257, 'x'), std::string("a\0b", 3)}) {
    r = call(c, http::verb::post, route, batch_body({"C0000001", bad_id}));
    BOOST_TEST(r.result_int() == 400);
    BOOST_TEST(std::string(boost::json::parse(r.body()).at("error").as_string()).rfind("ids[1]: ", 0) == 0u);
  }
  r = call(c, http::verb::post, route, R"({"ids":["C0000001",7]})");
  BOOST_TEST(r.result_int() == 400);
  // A lookup that fails fails the batch (500, naming the id's index), never a silent null.
  r = call(c, http::verb::post, route, batch_body({"C0000001", "broken"}));
  BOOST_TEST(r.result_int() == 500);
  BOOST_TEST(std::string(boost::json::parse(r.body()).at("error").as_string()).find("ids[1]") == 0u);
  r = call(c, http::verb::get, route);
  BOOST_TEST(r.result_int() == 405);
  BOOST_TEST(std::string(r[http::field::allow]) == "POST");
  BOOST_TEST(call(c, http::verb::post, "/v1/customers:batchget", batch_body({"C0000001"})).result_int() == 404);
}

BOOST_AUTO_TEST_CASE(model_admin_routes_need_the_bearer_token) {
  ApiFixture f;
  HttpClient c = f.client();
  HttpResponse r = call(c, http::verb::get, "/v1/model");  // read-only: no token
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(r.body() == R"({"active":null,"history":[]})");

  const std::string body = R"({"version":"v2"})";
  r = call(c, http::verb::post, "/v1/model/activate", body);
  BOOST_TEST(r.result_int() == 401);
  BOOST_TEST(std::string(r[http::field::www_authenticate]) == "Bearer");
  BOOST_TEST(r.body().find("t0ken") == std::string::npos);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", body, {{"Authorization", "Bearer t0ke"}}).result_int() ==
             401);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", body, {{"Authorization", "Bearer t0ken2"}}).result_int() ==
             401);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", body, {{"Authorization", "t0ken"}}).result_int() == 401);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback", "").result_int() == 401);
  BOOST_TEST(f.model.history.empty());  // nothing happened without the token

  r = call(c, http::verb::post, "/v1/model/activate", body, kGoodToken);
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(r.body() == R"({"active":"v2","history":["v2"]})");
  BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", R"({"version":"v3"})", kGoodToken).result_int() == 200);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", R"({"version":"v9"})", kGoodToken).result_int() == 404);
  for (const char* bad : {"{", "[]", R"({"version":3})", R"({"version":""})", R"({"v":"v1"})", ""})
    BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", bad, kGoodToken).result_int() == 400, bad);
  r = call(c, http::verb::post, "/v1/model/rollback", "", kGoodToken);
  BOOST_TEST(r.result_int() == 200);
  BOOST_TEST(boost::json::parse(r.body()).at("active").as_string() == "v2");
  BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback", "", kGoodToken).result_int() == 409);
  BOOST_TEST(call(c, http::verb::get, "/v1/model/activate").result_int() == 405);
  BOOST_TEST(call(c, http::verb::post, "/v1/model", "", kGoodToken).result_int() == 405);

  // An unset token refuses everyone, including a client that sends an empty bearer.
  f.api->set_admin_token("");
  BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback", "", {{"Authorization", "Bearer "}}).result_int() == 401);
  BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback", "", kGoodToken).result_int() == 401);
}

// RFC 9110 section 11.1: the auth scheme is case-insensitive and separated from the
// credentials by one or more spaces.
BOOST_AUTO_TEST_CASE(bearer_scheme_matches_in_any_case) {
  ApiFixture f;
  HttpClient c = f.client();
  for (const char* value : {"bearer t0ken", "BEARER t0ken", "bEaReR t0ken", "Bearer   t0ken"})
    BOOST_TEST(call(c, http::verb::post, "/v1/model/activate", R"({"version":"v1"})", {{"Authorization", value}})
                       .result_int() == 200,
               value);
  for (const char* value : {"bearer t0ke", "bearer", "bearer ", "Bearerx t0ken", "Basic t0ken", "bearer\tt0ken"})
    BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback", "", {{"Authorization", value}}).result_int() == 401,
               value);
}

namespace {

// Collects what spdlog writes while it lives (at debug level), then puts the logger back.
struct CapturedLog {
  std::ostringstream text;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  CapturedLog() {
    auto logger = std::make_shared<spdlog::logger>("captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous); }
  std::string lines() {
    spdlog::default_logger()->flush();
    return text.str();
  }
};

}  // namespace

// The debug request log quotes what the client chose (method, path) with every '"', '\\'
// and non-UTF-8 byte escaped, so that a path cannot forge key=value pairs or lines.
BOOST_AUTO_TEST_CASE(debug_request_log_escapes_client_strings) {
  ApiFixture f;
  CapturedLog log;
  // No spaces: they end the request target.
  const std::string forged = "/x\"admin=\"yes\\\"\xff";
  raw_exchange(f.server->port(), "GET " + forged + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  // The server logs before it answers, and the exchange ends when it has answered.
  const std::string lines = log.lines();
  BOOST_TEST(lines.find(R"(path="/x\"admin=\"yes\\\"\u00ff")") != std::string::npos, lines);
  BOOST_TEST(lines.find("x\"admin=\"yes") == std::string::npos, lines);
  BOOST_TEST(lines.find("\xff") == std::string::npos, lines);
}

BOOST_AUTO_TEST_CASE(oversize_malformed_and_slow_requests_get_their_status_fast) {
  HttpServerOptions options;
  options.request_timeout = std::chrono::milliseconds(300);
  options.header_limit = 2048;
  options.body_limit = 1024;
  ApiFixture f(options);
  const uint16_t port = f.server->port();
  const auto t0 = std::chrono::steady_clock::now();

  std::string big_header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(4096, 'a') + "\r\n\r\n";
  BOOST_TEST(status_of(raw_exchange(port, big_header)) == 431);
  std::string big_body =
      "POST /v1/model/activate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, '{');
  BOOST_TEST(status_of(raw_exchange(port, big_body)) == 413);
  BOOST_TEST(status_of(raw_exchange(port, "GARBAGE\r\n\r\n")) == 400);
  BOOST_TEST(status_of(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")) == 400);
  BOOST_TEST(status_of(raw_exchange(port, "GET /healthz HTTP/9.9\r\n\r\n")) == 400);
  // A client that starts a request and stalls gets 408 once the timeout passes.
  const auto slow_start = std::chrono::steady_clock::now();
  const std::string slow = raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const auto slow_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - slow_start).count();
  BOOST_TEST(status_of(slow) == 408);
  BOOST_TEST(slow_ms >= 250);
  BOOST_TEST(slow_ms < 3000);
  // An idle connection is closed without an answer.
  BOOST_TEST(raw_exchange(port, "").empty());
  // Meanwhile, other clients are served normally.
  HttpClient c = f.client();
  BOOST_TEST(call(c, http::verb::get, "/healthz").result_int() == 200);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(a_stalled_client_does_not_delay_others) {
  HttpServerOptions options;
  options.request_timeout = std::chrono::milliseconds(2000);
  ApiFixture f(options);
  std::thread stalled([port = f.server->port()] { raw_exchange(port, "GET /hea"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  HttpClient c = f.client();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) BOOST_TEST(call(c, http::verb::get, "/v1/customers/C0000001").result_int() == 200);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1000)));
  stalled.join();
}

// At the cap, a new connection closes the one that has waited longest on its client
// (here the first idle one), not itself: a probe gets in while idle clients hold the cap.
BOOST_AUTO_TEST_CASE(at_the_cap_the_longest_waiting_connection_is_shed) {
  HttpServerOptions options;
  options.max_connections = 3;
  options.request_timeout = std::chrono::milliseconds(30000);
  ApiFixture f(options);
  net::io_context ioc;
  std::vector<tcp::socket> idle;
  const tcp::endpoint server(net::ip::make_address("127.0.0.1"), f.server->port());
  for (int i = 0; i < 3; ++i) {
    idle.emplace_back(ioc).connect(server);
    BOOST_TEST_REQUIRE(wait_for_value([&] { return f.api->metrics().connections_open.load(); }, i + 1u));
  }
  idle[1].send(net::buffer(std::string("GET /hea")));  // a slow request, started after the first connected
  HttpClient c = f.client();
  BOOST_TEST(call(c, http::verb::get, "/healthz").result_int() == 200);
  BOOST_TEST(f.api->metrics().connections_shed.load() == 1u);
  const auto closed = [&](tcp::socket& s) {
    timeval tv{2, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    boost::system::error_code ec;
    s.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof;
  };
  BOOST_TEST(closed(idle[0]));
  // idle[1], idle[2] and the probe's keep-alive connection
  BOOST_TEST(wait_for_value([&] { return f.api->metrics().connections_open.load(); }, 3u));
}

// A change answered later: meanwhile the single HTTP thread serves other connections,
// the awaiting connection has no deadline and is never shed at the cap; the answer is
// written once (a second call is ignored) and the connection goes on serving.
BOOST_AUTO_TEST_CASE(a_late_answer_leaves_the_server_free_and_keeps_the_connection) {
  LateModelAdmin admin;
  HttpServerOptions options;
  options.threads = 1;
  options.max_connections = 2;
  options.request_timeout = std::chrono::milliseconds(300);
  ApiFixture f(options, &admin);
  HttpClient changer = f.client();
  auto change = std::async(std::launch::async, [&] {
    HttpResponse res;
    const Status s = changer.request(http::verb::post, "/v1/model/activate", &res, R"({"version":"v2"})", kGoodToken);
    return s.is_ok() ? res : error_response(http::status::bad_gateway, s.to_string());
  });
  BOOST_TEST_REQUIRE(wait_for_value([&] { return admin.waiting(); }, std::size_t{1}));
  // Longer than request_timeout, with newcomers at the cap: each sheds the previous one,
  // left idle (kept open: one the client closes may not be sheddable yet).
  std::list<HttpClient> probes;
  for (int i = 0; i < 4; ++i) {
    probes.emplace_back("127.0.0.1", f.server->port());
    BOOST_TEST(call(probes.back(), http::verb::get, "/healthz").result_int() == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  BOOST_TEST((change.wait_for(std::chrono::seconds(0)) == std::future_status::timeout));
  const ModelAdmin::Done done = admin.take();
  done(Status::ok(), R"({"active":"v2"})");
  done(Status::conflict("answered twice"), {});
  const HttpResponse answer = change.get();
  BOOST_TEST(answer.result_int() == 200, answer.body());
  BOOST_TEST(answer.body() == R"({"active":"v2"})");
  const HttpResponse next = call(changer, http::verb::get, "/healthz");
  BOOST_TEST(next.result_int() == 200);
  BOOST_TEST(next.body() == "ok\n");
  // A refusal answers later too, with its status.
  auto refused = std::async(std::launch::async, [&] {
    return call(changer, http::verb::post, "/v1/model/rollback", "", kGoodToken).result_int();
  });
  BOOST_TEST_REQUIRE(wait_for_value([&] { return admin.waiting(); }, std::size_t{1}));
  admin.take()(Status::conflict("no earlier version to roll back to"), {});
  BOOST_TEST(refused.get() == 409);
}

// A responder called while the server stops, after it stopped, or destroyed after the
// server is gone touches nothing of it (ASan); the awaiting client sees its connection
// closed.
BOOST_AUTO_TEST_CASE(a_late_answer_after_the_server_stopped_does_nothing) {
  LateModelAdmin admin;
  auto f = std::make_unique<ApiFixture>(HttpServerOptions{}, &admin);
  std::vector<std::future<Status>> changes;
  for (int i = 0; i < 3; ++i)
    changes.push_back(std::async(std::launch::async, [port = f->server->port()] {
      HttpClient c("127.0.0.1", port);
      HttpResponse res;
      return c.request(http::verb::post, "/v1/model/rollback", &res, "", kGoodToken);
    }));
  BOOST_TEST_REQUIRE(wait_for_value([&] { return admin.waiting(); }, std::size_t{3}));
  ModelAdmin::Done during = admin.take();
  std::thread racing([&] { during(Status::ok(), "{}"); });
  f->server->stop();
  racing.join();
  int unanswered = 0;  // the racing answer may have been written before the stop
  for (auto& change : changes) unanswered += change.get().is_ok() ? 0 : 1;
  BOOST_TEST(unanswered >= 2);
  admin.take()(Status::ok(), "{}");  // stopped
  ModelAdmin::Done after_destruction = admin.take();
  f.reset();
  after_destruction(Status::ok(), "{}");
}

BOOST_AUTO_TEST_CASE(server_refuses_a_taken_port_naming_the_key) {
  ApiFixture f;
  HttpServerOptions options;
  options.port = f.server->port();
  std::unique_ptr<HttpServer> second;
  Status s = HttpServer::start(options, f.api.get(), &second);
  BOOST_TEST(!s.is_ok());
  BOOST_TEST(s.message().find("http.port") != std::string::npos);
  options.address = "not-an-address";
  BOOST_TEST(HttpServer::start(options, f.api.get(), &second).message().find("http.address") != std::string::npos);
}

// http.realtime_priority: with the privilege (root, as here and in CI) the server's thread
// runs under SCHED_RR at that priority; without it the server starts all the same and
// serves at normal priority (a warning, never an error).
BOOST_AUTO_TEST_CASE(realtime_priority_is_applied_when_permitted_and_never_fatal) {
  HttpServerOptions options;
  options.realtime_priority = 3;
  {
    ApiFixture f(options);
    HttpClient c = f.client();
    BOOST_TEST(call(c, http::verb::get, "/healthz").result_int() == 200);  // the thread has started
    const int priority = realtime_priority_of_thread("http");
    if (geteuid() == 0)
      BOOST_TEST(priority == 3);
    else
      BOOST_TEST((priority == 0 || priority == 3));  // RLIMIT_RTPRIO may allow it
  }
  if (geteuid() != 0) return;  // this run was the unprivileged case
  // The unprivileged case from root: a child process that gives up root first.
  const pid_t pid = fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit no_rt{0, 0};  // no real-time allowance left once not root
    if (setrlimit(RLIMIT_RTPRIO, &no_rt) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    HttpApiOptions o;
    HttpApi api(o);
    std::unique_ptr<HttpServer> server;
    if (!HttpServer::start(options, &api, &server).is_ok()) _exit(4);
    HttpClient c("127.0.0.1", server->port());
    HttpResponse res;
    if (!c.get("/healthz", &res).is_ok() || res.result_int() != 200) _exit(5);
    _exit(realtime_priority_of_thread("http") == 0 ? 0 : 6);
  }
  int status = 0;
  BOOST_TEST_REQUIRE(waitpid(pid, &status, 0) == pid);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_CASE(prometheus_parser_accepts_the_rendering_and_rejects_malformed_text) {
  RouterProbe router;
  router.read = 10;
  router.dead_lettered[0] = 2;
  ShardProbe shards;
  shards.shard_count = 2;
  shards.shard_batches_sent[1] = 7;  // 5 of them not applied yet
  shards.shard_batches_applied[1] = 2;
  shards.tick_duration.observe_ns(300'000);     // 0.3 ms
  shards.tick_duration.observe_ns(20'000'000);  // 20 ms
  ClockProbe clock;
  ProcessProbe process([] { return true; }, [] { return uint64_t{1} << 20; });
  MetricsRegistry registry;
  for (const MetricsProbe* probe : std::initializer_list<const MetricsProbe*>{&router, &clock, &shards, &process})
    registry.add(probe);
  MetricsSnapshot snap;
  Status s = parse_prometheus(registry.render(), &snap);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  BOOST_TEST(snap.value("streamscore_events_read_total") == 10);
  BOOST_TEST(snap.value("streamscore_events_dead_lettered_total{reason=\"not_json\"}") == 2);
  BOOST_TEST(snap.sum("streamscore_events_dead_lettered_total") == 2);
  BOOST_TEST(snap.value("streamscore_shard_queue_depth{shard=\"1\"}") == 5);
  BOOST_TEST(snap.value("streamscore_tick_duration_seconds_bucket{le=\"0.0005\"}") == 1);
  BOOST_TEST(snap.value("streamscore_tick_duration_seconds_bucket{le=\"+Inf\"}") == 2);
  BOOST_TEST(snap.value("streamscore_tick_duration_seconds_count") == 2);
  BOOST_TEST(snap.value("streamscore_tick_duration_seconds_sum") == 0.0203, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(snap.value("process_resident_memory_bytes") == 1 << 20);
  BOOST_TEST(snap.value("streamscore_ready") == 1);
  BOOST_TEST(snap.types["streamscore_events_read_total"] == "counter");
  BOOST_TEST(snap.samples.count("streamscore_watermark_seconds") == 0u);  // clock not started

  for (const char* bad :
       {"x 1\n", "# TYPE x counter\nx{a=\"1\" 1\n", "# TYPE x counter\nx one\n", "# TYPE x counter\n1x 1\n",
        "# TYPE x countr\nx 1\n", "# TYPE x counter\nx{a=b} 1\n", "# TYPE x counter\nx\n"})
    BOOST_TEST(!parse_prometheus(bad, &snap).is_ok(), bad);
  BOOST_TEST(parse_prometheus("# TYPE x gauge\nx{a=\"q\\\"\",b=\"2\"} -1.5e3 1700000000\n", &snap).is_ok());
  BOOST_TEST(snap.value("x{a=\"q\\\"\",b=\"2\"}") == -1500);
}

BOOST_AUTO_TEST_CASE(url_parsing) {
  HttpUrl u;
  BOOST_TEST(parse_http_url("http://127.0.0.1:8480", &u).is_ok());
  BOOST_TEST(u.host == "127.0.0.1");
  BOOST_TEST(u.port == 8480);
  BOOST_TEST(parse_http_url("http://localhost/base/", &u).is_ok());
  BOOST_TEST(u.port == 80);
  BOOST_TEST(u.path == "/base");
  BOOST_TEST(parse_http_url("HTTP://127.0.0.1:8480", &u).is_ok());  // schemes are case-insensitive (RFC 3986)
  BOOST_TEST(u.port == 8480);
  for (const char* bad : {"https://x", "x:1", "http://:80", "http://x:0", "http://x:99999", "http://x:8a"})
    BOOST_TEST(!parse_http_url(bad, &u).is_ok(), bad);
}

// ---- the daemon glue over a real engine and store -----------------------------------

namespace {

std::vector<std::string> generated_lines(int events) {
  GeneratorOptions g;
  g.customers = 200;
  g.events = events;
  g.days = 3;
  g.seed = 11;
  EventGenerator gen(g);
  std::vector<std::string> lines;
  std::string line;
  while (gen.next(&line)) lines.push_back(line);
  return lines;
}

MetricsSnapshot scrape(HttpClient& c) {
  HttpResponse r = call(c, http::verb::get, "/metrics");
  BOOST_TEST_REQUIRE(r.result_int() == 200);
  MetricsSnapshot snap;
  Status s = parse_prometheus(r.body(), &snap);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return snap;
}

struct TempConfig {
  fs::path path = fs::temp_directory_path() / ("streamscore-http-" + std::to_string(::getpid()) + ".toml");
  void write(const std::string& text) { std::ofstream(path) << text; }
  ~TempConfig() { fs::remove(path); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(daemon_serves_store_items_and_metrics_that_move_with_events) {
  const std::vector<std::string> lines = generated_lines(20000);
  auto store = make_memory_store();
  EngineOptions options;
  options.shards = 4;
  options.threads = 2;
  options.now_ns = [] { return testing::kTestNow; };
  std::unique_ptr<Engine> engine;
  BOOST_TEST_REQUIRE(Engine::start(options, store.get(), &engine).is_ok());

  Config config;
  config.http.port = 0;
  std::unique_ptr<DaemonOps> ops;
  KafkaSourceProbe kafka_source;
  KafkaSinkProbe kafka_sinks;
  MetricsRegistry metrics = pipeline_probes(*engine, kafka_source, kafka_sinks);
  Status s = DaemonOps::start({}, config, &metrics, store.get(), &ops);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  HttpClient c("127.0.0.1", ops->http_port());
  BOOST_TEST(call(c, http::verb::get, "/readyz").result_int() == 503);
  ops->set_ready(true);
  BOOST_TEST(call(c, http::verb::get, "/readyz").result_int() == 200);
  MetricsSnapshot before = scrape(c);
  BOOST_TEST(before.value("streamscore_events_read_total", -1) == 0);
  BOOST_TEST(before.value("process_resident_memory_bytes") > 0);

  BOOST_TEST_REQUIRE(engine->submit(testing::make_batch(lines, 0, 10000, "t")).is_ok());
  MetricsSnapshot mid;
  for (int i = 0; i < 200; ++i) {  // the router counts a batch once it is classified
    mid = scrape(c);
    if (mid.value("streamscore_events_read_total") == 10000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_TEST(mid.value("streamscore_events_read_total") == 10000);
  BOOST_TEST(mid.value("streamscore_events_read_total") == mid.value("streamscore_events_accepted_total") +
                                                               mid.value("streamscore_events_duplicate_total") +
                                                               mid.sum("streamscore_events_dead_lettered_total"));

  // A checkpoint writes the items: /metrics shows it, and its age.
  BOOST_TEST_REQUIRE(engine->checkpoint({}).is_ok());
  MetricsSnapshot checkpointed = scrape(c);
  BOOST_TEST(checkpointed.value("streamscore_checkpoints_total") == 1);
  BOOST_TEST(checkpointed.value("streamscore_items_written_total") > 0);
  BOOST_TEST(checkpointed.value("streamscore_checkpoint_age_seconds", -1) >= 0);
  BOOST_TEST(checkpointed.value("streamscore_checkpoint_age_seconds", -1) < 60);
  BOOST_TEST_REQUIRE(engine->submit(testing::make_batch(lines, 10000, lines.size(), "t")).is_ok());
  RunStats stats;
  BOOST_TEST_REQUIRE(engine->finish(true, &stats).is_ok());
  MetricsSnapshot after = scrape(c);
  BOOST_TEST(after.value("streamscore_events_read_total") == static_cast<double>(stats.read));
  BOOST_TEST(after.value("streamscore_events_accepted_total") == static_cast<double>(stats.accepted));
  BOOST_TEST(after.value("streamscore_ticks_total") == static_cast<double>(stats.ticks));
  BOOST_TEST(after.value("streamscore_items_written_total") > checkpointed.value("streamscore_items_written_total"));
  BOOST_TEST(after.value("streamscore_write_conflicts_total", -1) == 0);
  BOOST_TEST(after.value("streamscore_max_event_time_seconds") == static_cast<double>(stats.clock.max_event_ns) / 1e9);
  BOOST_TEST(after.value("streamscore_watermark_seconds") ==
             static_cast<double>(stats.clock.max_event_ns - options.allowed_lateness_ns) / 1e9);
  BOOST_TEST(after.value("streamscore_tick_duration_seconds_count") > 0);
  BOOST_TEST(after.value("streamscore_tick_duration_seconds_count") >
             mid.value("streamscore_tick_duration_seconds_count"));
  BOOST_TEST(after.samples.count("streamscore_shard_queue_depth{shard=\"3\"}") == 1u);
  BOOST_TEST(after.samples.count("streamscore_shard_queue_depth{shard=\"4\"}") == 0u);

  // Every exported item is served as is; a customer without events is 404.
  const std::vector<std::string> items = testing::export_items(*store);
  BOOST_TEST_REQUIRE(!items.empty());
  for (std::size_t i = 0; i < items.size(); i += 17) {
    const std::string id =
        std::string(boost::json::parse(items[i]).at("PK").as_string()).substr(std::string("CUSTOMER#").size());
    HttpResponse r = call(c, http::verb::get, "/v1/customers/" + id);
    BOOST_TEST(r.result_int() == 200);
    BOOST_TEST(r.body() == items[i]);
  }
  BOOST_TEST(call(c, http::verb::get, "/v1/customers/C9999999").result_int() == 404);
  // A batch answers the same items, in request order, null for the unknown customer.
  std::vector<std::string> batch_ids;
  std::string expected = "{\"items\":[";
  for (std::size_t i = 0; i < items.size() && batch_ids.size() < 50; i += 7) {
    batch_ids.push_back(
        std::string(boost::json::parse(items[i]).at("PK").as_string()).substr(std::string("CUSTOMER#").size()));
    expected += items[i] + ",";
  }
  batch_ids.push_back("C9999999");
  expected += "null]}";
  HttpResponse batch = call(c, http::verb::post, "/v1/customers:batchGet", batch_body(batch_ids));
  BOOST_TEST(batch.result_int() == 200);
  BOOST_TEST(batch.body() == expected);
  BOOST_TEST(scrape(c).value("streamscore_http_batch_get_ids_total") == static_cast<double>(batch_ids.size()));
  // The server's own metrics count what it answered.
  MetricsSnapshot served = scrape(c);
  BOOST_TEST(served.value("streamscore_http_responses_total{code=\"4xx\"}") == 1);
  BOOST_TEST(served.value("streamscore_http_responses_total{code=\"2xx\"}") >= 12);
  // Both count answers already written; this scrape's own answer is in neither yet.
  BOOST_TEST(served.value("streamscore_http_request_duration_seconds_count") ==
             served.sum("streamscore_http_responses_total"));
  BOOST_TEST(histogram_quantile(served, "streamscore_http_request_duration_seconds", 0.5) > 0);
  // No registry in this process: admin routes still check the token first.
  BOOST_TEST(call(c, http::verb::post, "/v1/model/rollback").result_int() == 401);
  BOOST_TEST(call(c, http::verb::get, "/v1/model").result_int() == 503);
  ops->stop();
  HttpClient fresh("127.0.0.1", ops->http_port(), std::chrono::milliseconds(500));
  HttpResponse ignored;
  BOOST_TEST(!fresh.get("/healthz", &ignored).is_ok());
}

BOOST_AUTO_TEST_CASE(reload_applies_the_token_and_refuses_restart_keys) {
  TempConfig file;
  file.write("[http]\nport = 0\nadmin_token = \"first\"\n");
  Config config;
  BOOST_TEST_REQUIRE(load_config(file.path.string(), {}, &config).is_ok());
  auto store = make_memory_store();
  MetricsRegistry metrics;
  FakeModelAdmin model;
  DaemonOps::Options options;
  options.config_path = file.path.string();
  options.model = &model;
  std::unique_ptr<DaemonOps> ops;
  BOOST_TEST_REQUIRE(DaemonOps::start(options, config, &metrics, store.get(), &ops).is_ok());
  const uint16_t port = ops->http_port();
  HttpClient c("127.0.0.1", port);
  auto activate = [&](const std::string& token) {
    return call(c, http::verb::post, "/v1/model/activate", R"({"version":"v1"})",
                {{"Authorization", "Bearer " + token}})
        .result_int();
  };
  BOOST_TEST(activate("first") == 200);
  BOOST_TEST(activate("second") == 401);

  // A new token and a port change: the token applies, the port does not (restart key).
  file.write("[http]\nport = 1\nadmin_token = \"second\"\n");
  DaemonOps::request_reload();  // what the SIGHUP handler does
  for (int i = 0; i < 100 && activate("second") != 200; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_TEST(activate("second") == 200);
  BOOST_TEST(activate("first") == 401);
  BOOST_TEST(ops->http_port() == port);
  // A config that no longer loads changes nothing.
  file.write("[http]\nport = \"x\"\n");
  ops->reload();
  BOOST_TEST(activate("second") == 200);
}
