// HTTP load at a fixed request rate (open loop), for the GET /v1/customers/{id} target:
//   http_load --url http://127.0.0.1:8480 --rate 10000 --seconds 10 --connections 4 --customers 100000
// Each connection sends its share of the requests on a fixed schedule, keep-alive, one at a
// time. Latency is measured from the *scheduled* send time, so a stalled server shows up
// in the tail instead of slowing the client down (no coordinated omission). Customer ids
// are uniform over C0000001..C<customers>. Also reported: the round trip alone (send to
// response), which leaves out the client's own wake-up delays on a busy machine, and the
// server's own time from its /metrics histogram (streamscore_http_request_duration_seconds,
// scraped before and after; bucket-interpolated).
// Where the rest goes: the delay from the scheduled time to the actual send is split into
// time spent queued behind this connection's previous response (the server, or the
// client waking up for that response, was slow) and the client thread waking up late
// for a send that was due (its own scheduling delay on a busy machine).
// --batch N: each request is instead POST ROUTE (default /v1/customers:batchGet) with
// {"ids":[N ids]}, drawn the same way.
// Prints one JSON line; exit 1 on any
// transport error or non-2xx/404 status. Not a test: bench/http.sh runs it.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/prctl.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "common/thread_priority.hpp"
#include "io/http_client.hpp"
#include "io/metrics_text.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Worker {
  std::vector<int64_t> latencies_ns;    // from the scheduled send time
  std::vector<int64_t> round_trips_ns;  // from the actual send time
  std::vector<int64_t> queued_ns;       // scheduled time to the previous response (if later)
  std::vector<int64_t> late_wakeup_ns;  // due (scheduled, previous response in) to sent
  uint64_t ok = 0, not_found = 0, other = 0, errors = 0;
  int64_t slowest_rtt_ns = 0;
  Clock::time_point slowest_sent{};  // when the slowest round trip was sent
};

// {"ids":["C0000042",...]} with `n` ids drawn by `pick`.
std::string batch_body(int n, std::mt19937_64& rng, std::uniform_int_distribution<int>& pick) {
  std::string body = "{\"ids\":[";
  char id[32];
  for (int i = 0; i < n; ++i) {
    std::snprintf(id, sizeof id, "%s\"C%07d\"", i > 0 ? "," : "", pick(rng));
    body += id;
  }
  return body + "]}";
}

void run_worker(const streamscore::HttpUrl& url, int index, int connections, double rate, double seconds, int customers,
                const std::string& route, int batch, unsigned long timer_slack_ns, int realtime_priority,
                Clock::time_point start, Worker* w) {
  // The kernel may fire a sleeping thread's timer up to its slack late (50 us by
  // default); the schedule is the measurement's reference, so ask for (almost) none.
  prctl(PR_SET_TIMERSLACK, timer_slack_ns, 0UL, 0UL, 0UL);
  // --realtime: the sender runs ahead of every normal thread when its timer fires or a
  // response arrives (a real-time thread is never timer-slacked either).
  if (realtime_priority > 0) {
    const streamscore::Status s = streamscore::raise_this_thread_to_realtime(realtime_priority);
    if (!s.is_ok()) {
      std::fprintf(stderr, "http_load: --realtime %d: %s\n", realtime_priority, s.message().c_str());
      ++w->errors;
      return;
    }
  }
  net::io_context ioc;
  tcp::socket socket(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  net::connect(socket, resolver.resolve(url.host, std::to_string(url.port)), ec);
  if (ec) {
    std::fprintf(stderr, "http_load: connection %d: connect: %s\n", index, ec.message().c_str());
    ++w->errors;
    return;
  }
  socket.set_option(tcp::no_delay(true));
  const double per_connection = rate / connections;
  const auto interval = std::chrono::duration<double>(1.0 / per_connection);
  const auto count = static_cast<uint64_t>(per_connection * seconds);
  // Connections are staggered within one interval, so requests spread evenly.
  const auto offset = std::chrono::duration<double>(interval.count() * index / connections);
  std::mt19937_64 rng(1234 + index);
  std::uniform_int_distribution<int> pick(1, customers);
  beast::flat_buffer buffer;
  w->latencies_ns.reserve(count);
  w->round_trips_ns.reserve(count);
  w->queued_ns.reserve(count);
  w->late_wakeup_ns.reserve(count);
  auto ns = [](Clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); };
  Clock::time_point previous_done{};
  char target[128];
  for (uint64_t i = 0; i < count; ++i) {
    const auto scheduled = start + std::chrono::duration_cast<Clock::duration>(offset + interval * i);
    std::this_thread::sleep_until(scheduled);
    http::request<http::string_body> req;
    if (batch > 0) {
      req = {http::verb::post, url.path + route, 11, batch_body(batch, rng, pick)};
      req.set(http::field::content_type, "application/json");
      req.prepare_payload();
    } else {
      std::snprintf(target, sizeof target, "%s%sC%07d", url.path.c_str(), route.c_str(), pick(rng));
      req = {http::verb::get, target, 11};
    }
    req.set(http::field::host, url.host);
    const auto sent = Clock::now();
    http::write(socket, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(socket, buffer, res, ec);
    if (ec) {
      std::fprintf(stderr, "http_load: connection %d: request %llu: %s\n", index, (unsigned long long)i,
                   ec.message().c_str());
      ++w->errors;
      return;
    }
    const auto done = Clock::now();
    const auto due = std::max(scheduled, previous_done);
    previous_done = done;
    w->latencies_ns.push_back(ns(done - scheduled));
    w->round_trips_ns.push_back(ns(done - sent));
    if (ns(done - sent) > w->slowest_rtt_ns) {
      w->slowest_rtt_ns = ns(done - sent);
      w->slowest_sent = sent;
    }
    w->queued_ns.push_back(ns(due - scheduled));
    w->late_wakeup_ns.push_back(ns(sent - due));
    if (res.result_int() == 200)
      ++w->ok;
    else if (res.result_int() == 404)
      ++w->not_found;
    else
      ++w->other;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fixed-rate HTTP GET /v1/customers/{id} (or batchGet) load with latency percentiles"};
  std::string url_text = "http://127.0.0.1:8480";
  double rate = 10000, seconds = 10;
  int connections = 4, customers = 100000;
  unsigned long timer_slack_ns = 1;
  int realtime_priority = 0;
  std::string route = "/v1/customers/";
  int batch = 0;
  app.add_option("--url", url_text)->capture_default_str();
  app.add_option("--rate", rate, "requests per second, all connections together")->capture_default_str();
  app.add_option("--seconds", seconds)->capture_default_str();
  app.add_option("--connections", connections)->capture_default_str();
  app.add_option("--customers", customers, "ids are drawn from C0000001..C<customers>")->capture_default_str();
  app.add_option("--timer-slack-ns", timer_slack_ns,
                 "timer slack of the sending threads (the kernel's default is 50000)")
      ->capture_default_str();
  app.add_option("--realtime", realtime_priority,
                 "SCHED_RR priority of the sending threads (1..99; needs root or CAP_SYS_NICE); "
                 "0 = normal scheduling. Keep it below the daemon's http.realtime_priority")
      ->capture_default_str();
  app.add_option("--route", route,
                 "requests go to ROUTE followed by the customer id; \"/healthz?\" compares "
                 "the server without the store lookup")
      ->capture_default_str();
  app.add_option("--batch", batch,
                 "ids per request: POST {\"ids\":[...]} to ROUTE (default /v1/customers:batchGet) "
                 "instead of GET ROUTE<id>; 0 = GET")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (batch > 0 && route == "/v1/customers/") route = "/v1/customers:batchGet";
  streamscore::HttpUrl url;
  if (!streamscore::parse_http_url(url_text, &url).is_ok() || rate <= 0 || seconds <= 0 || connections < 1 ||
      customers < 1 || timer_slack_ns < 1 || route.size() > 64 || batch < 0 || batch > 1000 || realtime_priority < 0 ||
      realtime_priority > 99) {
    std::fprintf(stderr, "http_load: bad arguments\n");
    return 2;
  }
  auto scrape = [&](streamscore::MetricsSnapshot* snap) {
    streamscore::HttpClient client(url.host, url.port);
    streamscore::HttpResponse res;
    return client.get(url.path + "/metrics", &res).is_ok() && res.result_int() == 200 &&
           streamscore::parse_prometheus(res.body(), snap).is_ok();
  };
  streamscore::MetricsSnapshot before, after;
  const bool scraped_before = scrape(&before);
  std::vector<Worker> workers(connections);
  std::vector<std::thread> threads;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  for (int i = 0; i < connections; ++i)
    threads.emplace_back(run_worker, url, i, connections, rate, seconds, customers, route, batch, timer_slack_ns,
                         realtime_priority, start, &workers[i]);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double server_p50 = NAN, server_p99 = NAN;
  if (scraped_before && scrape(&after)) {
    const std::string h = "streamscore_http_request_duration_seconds";
    server_p50 = streamscore::histogram_quantile(after, h, 0.5, &before) * 1e6;
    server_p99 = streamscore::histogram_quantile(after, h, 0.99, &before) * 1e6;
  }
  std::vector<int64_t> all, rtt, queued, late;
  const Worker* slowest = &workers[0];
  uint64_t ok = 0, not_found = 0, other = 0, errors = 0;
  for (const auto& w : workers) {
    all.insert(all.end(), w.latencies_ns.begin(), w.latencies_ns.end());
    rtt.insert(rtt.end(), w.round_trips_ns.begin(), w.round_trips_ns.end());
    queued.insert(queued.end(), w.queued_ns.begin(), w.queued_ns.end());
    late.insert(late.end(), w.late_wakeup_ns.begin(), w.late_wakeup_ns.end());
    ok += w.ok;
    not_found += w.not_found;
    other += w.other;
    errors += w.errors;
    if (w.slowest_rtt_ns > slowest->slowest_rtt_ns) slowest = &w;
  }
  std::sort(all.begin(), all.end());
  std::sort(rtt.begin(), rtt.end());
  std::sort(queued.begin(), queued.end());
  std::sort(late.begin(), late.end());
  auto pct_of = [](const std::vector<int64_t>& v, double q) -> double {
    if (v.empty()) return 0;
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))] / 1000.0;
  };
  auto pct = [&](double q) { return pct_of(all, q); };
  std::printf(
      "{\"requests\":%zu,\"target_rate\":%.0f,\"achieved_rate\":%.0f,\"connections\":%d,"
      "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"server_p50_us\":%.1f,\"server_p99_us\":%.1f,"
      "\"queued_p99_us\":%.1f,\"late_wakeup_p50_us\":%.1f,\"late_wakeup_p99_us\":%.1f,"
      "\"rtt_max_us\":%.1f,\"rtt_max_sent_monotonic_s\":%.6f,"
      "\"status_200\":%llu,\"status_404\":%llu,\"status_other\":%llu,\"errors\":%llu}\n",
      all.size(), rate, all.size() / elapsed, connections, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
      all.empty() ? 0.0 : all.back() / 1000.0, pct_of(rtt, 0.5), pct_of(rtt, 0.99), server_p50, server_p99,
      pct_of(queued, 0.99), pct_of(late, 0.5), pct_of(late, 0.99), slowest->slowest_rtt_ns / 1000.0,
      std::chrono::duration<double>(slowest->slowest_sent.time_since_epoch()).count(), (unsigned long long)ok,
      (unsigned long long)not_found, (unsigned long long)other, (unsigned long long)errors);
  return errors == 0 && other == 0 ? 0 : 1;
}
