// Issue 16, class 5: an HTTP model activation never blocks the HTTP thread. While
// another process holds the models directory's lock (as `streamscore model activate`
// does while it loads and checks a model), POST /v1/model/activate and /rollback answer
// 409 at once, and /healthz, /readyz and GET /v1/model keep answering promptly. Once the
// lock is released, the same activation succeeds.
#define BOOST_TEST_MODULE fault_admin_thread
#include <boost/test/unit_test.hpp>

#include <sys/file.h>

#include <future>

#include "daemon_support.hpp"
#include "faults/model_faults.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

using Clock = std::chrono::steady_clock;

// Holds the registry's lock the way `streamscore model activate` does (flock on the
// directory's lock file) until destroyed.
class RegistryLockHolder {
 public:
  explicit RegistryLockHolder(const std::string& models) {
    fd_ = ::open((models + "/.registry.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    BOOST_REQUIRE(fd_ >= 0);
    BOOST_REQUIRE(::flock(fd_, LOCK_EX) == 0);
  }
  ~RegistryLockHolder() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// Answers within 3 s: a stalled HTTP thread never answers (the clients give up after
// 5 s), a free one answers in milliseconds, and a loaded or sanitized build stays far
// below 3 s.
struct Timed {
  int status = -1;  // -1: no answer (timeout or I/O error)
  double seconds = 0;
  std::string body;
};

Timed timed_request(uint16_t port, http::verb method, const std::string& target, const std::string& body = {},
                    bool admin = false) {
  HttpClient c("127.0.0.1", port, std::chrono::milliseconds(5000));
  HttpResponse r;
  const auto start = Clock::now();
  static const std::vector<std::pair<std::string, std::string>> kNoHeaders;
  const Status s = c.request(method, target, &r, body, admin ? admin_token() : kNoHeaders);
  Timed t;
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (s.is_ok()) {
    t.status = r.result_int();
    t.body = r.body();
  }
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_locked_registry_answers_409_and_never_stalls_the_http_thread) {
  ModelLab lab("streamscore-fault-admin-");
  lab.publish_bytes(2, slurp(lab.artifact(1)));  // v2: a copy of v1, to activate
  BackgroundDaemon d(lab.dir, "daemon", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  const uint16_t port = d.port();
  BOOST_TEST_REQUIRE(wait_for([&] { return timed_request(port, http::verb::get, "/readyz").status == 200; }, 60));
  {
    RegistryLockHolder held(lab.models);
    // The activation on one connection, /healthz on another while it is under way.
    auto activation = std::async(std::launch::async, [&] {
      return timed_request(port, http::verb::post, "/v1/model/activate", R"({"version":"v2"})", true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const char* target : {"/healthz", "/readyz", "/v1/model"}) {
      const Timed probe = timed_request(port, http::verb::get, target);
      BOOST_TEST(probe.status == 200, target << ": " << probe.status);
      BOOST_TEST(probe.seconds < 3, target << " took " << probe.seconds << " s");
    }
    const Timed a = activation.get();
    BOOST_TEST(a.status == 409, a.body);
    BOOST_TEST(a.seconds < 3, "the activation answered after " << a.seconds << " s");
    BOOST_TEST(a.body.find("lock") != std::string::npos, a.body);
    const Timed r = timed_request(port, http::verb::post, "/v1/model/rollback", "", true);
    BOOST_TEST(r.status == 409, r.body);
    BOOST_TEST(r.seconds < 3);
  }
  // Released: the same activation goes through, and the daemon swaps to it.
  const Timed a = timed_request(port, http::verb::post, "/v1/model/activate", R"({"version":"v2"})", true);
  BOOST_TEST(a.status == 200, a.body);
  BOOST_TEST(a.body.find("\"active\":\"v2\"") != std::string::npos, a.body);
  HttpClient c("127.0.0.1", port);
  BOOST_TEST(wait_for([&] { return metric(c, "streamscore_model_active_version") == 2; }, 30));
  // A change made from the command line shows in GET /v1/model without a restart.
  Result rb = run_cli(lab.dir, "model rollback --models " + lab.models);
  BOOST_TEST(rb.exit_code == 0, rb.err);
  BOOST_TEST(wait_for([&] {
    return timed_request(port, http::verb::get, "/v1/model").body.find("\"active\":\"v1\"") != std::string::npos;
  }, 30));
  BOOST_TEST(d.stop() == 0, d.err());
}
