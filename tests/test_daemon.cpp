// `streamscore run` operated as a service, end to end over real processes and loopback
// HTTP: readiness, metrics that move while a followed file grows, customer lookups,
// token enforcement, `status`, SIGHUP reload, a taken port, and a SIGTERM drain that
// keeps every event (the export after a restart equals `replay`).
#define BOOST_TEST_MODULE daemon
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cli_support.hpp"
#include "daemon_support.hpp"
#include "io/http_client.hpp"
#include "io/metrics_text.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

bool eventually(const std::function<bool()>& condition, int timeout_ms = 10000) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// A `streamscore run` child process with stdout and stderr in files (the port is read
// from the log), with extra environment variables.
class Daemon {
 public:
  Daemon(const TempDir& dir, const std::string& name, std::vector<std::string> args, std::vector<std::string> env = {})
      : out_(dir / (name + "-out.txt")), err_(dir / (name + "-err.txt")) {
    args.insert(args.begin(), {STREAMSCORE_BINARY, "run"});
    std::vector<std::string> environment = env;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("STREAMSCORE_", 0) != 0) environment.push_back(*e);
    pid_ = spawn_process(args, out_, err_, &environment);
    BOOST_REQUIRE(pid_ > 0);
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // The port from the "http listening" log line.
  uint16_t port() {
    const std::string marker = "url=http://127.0.0.1:";
    std::string text;
    std::size_t at = std::string::npos;
    eventually([&] {
      text = slurp(err_);
      at = text.find(marker);
      return at != std::string::npos;
    });
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "no http listening line in: " << text);
    return static_cast<uint16_t>(std::stoi(text.substr(at + marker.size())));
  }
  void signal(int sig) { ::kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  int wait() {
    const int code = wait_for_exit(pid_);
    pid_ = -1;
    return code;
  }
  std::string err() const { return slurp(err_); }
  std::string out() const { return slurp(out_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
};

int status_code(HttpClient& c, http::verb method, const std::string& target,
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  HttpResponse r;
  Status s = c.request(method, target, &r, "", headers);
  return s.is_ok() ? r.result_int() : -1;
}

double read_counter(HttpClient& c) {
  HttpResponse r;
  if (!c.get("/metrics", &r).is_ok() || r.result_int() != 200) return -1;
  MetricsSnapshot snap;
  Status s = parse_prometheus(r.body(), &snap);
  BOOST_TEST_REQUIRE(s.is_ok(), s.to_string());
  return snap.value("streamscore_events_read_total", -1);
}

std::size_t count_lines(const std::string& s) {
  return std::count(s.begin(), s.end(), '\n');
}

struct Fixture {
  TempDir dir{"streamscore-daemon-"};
  std::string log = dir / "events.jsonl";
  std::string all;
  Fixture() {
    Result g = run_cli(dir,
                       "generate --customers 300 --events 30000 --days 40 --bad-rate 0.01 "
                       "--dup-rate 0.05 --late-rate 0.01 --seed 9 --out " +
                           log);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    all = slurp(log);
  }
  std::string replay_export() {
    Result r = run_cli(dir, "replay --events " + log + " --state " + (dir / "replayed"));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    Result e = run_cli(dir, "export --state " + (dir / "replayed"));
    BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    return e.out;
  }
  std::size_t line_boundary(std::size_t at) const { return all.find('\n', at) + 1; }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(serving_while_following_then_sigterm_keeps_every_event, Fixture) {
  const std::string replayed = replay_export();
  const std::string live = dir / "live.jsonl";
  const std::size_t first = line_boundary(all.size() / 3), second = line_boundary(2 * all.size() / 3);
  std::ofstream(live, std::ios::binary) << all.substr(0, first);
  const std::vector<std::string> common = {"--set", "http.port=0",
                                           "--set", "source.path=" + live,
                                           "--set", "state.path=" + (dir / "state"),
                                           "--set", "dead_letter.path=" + (dir / "dl.jsonl"),
                                           "--set", "checkpoint.interval=100ms"};
  std::vector<std::string> follow = common;
  follow.insert(follow.end(), {"--set", "source.exit_at_end=false"});
  Daemon daemon(dir, "d1", follow, {"STREAMSCORE_ADMIN_TOKEN=sekret-token"});
  const uint16_t port = daemon.port();
  HttpClient c("127.0.0.1", port);
  BOOST_TEST(status_code(c, http::verb::get, "/healthz") == 200);
  BOOST_TEST(eventually([&] { return status_code(c, http::verb::get, "/readyz") == 200; }));

  // Metrics follow the file as it grows.
  const double n1 = static_cast<double>(count_lines(all.substr(0, first)));
  BOOST_TEST(eventually([&] { return read_counter(c) == n1; }));
  std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(first, second - first);
  const double n2 = static_cast<double>(count_lines(all.substr(0, second)));
  BOOST_TEST(eventually([&] { return read_counter(c) == n2; }));

  // A customer from the log is served (once a checkpoint has written it).
  const auto v = boost::json::parse(all.substr(0, all.find('\n')));
  const std::string id(v.at("customer_id").as_string());
  HttpResponse item;
  BOOST_TEST(eventually([&] { return c.get("/v1/customers/" + id, &item).is_ok() && item.result_int() == 200; }));
  BOOST_TEST(item.body().find("\"PK\":\"CUSTOMER#" + id + "\"") != std::string::npos, item.body());
  BOOST_TEST(status_code(c, http::verb::get, "/v1/customers/NOBODY") == 404);
  BOOST_TEST(status_code(c, http::verb::get, "/v2/anything") == 404);

  // Admin routes: 401 without the token; with it, 503 (no model registry in this build).
  BOOST_TEST(status_code(c, http::verb::post, "/v1/model/rollback") == 401);
  BOOST_TEST(status_code(c, http::verb::post, "/v1/model/rollback", {{"Authorization", "Bearer wrong"}}) == 401);
  BOOST_TEST(status_code(c, http::verb::post, "/v1/model/rollback", {{"Authorization", "Bearer sekret-token"}}) == 503);

  // `status` reads the same metrics.
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  Result st = run_cli(dir, "status --url " + url);
  BOOST_REQUIRE_MESSAGE(st.exit_code == 0, st.err);
  BOOST_TEST(st.out.find("ready") != std::string::npos, st.out);
  BOOST_TEST(st.out.find("read") != std::string::npos);
  Result watch = run_cli(dir, "status --url " + url + " --watch --interval 0.1 --count 3");
  BOOST_REQUIRE_MESSAGE(watch.exit_code == 0, watch.err);
  // Three refreshes (stdout is not a terminal: one block each), rates from the second on.
  std::size_t headers = 0;
  for (std::size_t at = 0; (at = watch.out.find("streamscore at ", at)) != std::string::npos; ++at) ++headers;
  BOOST_TEST(headers == 3u, watch.out);
  BOOST_TEST(watch.out.find("/s)") != std::string::npos, watch.out);

  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait() == 0);
  const std::string err = daemon.err();
  BOOST_TEST(err.find("sekret-token") == std::string::npos);  // never logged
  BOOST_TEST(err.find("level=info msg=\"stopping, draining\"") != std::string::npos, err);
  BOOST_TEST(daemon.out().find("counters balance") != std::string::npos);
  // The server is gone with the process.
  HttpClient after("127.0.0.1", port, std::chrono::milliseconds(500));
  HttpResponse ignored;
  BOOST_TEST(!after.get("/healthz", &ignored).is_ok());

  // The rest of the log and a bounded restart: the same export as a replay.
  std::ofstream(live, std::ios::binary | std::ios::app) << all.substr(second);
  std::vector<std::string> bounded = common;
  bounded.insert(bounded.end(), {"--set", "source.exit_at_end=true"});
  Daemon finish(dir, "d2", bounded);
  BOOST_TEST(finish.wait() == 0, finish.err());
  // The end of the input is logged without a count: batches still in flight are not
  // counted yet when it is written (the summary has the total).
  BOOST_TEST(finish.err().find("msg=\"input complete, writing\"\n") != std::string::npos, finish.err());
  Result e = run_cli(dir, "export --state " + (dir / "state"));
  BOOST_TEST(e.out == replayed);
}

// GET /v1/customers/{id} answers exactly what the store holds, for every customer of the
// log (and 404 for the rest): from the items kept in memory (http.item_cache, the
// default) and from the store. Three starts on one state, each compared with the export
// taken after its SIGTERM: (1) the whole log read and checkpointed, without a model;
// (2) a restart, whose items come from the load at start; (3) a restart with a model:
// every item, stored without a score, gets its first score as a new version.
BOOST_FIXTURE_TEST_CASE(customer_lookups_answer_what_the_store_holds, Fixture) {
  std::set<std::string> ids = {"NOBODY"};
  for (std::size_t at = 0; (at = all.find("\"customer_id\":\"", at)) != std::string::npos;) {
    at += 15;
    ids.insert(all.substr(at, all.find('"', at) - at));
  }
  const std::string models = dir / "models";
  Result t = run_cli(dir, "train --events " + log + " --models " + models + " --rounds 4");
  BOOST_REQUIRE_MESSAGE(t.exit_code == 0, t.err);
  Result a = run_cli(dir, "model activate v1 --models " + models);
  BOOST_REQUIRE_MESSAGE(a.exit_code == 0, a.err);
  const double lines = static_cast<double>(count_lines(all));
  for (const bool cache : {true, false}) {
    const std::string state = dir / (cache ? "state-cache" : "state-store");
    const std::vector<std::string> sets = {"--set", "http.port=0",
                                           "--set", "source.path=" + log,
                                           "--set", "source.exit_at_end=false",
                                           "--set", "state.path=" + state,
                                           "--set", "dead_letter.path=" + (dir / "dl.jsonl"),
                                           "--set", "checkpoint.interval=100ms",
                                           "--set", std::string("http.item_cache=") + (cache ? "true" : "false")};
    std::size_t scored = 0;
    std::map<std::string, std::string> previous;  // the export of the start before
    auto version_of = [](const std::string& item) { return boost::json::parse(item).at("version").as_int64(); };
    for (const std::string start : {"read", "restart", "model"}) {
      const std::string name = std::string(cache ? "cache-" : "store-") + start;
      std::vector<std::string> args = sets;
      if (start == "model") args.insert(args.end(), {"--set", "model.dir=" + models});
      std::map<std::string, std::string> answers;  // every id's item, or "404"
      double cached = -1;
      {
        Daemon d(dir, name, args);
        HttpClient c("127.0.0.1", d.port());
        BOOST_TEST_REQUIRE(eventually([&] { return status_code(c, http::verb::get, "/readyz") == 200; }));
        if (start == "read") BOOST_TEST_REQUIRE(eventually([&] { return read_counter(c) == lines; }, 30000));
        if (start == "model")
          BOOST_TEST_REQUIRE(
              eventually([&] { return d.err().find("re-score to v1 complete") != std::string::npos; }, 30000), d.err());
        // Two checkpoints after that: everything read or scored is committed.
        const double checkpoints = metric(c, "streamscore_checkpoints_total");
        BOOST_TEST_REQUIRE(eventually([&] { return metric(c, "streamscore_checkpoints_total") >= checkpoints + 2; }));
        for (const std::string& id : ids) {
          HttpResponse r;
          BOOST_TEST_REQUIRE(c.get("/v1/customers/" + id, &r).is_ok());
          answers[id] = r.result_int() == 200 ? r.body() : std::to_string(r.result_int());
        }
        cached = metric(c, "streamscore_http_item_cache_items");
        d.signal(SIGTERM);
        BOOST_TEST_REQUIRE(d.wait() == 0);
      }
      Result e = run_cli(dir, "export --state " + state);
      BOOST_TEST_REQUIRE(e.exit_code == 0, e.err);
      std::map<std::string, std::string> stored;
      std::istringstream in(e.out);
      for (std::string line; std::getline(in, line);) {
        const auto v = boost::json::parse(line);
        const std::string id = std::string(v.at("PK").as_string()).substr(9);
        stored[id] = line;
        if (start == "model" && v.as_object().contains("score") && previous.count(id) == 1 &&
            version_of(line) == version_of(previous[id]) + 1)
          ++scored;  // the first score is one more write
      }
      BOOST_TEST_REQUIRE(stored.size() > 250u);
      BOOST_TEST(cached == (cache ? static_cast<double>(stored.size()) : -1.0));
      for (const std::string& id : ids) {
        const auto it = stored.find(id);
        BOOST_TEST_REQUIRE(answers[id] == (it == stored.end() ? "404" : it->second), name << ": id " << id);
      }
      if (start == "restart") BOOST_TEST((stored == previous));  // a restart writes nothing new
      previous = stored;
    }
    BOOST_TEST(scored == previous.size());  // the third start scored every item, each one write
  }
}

BOOST_FIXTURE_TEST_CASE(sighup_applies_reloadable_keys_and_names_the_refused_ones, Fixture) {
  const std::string config = dir / "daemon.toml";
  auto write_config = [&](const std::string& extra) {
    std::ofstream(config) << "[source]\npath = \"" << log << "\"\nexit_at_end = false\n"
                          << "[state]\npath = \"" << (dir / "state") << "\"\n"
                          << "[dead_letter]\npath = \"" << (dir / "dl.jsonl") << "\"\n"
                          << "[http]\nport = 0\n"
                          << extra;
  };
  write_config("admin_token = \"one\"\n[log]\nlevel = \"info\"\n");
  Daemon daemon(dir, "hup", {"--config", config});
  HttpClient c("127.0.0.1", daemon.port());
  BOOST_TEST(eventually([&] { return status_code(c, http::verb::get, "/readyz") == 200; }));
  auto admin = [&](const std::string& token) {
    return status_code(c, http::verb::post, "/v1/model/rollback", {{"Authorization", "Bearer " + token}});
  };
  BOOST_TEST(admin("one") == 503);
  BOOST_TEST(admin("two") == 401);

  write_config(
      "admin_token = \"two\"\n[log]\nlevel = \"debug\"\n[engine]\nshards = 3\n"
      "[[feature]]\nname = \"txn_count_1h\"\naggregation = \"count\"\nwindow = \"1h\"\n");
  daemon.signal(SIGHUP);
  BOOST_TEST(eventually([&] { return daemon.err().find("msg=\"config reloaded\"") != std::string::npos; }));
  const std::string err = daemon.err();
  BOOST_TEST(err.find("msg=\"reload refused a change that needs a restart\" key=engine.shards") != std::string::npos,
             err);
  // The state holds the features it was built with: other definitions need a rebuild.
  BOOST_TEST(err.find("msg=\"reload refused a change that needs a restart\" key=feature") != std::string::npos, err);
  BOOST_TEST(err.find("msg=\"reload applied\" key=log.level") != std::string::npos, err);
  BOOST_TEST(err.find("msg=\"reload applied\" key=http.admin_token") != std::string::npos, err);
  BOOST_TEST(err.find("\"two\"") == std::string::npos);
  BOOST_TEST(admin("two") == 503);
  BOOST_TEST(admin("one") == 401);
  // debug is on now: requests are logged (path and status, never headers).
  BOOST_TEST(status_code(c, http::verb::get, "/healthz") == 200);
  BOOST_TEST(eventually([&] { return daemon.err().find("path=\"/healthz\" status=200") != std::string::npos; }));
  BOOST_TEST(daemon.err().find("Bearer") == std::string::npos);

  // A config that no longer parses is refused as a whole; the daemon keeps running.
  std::ofstream(config) << "[engine]\nshards = \"many\"\n";
  daemon.signal(SIGHUP);
  BOOST_TEST(
      eventually([&] { return daemon.err().find("reload refused: the config does not load") != std::string::npos; }));
  BOOST_TEST(status_code(c, http::verb::get, "/healthz") == 200);

  // The refusal quotes the config's error, which quotes the file: a key with a line break
  // and quotes in it stays inside one escaped value and cannot forge a log line.
  std::ofstream(config) << "[engine]\n\"x\\nts=forged level=error msg=\\\"forged\\\"\" = 1\n";
  daemon.signal(SIGHUP);
  BOOST_TEST(eventually([&] { return daemon.err().find("ts=forged") != std::string::npos; }), daemon.err());
  std::istringstream log(daemon.err());
  for (std::string line; std::getline(log, line);) BOOST_TEST(line.rfind("ts=forged", 0) != 0, line);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait() == 0);
}

BOOST_FIXTURE_TEST_CASE(a_taken_port_fails_the_start_but_leaves_the_state_usable, Fixture) {
  Daemon first(dir, "first",
               {"--set", "http.port=0", "--set", "source.path=" + log, "--set", "source.exit_at_end=false", "--set",
                "state.path=" + (dir / "s1"), "--set", "dead_letter.path=" + (dir / "dl1.jsonl")});
  const uint16_t port = first.port();
  const std::string args = " --set source.path=" + log + " --set state.path=" + (dir / "s2") +
                           " --set dead_letter.path=" + (dir / "dl2.jsonl");
  Result taken = run_cli(dir, "run --set http.port=" + std::to_string(port) + args);
  BOOST_TEST(taken.exit_code == 1);
  BOOST_TEST(taken.err.find("http.port") != std::string::npos, taken.err);
  Result again = run_cli(dir, "run --set http.port=0" + args);
  BOOST_TEST(again.exit_code == 0, again.err);
  first.signal(SIGTERM);
  BOOST_TEST(first.wait() == 0);
}

struct ThreadNice {
  std::string tid, name;
  int nice = 0;
};

// Each thread of process `pid`: its id, name and nice value (from /proc).
std::vector<ThreadNice> thread_nices(pid_t pid) {
  std::vector<ThreadNice> out;
  const fs::path tasks = fs::path("/proc") / std::to_string(pid) / "task";
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(tasks, ec)) {
    std::string name = slurp(task.path() / "comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    const std::string stat = slurp(task.path() / "stat");
    const auto paren = stat.rfind(')');
    if (name.empty() || paren == std::string::npos) continue;  // the thread just ended
    // Fields after "(comm)": state is the 3rd field of the line, nice the 19th.
    std::istringstream rest(stat.substr(paren + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
    }
    out.push_back({task.path().filename().string(), name, std::stoi(field)});
  }
  return out;
}

// engine.nice lowers the threads that ingest (the scheduler's and the main thread, which
// runs the source loop) and leaves the HTTP server's thread at the process's priority.
BOOST_FIXTURE_TEST_CASE(engine_nice_lowers_the_ingesting_threads_but_not_the_http_thread, Fixture) {
  const int base = getpriority(PRIO_PROCESS, 0);  // the daemon inherits this process's
  const int steps = std::min(5, 19 - base);
  BOOST_REQUIRE(steps > 0);
  Daemon daemon(dir, "nice",
                {"--set", "http.port=0", "--set", "source.path=" + log, "--set", "source.exit_at_end=false", "--set",
                 "state.path=" + (dir / "s"), "--set", "dead_letter.path=" + (dir / "dl.jsonl"), "--set",
                 "engine.nice=" + std::to_string(steps)});
  HttpClient c("127.0.0.1", daemon.port());
  BOOST_TEST_REQUIRE(eventually([&] { return status_code(c, http::verb::get, "/readyz") == 200; }));
  int http = 0, workers = 0, main_thread = 0;
  for (const ThreadNice& t : thread_nices(daemon.pid())) {
    if (t.name == "http") {
      ++http;
      BOOST_TEST(t.nice == base, t.name);
    } else if (t.name.rfind("caf.", 0) == 0) {
      ++workers;
      BOOST_TEST(t.nice == base + steps, t.name);
    } else if (t.tid == std::to_string(daemon.pid())) {  // runs the source loop
      ++main_thread;
      BOOST_TEST(t.nice == base + steps, "main thread");
    }
  }
  BOOST_TEST(http == 1);
  BOOST_TEST(workers >= 1);
  BOOST_TEST(main_thread == 1);
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait() == 0);
}

BOOST_AUTO_TEST_CASE(status_exit_codes) {
  TempDir dir{"streamscore-daemon-"};
  BOOST_TEST(run_cli(dir, "status --url ftp://x").exit_code == 2);
  BOOST_TEST(run_cli(dir, "status --url http://127.0.0.1:1 --watch --interval 0").exit_code == 2);
  Result down = run_cli(dir, "status --url http://127.0.0.1:1");
  BOOST_TEST(down.exit_code == 1);
  BOOST_TEST(down.err.find("127.0.0.1:1") != std::string::npos, down.err);
  Result help = run_cli(dir, "status --help");
  BOOST_TEST(help.exit_code == 0);
  BOOST_TEST(help.out.find("Example") != std::string::npos);
}
