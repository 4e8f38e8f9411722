// The routes of the HTTP API, independent of sockets: a request goes in, a response
// comes out. The server (io/http_server.hpp) feeds it from connections, the fuzzer
// (tests/fuzz/fuzz_http.cpp) from raw bytes. What the routes serve comes through small
// interfaces, so that the API depends on neither the engine nor the model code.
//
//   GET  /healthz                  200 while the process runs
//   GET  /readyz                   200 once state is recovered and the source is open, else 503
//   GET  /metrics                  Prometheus text
//   GET  /v1/customers/{id}        the customer's item (JSON), 404 when unknown
//   POST /v1/customers:batchGet    {"ids":[...]} -> {"items":[item or null, ...]}, request order
//   GET  /v1/model                 active model version, metadata, history
//   POST /v1/model/activate        {"version":"vN"}   (bearer token)
//   POST /v1/model/rollback                           (bearer token)
// The two changes answer later, once the model is checked (see ModelAdmin); every other
// route answers at once.
#pragma once

#include <boost/beast/http.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "io/metrics_text.hpp"

namespace streamscore {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// Reads one customer's public item. Must be safe to call from the server's threads
// while the engine writes.
class CustomerLookup {
 public:
  virtual ~CustomerLookup() = default;
  // The item JSON as `export` prints it; NotFound when the customer has no public item.
  virtual Status get_item(std::string_view customer_id, std::string* item_json) = 0;
};

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  virtual std::string render_metrics() = 0;  // Prometheus text format 0.0.4
};

// The model registry as the admin routes see it. Each call gives a JSON object for the
// response body. Errors map to statuses: not_found 404 (unknown version), conflict 409
// (e.g. nothing to roll back to, a change already in progress), invalid_argument 400,
// anything else 500. A change (activate, rollback) loads and checks a model, which may
// take seconds: it reports its outcome through `done`, from any thread, at most once
// (never, when the admin stops with the change still pending), and must not wait for
// it on the calling thread, which is the HTTP server's. `describe` answers at once.
class ModelAdmin {
 public:
  using Done = std::function<void(const Status& status, std::string json)>;
  virtual ~ModelAdmin() = default;
  virtual Status describe(std::string* json) = 0;  // active version, its metadata, history
  virtual void activate(const std::string& version, Done done) = 0;
  virtual void rollback(Done done) = 0;
};

// Answers a request later, from any thread. Only the first call counts; a call after
// the connection closed or the server stopped is dropped.
using Responder = std::function<void(HttpResponse response)>;
// Called by a route that answers later: the responder of the request being handled.
using DeferAnswer = std::function<Responder()>;

// What the server measures: its probe, rendered into /metrics after the pipeline's.
struct HttpMetrics final : MetricsProbe {
  // From a request fully read to its response fully written (server side only).
  LatencyHistogram request_duration;
  std::array<std::atomic<uint64_t>, 6> responses{};  // by status class: [2] = 2xx ... [5] = 5xx
  std::atomic<uint64_t> batch_ids{0};                // ids looked up by answered batchGets
  // The connection cap (http.max_connections) at work: connections open now, those
  // closed to make room for a newer one, and accepts that failed (e.g. out of fds).
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_shed{0};
  std::atomic<uint64_t> accept_errors{0};

  void count(unsigned status) { ++responses[std::min<unsigned>(status / 100, 5)]; }
  void render(std::string& out, int64_t now_unix_ns) const override;
};

struct HttpApiOptions {
  CustomerLookup* customers = nullptr;  // null: 503 on the customer route
  MetricsSource* metrics = nullptr;     // null: 503 on /metrics
  ModelAdmin* model = nullptr;          // null: 503 on the model routes
  std::function<bool()> ready;          // null: never ready
};

class HttpApi {
 public:
  explicit HttpApi(HttpApiOptions options) : options_(std::move(options)) {}

  // Thread-safe. An empty token refuses every admin request (401).
  void set_admin_token(std::string token);

  // The response, or none when the route took the responder from `defer` to answer
  // later (the model changes). Every other route answers here, at once.
  std::optional<HttpResponse> handle(const HttpRequest& request, const DeferAnswer& defer);

  // Requests routed so far.
  uint64_t requests() const { return requests_.load(); }
  HttpMetrics& metrics() { return metrics_; }

 private:
  bool authorized(const HttpRequest& request);
  HttpResponse batch_get(const HttpRequest& request);

  HttpApiOptions options_;
  std::mutex token_mu_;
  std::string admin_token_;
  std::atomic<uint64_t> requests_{0};
  HttpMetrics metrics_;
};

// A response with a JSON body {"error": message} (or `body` when given as JSON).
HttpResponse json_response(http::status status, std::string body, unsigned version = 11, bool keep_alive = true);
HttpResponse error_response(http::status status, std::string_view message, unsigned version = 11,
                            bool keep_alive = true);

// The answer to a request the parser refused: 431 (headers too large), 413 (body too
// large) or 400 (malformed), always closing the connection.
HttpResponse parse_error_response(const boost::system::error_code& ec);

// The most ids one POST /v1/customers:batchGet may name (more: 413).
inline constexpr std::size_t kMaxBatchGetIds = 1000;

// Decodes %XX escapes in a path segment; false on a malformed escape or a decoded NUL.
bool percent_decode(std::string_view in, std::string* out);

}  // namespace streamscore
