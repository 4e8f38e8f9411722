// libFuzzer target: the HTTP request path of the server without the socket: bytes go
// through Beast's request parser with the server's limits, then (requests parsed
// whole, pipelined ones too) through HttpApi's routing with fake backends, and every
// response is serialized. It must never crash; every answer must be a valid status,
// and an admin action must never happen without the token.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>

#include <cctype>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "actors/checkpoint_probe.hpp"
#include "actors/clock_probe.hpp"
#include "actors/model_probe.hpp"
#include "actors/router_probe.hpp"
#include "actors/shard_probe.hpp"
#include "io/http_api.hpp"
#include "io/metrics_text.hpp"

using namespace streamscore;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

class Lookup final : public CustomerLookup {
 public:
  Status get_item(std::string_view id, std::string* json) override {
    if (id != "C0000001") return Status::not_found();
    *json = R"({"PK":"CUSTOMER#C0000001","version":1})";
    return Status::ok();
  }
};

class Metrics final : public MetricsSource {
 public:
  RouterProbe router;
  ClockProbe clock;
  ShardProbe shards;
  CheckpointProbe checkpoints;
  ModelProbe model{0};
  ProcessProbe process{nullptr};
  std::string render_metrics() override {
    MetricsRegistry registry;
    for (const MetricsProbe* probe :
         std::initializer_list<const MetricsProbe*>{&router, &clock, &shards, &checkpoints, &model, &process})
      registry.add(probe);
    return registry.render();
  }
};

// Counts actions, so the fuzzer can check they only happen with the token.
class Model final : public ModelAdmin {
 public:
  int actions = 0;
  Status describe(std::string* json) override {
    *json = "{}";
    return Status::ok();
  }
  void activate(const std::string& version, Done done) override {
    ++actions;
    done(version == "v1" ? Status::ok() : Status::not_found(version), "{}");
  }
  void rollback(Done done) override {
    ++actions;
    done(Status::conflict("nothing to roll back to"), {});
  }
};

constexpr const char* kToken = "fuzz-token";

// The rule the server must follow, stated independently of it: the scheme "Bearer" in any
// case, one or more spaces, then exactly the token (RFC 9110 sections 11.1 and 11.4).
bool carries_token(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || value[kScheme.size()] != ' ') return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return false;
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return value == kToken;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Lookup lookup;
  static Metrics metrics;
  static Model model;
  static HttpApi api = [] {
    HttpApiOptions o;
    o.customers = &lookup;
    o.metrics = &metrics;
    o.model = &model;
    o.ready = [] { return true; };
    return HttpApi(o);
  }();
  static bool init = [] {
    api.set_admin_token(kToken);
    return true;
  }();
  (void)init;

  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int request = 0; request < 8 && !in.empty(); ++request) {  // pipelined requests
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);  // the server's defaults (HttpServerOptions)
    parser.body_limit(64 * 1024);
    boost::beast::error_code ec;
    while (!in.empty() && !parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
      in.remove_prefix(used);
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0) break;
      }
      if (ec) break;
    }
    if (!ec && !parser.is_done()) parser.put_eof(ec);
    HttpResponse res;
    if (ec) {
      if (ec.category() != http::make_error_code(http::error::bad_target).category()) return 0;
      res = parse_error_response(ec);
      check(res.result_int() == 400 || res.result_int() == 413 || res.result_int() == 431);
      check(!res.keep_alive());
    } else {
      const HttpRequest& req = parser.get();
      const int before = model.actions;
      // The fake admin answers at once, through the responder of a route that answers later.
      std::optional<HttpResponse> late;
      std::optional<HttpResponse> now = api.handle(req, [&late] {
        return [&late](HttpResponse r) {
          if (!late) late = std::move(r);
        };
      });
      check(now.has_value() != late.has_value());
      res = now ? std::move(*now) : std::move(*late);
      const auto auth = req.find(http::field::authorization);
      const bool had_token =
          auth != req.end() && carries_token(std::string_view(auth->value().data(), auth->value().size()));
      check(model.actions == before || had_token);
    }
    const int status = res.result_int();
    check(status >= 200 && status < 600);
    std::ostringstream out;
    out << res;
    check(out.str().rfind("HTTP/1.", 0) == 0);
    if (ec) return 0;  // the server closes the connection after a parse error
  }
  return 0;
}
