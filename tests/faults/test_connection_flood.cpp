// Class 2 of issue 16: connection floods and fd exhaustion. A daemon under the common
// open-file limit of 1024 (soft and hard, so it cannot raise it) is flooded from one
// process: 1,100 idle connections; then 1,100 slow-loris connections (headers trickled a
// byte at a time, bodies never finished, pipelined requests whose answers are never
// read). Throughout, the daemon lives, its checkpoints keep committing, fresh /healthz
// and /readyz probes are answered, and its log stays quiet; the metrics show the shed
// connections. A server under an fd limit it cannot hold its cap in backs off on
// EMFILE, sheds the connection waiting longest, and keeps answering new ones.
#define BOOST_TEST_MODULE fault_connection_flood
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>
#include <vector>

#include "app/logging.hpp"
#include "io/http_server.hpp"
#include "io/metrics_text.hpp"
#include "tests/cli_support.hpp"
#include "tests/daemon_support.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

constexpr int kFloodConnections = 1100;
constexpr int kDaemonFdLimit = 1024;

// How many requests each pipelining attacker sends before it stops reading. The server
// answers them one per connection per turn of its event loop, so a new connection (a
// probe) waits for about one answer per pipelining connection. Under ASan and UBSan
// (a -O1 Debug build) Beast's write path is about 20 times slower than in Release: with
// the full pipeline a probe there waits 1 to 2 s and, on a loaded CI machine, sometimes
// past its 3 s deadline. The sanitizer run checks the same paths for memory errors with a
// lighter load; the latency the issue asks for is checked in the Release run.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kPipelinedRequests = 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kPipelinedRequests = 20;
#else
constexpr int kPipelinedRequests = 200;
#endif
#else
constexpr int kPipelinedRequests = 200;
#endif

// Lines of the process log (`ts=... level=...`), not what a sanitizer's runtime adds:
// under UBSan, a vptr check in a process out of fds reports a false "invalid vptr" (its
// runtime needs a pipe to probe the memory).
std::size_t process_log_lines(const std::string& log) {
  std::size_t lines = 0;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) lines += line.rfind("ts=", 0) == 0;
  return lines;
}

// This process holds the flood's sockets: it needs more than the daemon's limit.
void raise_own_fd_limit() {
  rlimit limit{};
  BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  limit.rlim_cur = limit.rlim_max;
  BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  BOOST_TEST_REQUIRE(limit.rlim_cur >= rlim_t{2 * kFloodConnections}, "the test needs ulimit -n >= 2200");
}

// A TCP connection to 127.0.0.1:port, blocking or not; -1 when it cannot be made.
int connect_to(uint16_t port, bool nonblocking = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// `streamscore run` on the generator (a steady trickle of events, a checkpoint every
// 200 ms), under an open-file limit of 1024 that it cannot raise (like a container's)
// when `limited`.
struct LimitedDaemon {
  TempDir dir{"streamscore-flood-"};
  pid_t pid = -1;
  uint16_t port = 0;

  explicit LimitedDaemon(bool limited, std::vector<std::string> extra_sets = {}) {
    std::vector<std::string> words = {STREAMSCORE_BINARY,
                                      "run",
                                      "--set",
                                      "http.port=0",
                                      "--set",
                                      "source.kind=generator",
                                      "--set",
                                      "source.events=0",
                                      "--set",
                                      "source.rate=2000",
                                      "--set",
                                      "state.path=" + dir / "state",
                                      "--set",
                                      "dead_letter.path=" + dir / "dead.jsonl",
                                      "--set",
                                      "checkpoint.interval=200ms"};
    const std::string limit = std::to_string(kDaemonFdLimit);
    if (limited) words.insert(words.begin(), {"/usr/bin/prlimit", "--nofile=" + limit + ":" + limit});
    for (auto& s : extra_sets) words.insert(words.end(), {"--set", s});
    pid = spawn_process(words, dir / "out.txt", err_path());
    BOOST_TEST_REQUIRE(pid > 0);
    port = daemon_port(err_path());
    BOOST_TEST_REQUIRE(wait_for([&] { return probe("/readyz"); }, 20), slurp(err_path()));
  }
  ~LimitedDaemon() {
    if (alive()) ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  std::string err_path() const { return dir / "err.txt"; }
  bool alive() const { return ::waitpid(pid, nullptr, WNOHANG) == 0; }

  // One probe as a kubelet sends it: a fresh connection, a short deadline.
  bool probe(const std::string& path) const {
    HttpClient client("127.0.0.1", port, std::chrono::milliseconds(3000));
    HttpResponse response;
    return client.get(path, &response).is_ok() && response.result_int() == 200;
  }
  double metric(const std::string& name) const {
    HttpClient client("127.0.0.1", port, std::chrono::milliseconds(3000));
    return streamscore::testing::metric(client, name);
  }
  std::size_t log_lines() const { return process_log_lines(slurp(err_path())); }
};

// Probes /healthz and /readyz every 100 ms for `duration` and counts the failures,
// while the daemon must keep committing checkpoints.
void expect_probes_answered_and_commits(const LimitedDaemon& daemon, std::chrono::seconds duration) {
  const double checkpoints_before = daemon.metric("streamscore_checkpoints_total");
  int failed = 0, probes = 0;
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end && daemon.alive()) {
    for (const char* path : {"/healthz", "/readyz"}) {
      ++probes;
      if (!daemon.probe(path)) ++failed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  BOOST_TEST_MESSAGE(probes << " probes, " << failed << " failed");
  BOOST_TEST_REQUIRE(daemon.alive(), slurp(daemon.err_path()).substr(0, 4000));
  BOOST_TEST(failed == 0, failed << " of " << probes << " probes failed");
  BOOST_TEST(probes >= 4);  // a loaded machine may slow them, never fail them
  BOOST_TEST(daemon.metric("streamscore_checkpoints_total") > checkpoints_before);
}

struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds) ::close(fd);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(idle_connections_beyond_the_fd_limit_are_shed_not_fatal) {
  raise_own_fd_limit();
  // Idle connections are not closed by the request timeout during the test: the cap does it.
  LimitedDaemon daemon(/*limited=*/true, {"http.request_timeout_ms=60000"});
  const std::size_t lines_before = daemon.log_lines();
  Sockets flood;
  for (int i = 0; i < kFloodConnections; ++i) {
    const int fd = connect_to(daemon.port);
    BOOST_TEST_REQUIRE(fd >= 0, "connection " << i);
    flood.fds.push_back(fd);
  }
  expect_probes_answered_and_commits(daemon, std::chrono::seconds(4));
  const double cap = 512;  // http.max_connections by default
  BOOST_TEST(daemon.metric("streamscore_http_connections_open") <= cap);
  BOOST_TEST(daemon.metric("streamscore_http_connections_shed_total") >= kFloodConnections - cap);
  BOOST_TEST(daemon.log_lines() - lines_before < 20u, slurp(daemon.err_path()).substr(0, 4000));
}

namespace {

// One process keeps 1,100 connections busy (more than the cap) the slow way: a third
// trickle headers a byte at a time, a third announce a body and trickle it, a third
// pipeline requests and never read the answers. Whatever the server closes is reopened
// at once.
void slow_loris_against(LimitedDaemon& daemon) {
  const std::size_t lines_before = daemon.log_lines();
  std::atomic<bool> stop{false};
  std::atomic<int> reopened{0};
  std::thread attacker([&] {
    const std::string starts[] = {"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                                  "POST /v1/model/activate HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{",
                                  std::string()};
    std::string pipelined;
    for (int i = 0; i < kPipelinedRequests; ++i) pipelined += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    Sockets attack;
    const auto open = [&](int i) {
      const int fd = connect_to(daemon.port, /*nonblocking=*/true);
      const std::string& first = i % 3 == 2 ? pipelined : starts[i % 3];
      if (fd >= 0) ::send(fd, first.data(), first.size(), MSG_NOSIGNAL);  // may not be connected yet
      return fd;
    };
    for (int i = 0; i < kFloodConnections; ++i) attack.fds.push_back(open(i));
    while (!stop.load()) {
      for (int i = 0; i < kFloodConnections && !stop.load(); ++i) {
        const char byte = 'a';
        if (attack.fds[i] >= 0 && ::send(attack.fds[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) continue;
        if (attack.fds[i] >= 0 && (errno == EAGAIN || errno == ENOTCONN)) continue;  // full, or connecting
        if (attack.fds[i] >= 0) ::close(attack.fds[i]);
        attack.fds[i] = open(i);
        ++reopened;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the flood is in place
  expect_probes_answered_and_commits(daemon, std::chrono::seconds(5));
  stop = true;
  attacker.join();
  BOOST_TEST(reopened.load() > 0);  // the server did close attackers
  BOOST_TEST(daemon.metric("streamscore_http_connections_open") <= 512);
  BOOST_TEST(daemon.log_lines() - lines_before < 20u, slurp(daemon.err_path()).substr(0, 4000));
}

}  // namespace

BOOST_AUTO_TEST_CASE(slow_loris_from_one_process_does_not_starve_probes) {
  raise_own_fd_limit();
  BOOST_TEST_CONTEXT("without an fd limit to hit: the connection cap is what the attacker fills") {
    LimitedDaemon daemon(/*limited=*/false, {"http.request_timeout_ms=2000"});
    slow_loris_against(daemon);
  }
  BOOST_TEST_CONTEXT("under an fd limit of 1024") {
    LimitedDaemon daemon(/*limited=*/true, {"http.request_timeout_ms=2000"});
    slow_loris_against(daemon);
  }
}

namespace {

// The server's own metrics, for a server started without a daemon around it.
class ServerMetrics final : public MetricsSource {
 public:
  explicit ServerMetrics(HttpApi** api) : api_(api) {}
  std::string render_metrics() override {
    std::string out;
    (*api_)->metrics().render(out, wall_clock_unix_ns());
    return out;
  }

 private:
  HttpApi** api_;
};

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// In a child process: an HTTP server whose connection cap (1000) is far above what its
// open-file limit leaves (about 40 connections), stderr to `err_path`. Writes its port
// to `port_pipe`, then serves until killed.
[[noreturn]] void serve_under_a_tight_fd_limit(int port_pipe, const std::string& err_path) {
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(err, STDERR_FILENO);
  ::close(err);
  static_cast<void>(configure_logging("info"));  // a valid level: cannot fail
  HttpApi* api = nullptr;
  ServerMetrics metrics(&api);
  HttpApiOptions api_options;
  api_options.metrics = &metrics;
  api_options.ready = [] { return true; };
  HttpApi server_api(api_options);
  api = &server_api;
  HttpServerOptions options;
  options.max_connections = 1000;
  options.request_timeout = std::chrono::milliseconds(60000);
  std::unique_ptr<HttpServer> server;
  if (!HttpServer::start(options, &server_api, &server).is_ok()) ::_exit(3);
  const rlimit tight{open_fds() + 40, open_fds() + 40};
  if (::setrlimit(RLIMIT_NOFILE, &tight) != 0) ::_exit(4);
  const uint16_t port = server->port();
  if (::write(port_pipe, &port, sizeof port) != sizeof port) ::_exit(5);
  for (;;) ::pause();
}

}  // namespace

BOOST_AUTO_TEST_CASE(accept_at_the_fd_limit_backs_off_sheds_and_keeps_serving) {
  raise_own_fd_limit();
  TempDir dir("streamscore-emfile-");
  int port_pipe[2];
  BOOST_TEST_REQUIRE(::pipe(port_pipe) == 0);
  const pid_t child = ::fork();
  BOOST_TEST_REQUIRE(child >= 0);
  if (child == 0) serve_under_a_tight_fd_limit(port_pipe[1], dir / "err.txt");
  ::close(port_pipe[1]);
  uint16_t port = 0;
  const bool started = ::read(port_pipe[0], &port, sizeof port) == sizeof port;
  ::close(port_pipe[0]);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};
  BOOST_TEST_REQUIRE(started);

  Sockets flood;  // five times what the server's fds allow
  for (int i = 0; i < 200; ++i) flood.fds.push_back(connect_to(port));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int answered = 0;
  for (int i = 0; i < 10; ++i) {
    HttpClient client("127.0.0.1", port, std::chrono::milliseconds(3000));
    HttpResponse response;
    if (client.get("/healthz", &response).is_ok() && response.result_int() == 200) ++answered;
  }
  BOOST_TEST(answered == 10);
  BOOST_TEST(::waitpid(child, nullptr, WNOHANG) == 0);
  HttpClient client("127.0.0.1", port, std::chrono::milliseconds(3000));
  BOOST_TEST(metric(client, "streamscore_http_accept_errors_total") >= 1);
  BOOST_TEST(metric(client, "streamscore_http_connections_shed_total") >= 1);
  const std::string log = slurp(dir / "err.txt");
  BOOST_TEST(process_log_lines(log) < 10u, log.substr(0, 2000));
}

namespace {

// `streamscore run` on 1,000 generated events under `prlimit --nofile=SOFT:HARD`.
Result run_under_fd_limit(const TempDir& dir, const std::string& soft_hard, const std::string& sets) {
  const std::string cmd = "/usr/bin/prlimit --nofile=" + soft_hard + " " + STREAMSCORE_BINARY +
                          " run --set http.port=0 --set source.kind=generator --set source.events=1000"
                          " --set state.path=" +
                          dir / "state" + " --set dead_letter.path=" + dir / "dead.jsonl" + " " + sets + " > " +
                          dir / "out.txt" + " 2> " + dir / "err.txt";
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out.txt");
  r.err = slurp(dir / "err.txt");
  return r;
}

}  // namespace

// The soft limit is raised to the hard one at start (both logged), and a connection cap
// that would leave RocksDB and Kafka too few fds is a config error naming the key.
BOOST_AUTO_TEST_CASE(open_file_limit_is_raised_and_the_cap_must_fit_in_it) {
  TempDir dir("streamscore-fd-budget-");
  Result raised = run_under_fd_limit(dir, "1024:4096", "--set http.max_connections=3000");
  BOOST_TEST(raised.exit_code == 0, raised.err);
  BOOST_TEST(raised.err.find("msg=\"open file limit\" soft=4096 was=1024 hard=4096") != std::string::npos, raised.err);

  Result refused = run_under_fd_limit(dir, "1024:1024", "--set http.max_connections=600");
  BOOST_TEST(refused.exit_code == 2);
  BOOST_TEST(refused.err.find("http.max_connections = 600") != std::string::npos, refused.err);
  BOOST_TEST(refused.err.find("at most 512") != std::string::npos, refused.err);

  Result fits = run_under_fd_limit(dir, "1024:1024", "--set http.max_connections=512");
  BOOST_TEST(fits.exit_code == 0, fits.err);
}
