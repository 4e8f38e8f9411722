#include "io/http_api.hpp"

#include <fmt/format.h>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>

#include "io/metrics_text.hpp"

namespace streamscore {

namespace {

constexpr std::string_view kCustomersPrefix = "/v1/customers/";
constexpr std::string_view kBatchGetRoute = "/v1/customers:batchGet";
constexpr std::size_t kMaxCustomerIdBytes = 256;

// Compares in time independent of where the strings differ, so that response times do
// not reveal a prefix of the token.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// `Authorization: Bearer <token>`: the scheme in any case, then one or more spaces
// (RFC 9110 section 11.1 and 11.4). False when the value has another form.
bool bearer_token_of(std::string_view value, std::string_view* token) {
  constexpr std::string_view kBearer = "bearer";
  if (value.size() <= kBearer.size() || !boost::beast::iequals(value.substr(0, kBearer.size()), kBearer) ||
      value[kBearer.size()] != ' ')
    return false;
  value.remove_prefix(kBearer.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  *token = value;
  return !value.empty();
}

http::status status_of(const Status& s) {
  switch (s.code()) {
    case Status::Code::ok:
      return http::status::ok;
    case Status::Code::not_found:
      return http::status::not_found;
    case Status::Code::conflict:
      return http::status::conflict;
    case Status::Code::invalid_argument:
      return http::status::bad_request;
    default:
      return http::status::internal_server_error;
  }
}

HttpResponse text_response(http::status status, std::string body, const char* content_type) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

HttpResponse method_not_allowed(const char* allow) {
  HttpResponse res = error_response(http::status::method_not_allowed, "method not allowed");
  res.set(http::field::allow, allow);
  return res;
}

// The version named by an activation's body {"version":"vN"}; false when there is none.
bool version_of(const HttpRequest& request, std::string* version) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(request.body(), ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  const boost::json::value* name = o ? o->if_contains("version") : nullptr;
  if (name == nullptr || !name->is_string() || name->as_string().empty()) return false;
  *version = std::string(name->as_string());
  return true;
}

// The ids of a batchGet body {"ids":["C1","C2",...]}: an error response when the body
// is not that shape, names an id that is empty, longer than kMaxCustomerIdBytes or holds a
// NUL (as the single GET refuses), or names more than kMaxBatchGetIds ids (413).
std::optional<HttpResponse> batch_ids_of(const HttpRequest& request, std::vector<std::string>* ids) {
  constexpr std::string_view kShape = R"(expected a JSON body {"ids":["customer_id", ...]})";
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(request.body(), ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  const boost::json::value* list = o ? o->if_contains("ids") : nullptr;
  if (list == nullptr || !list->is_array()) return error_response(http::status::bad_request, kShape);
  const boost::json::array& a = list->get_array();
  if (a.size() > kMaxBatchGetIds)
    return error_response(http::status::payload_too_large,
                          fmt::format("at most {} ids per batchGet, got {}", kMaxBatchGetIds, a.size()));
  ids->reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const boost::json::string* id = a[i].if_string();
    if (id == nullptr || id->empty() || id->size() > kMaxCustomerIdBytes ||
        std::string_view(*id).find('\0') != std::string_view::npos)
      return error_response(
          http::status::bad_request,
          fmt::format("ids[{}]: expected a customer id string of 1 to {} bytes without NUL", i, kMaxCustomerIdBytes));
    ids->emplace_back(*id);
  }
  return std::nullopt;
}

}  // namespace

HttpResponse json_response(http::status status, std::string body, unsigned version, bool keep_alive) {
  HttpResponse res{status, version};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse error_response(http::status status, std::string_view message, unsigned version, bool keep_alive) {
  boost::json::object o;
  o["error"] = message;
  return json_response(status, boost::json::serialize(o), version, keep_alive);
}

HttpResponse parse_error_response(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit)
    return error_response(http::status::request_header_fields_too_large, "request headers too large", 11, false);
  if (ec == http::error::body_limit)
    return error_response(http::status::payload_too_large, "request body too large", 11, false);
  return error_response(http::status::bad_request, "malformed HTTP request", 11, false);
}

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

void HttpMetrics::render(std::string& out, int64_t) const {
  render_histogram(out, "streamscore_http_request_duration_seconds",
                   "Server time from a request read to its response written.", request_duration);
  out +=
      "# HELP streamscore_http_responses_total HTTP responses by status class.\n"
      "# TYPE streamscore_http_responses_total counter\n";
  for (int c = 1; c <= 5; ++c)
    out += fmt::format("streamscore_http_responses_total{{code=\"{}xx\"}} {}\n", c, responses[c].load());
  render_gauge(out, "streamscore_http_connections_open", "HTTP connections open (at most http.max_connections).",
               static_cast<double>(connections_open.load()));
  render_counter(out, "streamscore_http_connections_shed_total",
                 "Connections closed to make room for a new one: the one waiting longest on its client.",
                 connections_shed.load());
  render_counter(out, "streamscore_http_batch_get_ids_total",
                 "Customer ids looked up by answered POST /v1/customers:batchGet requests.", batch_ids.load());
  render_counter(out, "streamscore_http_accept_errors_total",
                 "Accepts that failed, e.g. out of file descriptors (the server backs off and sheds).",
                 accept_errors.load());
}

void HttpApi::set_admin_token(std::string token) {
  std::lock_guard<std::mutex> lock(token_mu_);
  admin_token_ = std::move(token);
}

bool HttpApi::authorized(const HttpRequest& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return false;
  std::string_view token;
  if (!bearer_token_of(std::string_view(it->value().data(), it->value().size()), &token)) return false;
  std::lock_guard<std::mutex> lock(token_mu_);
  return !admin_token_.empty() && constant_time_equal(token, admin_token_);
}

namespace {

// A response to `request`: its HTTP version and keep-alive, the length set.
void fit_to_request(HttpResponse& res, unsigned version, bool keep_alive) {
  res.version(version);
  res.keep_alive(keep_alive);
  res.prepare_payload();
}

// A model route's answer: the admin's JSON, or its error mapped to a status.
HttpResponse model_response(const Status& s, std::string body) {
  if (!s.is_ok()) return error_response(status_of(s), s.message());
  return json_response(http::status::ok, std::move(body));
}

}  // namespace

// Each id is looked up as the single GET does, one after the other: an item is the
// customer's latest committed one when it is read, and a commit may land between two
// ids (like DynamoDB's BatchGetItem, not a snapshot across customers). The items are
// spliced in as stored, so each is byte for byte what GET /v1/customers/{id} answers.
HttpResponse HttpApi::batch_get(const HttpRequest& request) {
  std::vector<std::string> ids;
  if (std::optional<HttpResponse> refused = batch_ids_of(request, &ids)) return std::move(*refused);
  if (options_.customers == nullptr)
    return error_response(http::status::service_unavailable, "customer state is not available");
  std::string body = R"({"items":[)";
  std::string item;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) body += ',';
    const Status s = options_.customers->get_item(ids[i], &item);
    if (s.is_not_found()) {
      body += "null";
      continue;
    }
    if (!s.is_ok())
      return error_response(http::status::internal_server_error, fmt::format("ids[{}]: {}", i, s.to_string()));
    body += item;
  }
  body += "]}";
  metrics_.batch_ids += ids.size();
  return json_response(http::status::ok, std::move(body));
}

std::optional<HttpResponse> HttpApi::handle(const HttpRequest& request, const DeferAnswer& defer) {
  ++requests_;
  std::optional<HttpResponse> res = [&]() -> std::optional<HttpResponse> {
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));  // no route takes a query
    const http::verb method = request.method();
    const bool get = method == http::verb::get;

    if (target == "/healthz") {
      if (!get) return method_not_allowed("GET");
      return text_response(http::status::ok, "ok\n", "text/plain");
    }
    if (target == "/readyz") {
      if (!get) return method_not_allowed("GET");
      const bool ready = options_.ready && options_.ready();
      return ready ? text_response(http::status::ok, "ready\n", "text/plain")
                   : text_response(http::status::service_unavailable,
                                   "not ready: recovering state or opening the source\n", "text/plain");
    }
    if (target == "/metrics") {
      if (!get) return method_not_allowed("GET");
      if (options_.metrics == nullptr)
        return error_response(http::status::service_unavailable, "metrics are not available");
      return text_response(http::status::ok, options_.metrics->render_metrics(),
                           "text/plain; version=0.0.4; charset=utf-8");
    }
    if (target == kBatchGetRoute) {
      if (method != http::verb::post) return method_not_allowed("POST");
      return batch_get(request);
    }
    if (target.substr(0, kCustomersPrefix.size()) == kCustomersPrefix) {
      if (!get) return method_not_allowed("GET");
      std::string id;
      const std::string_view raw = target.substr(kCustomersPrefix.size());
      if (raw.empty() || raw.find('/') != std::string_view::npos || !percent_decode(raw, &id) ||
          id.size() > kMaxCustomerIdBytes)
        return error_response(http::status::bad_request,
                              "expected /v1/customers/{customer_id} (at most 256 bytes, URL-encoded)");
      if (options_.customers == nullptr)
        return error_response(http::status::service_unavailable, "customer state is not available");
      std::string item;
      const Status s = options_.customers->get_item(id, &item);
      if (s.is_not_found()) return error_response(http::status::not_found, "unknown customer");
      if (!s.is_ok()) return error_response(http::status::internal_server_error, s.to_string());
      return json_response(http::status::ok, std::move(item));
    }
    if (target == "/v1/model" || target == "/v1/model/activate" || target == "/v1/model/rollback") {
      const bool describe = target == "/v1/model";
      if (describe ? !get : method != http::verb::post) return method_not_allowed(describe ? "GET" : "POST");
      if (!describe && !authorized(request)) {
        HttpResponse r = error_response(http::status::unauthorized,
                                        "admin routes need 'Authorization: Bearer <token>' "
                                        "(http.admin_token or STREAMSCORE_ADMIN_TOKEN)");
        r.set(http::field::www_authenticate, "Bearer");
        return r;
      }
      if (options_.model == nullptr)
        return error_response(http::status::service_unavailable, "no model registry in this process");
      if (describe) {
        std::string body;
        const Status s = options_.model->describe(&body);
        return model_response(s, std::move(body));
      }
      std::string version;
      if (target == "/v1/model/activate" && !version_of(request, &version))
        return error_response(http::status::bad_request, "expected a JSON body {\"version\":\"vN\"}");
      // The change answers once the model is checked, from the admin's thread: the
      // server's thread goes on serving meanwhile.
      ModelAdmin::Done done = [respond = defer(), http_version = request.version(), keep_alive = request.keep_alive()](
                                  const Status& s, std::string body) {
        HttpResponse r = model_response(s, std::move(body));
        fit_to_request(r, http_version, keep_alive);
        respond(std::move(r));
      };
      if (target == "/v1/model/rollback")
        options_.model->rollback(std::move(done));
      else
        options_.model->activate(version, std::move(done));
      return std::nullopt;
    }
    return error_response(http::status::not_found, "no such route");
  }();
  if (res) fit_to_request(*res, request.version(), request.keep_alive());
  return res;
}

}  // namespace streamscore
