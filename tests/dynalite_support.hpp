// dynalite (npm, tests/dynalite/) for tests: a DynamoDB-API server on a free loopback
// port, started for the test process and killed when it ends. The test process gets fake
// credentials (dynalite does not check signatures) and fresh table names.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "state/dynamodb_client.hpp"
#include "state/dynamodb_store.hpp"
#include "tests/cli_support.hpp"

namespace streamscore::testing {

// A loopback port nobody listens on right now (the kernel picks it).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Stops a local server (dynalite, s3rver) started as `*pid`; `*pid` is -1 afterwards.
inline void stop_local_server(pid_t* pid) {
  if (*pid <= 0) return;
  ::kill(*pid, SIGKILL);
  ::waitpid(*pid, nullptr, 0);
  *pid = -1;
}

// Waits for a local node server started as `*pid` to log "listening" to `log`, up to
// 15 s (node starts slowly on a busy machine). When it died (port taken?) or did not
// come up, `*pid` is -1, so that the caller tries another port.
inline void await_listening(pid_t* pid, const std::string& log) {
  for (int i = 0; i < 300 && *pid > 0; ++i) {
    if (slurp(log).find("listening") != std::string::npos) return;
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) *pid = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_local_server(pid);
}

// Fake credentials for the whole test process (and the commands it runs).
inline void set_fake_aws_credentials() {
  ::setenv("AWS_ACCESS_KEY_ID", "test", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
  ::setenv("AWS_REGION", "us-east-1", 1);
  ::unsetenv("AWS_SESSION_TOKEN");
}

class Dynalite {
 public:
  Dynalite() : dir_("streamscore-dynalite-") {
    set_fake_aws_credentials();
    const std::string bin = std::string(STREAMSCORE_SOURCE_DIR) + "/tests/dynalite/node_modules/.bin/dynalite";
    if (!fs::exists(bin))
      throw std::runtime_error(bin + " is missing: run scripts/install-deps (npm ci in tests/dynalite)");
    // The port may be taken between the probe and the start: try a few.
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) start(bin);
    if (pid_ <= 0)
      throw std::runtime_error("dynalite did not start: " + slurp(dir_ / "dynalite.log") +
                               slurp(dir_ / "dynalite.log.err"));
  }
  ~Dynalite() { stop(); }
  Dynalite(const Dynalite&) = delete;
  Dynalite& operator=(const Dynalite&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Store options on a table of its own (created here), so that tests never share state.
  DynamoDbOptions fresh_table(const std::string& writer = "streamscore") {
    static std::atomic<int> counter{0};
    DynamoDbOptions o;
    o.endpoint = endpoint();
    o.region = "us-east-1";
    o.table = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    o.writer = writer;
    bool existed = false;
    Status s = create_dynamodb_table(o, &existed);
    if (!s.is_ok()) throw std::runtime_error("create table: " + s.to_string());
    return o;
  }

 private:
  void start(const std::string& bin) {
    port_ = free_loopback_port();
    const std::string log = dir_ / "dynalite.log";
    pid_ = spawn_process(
        {bin, "--port", std::to_string(port_), "--host", "127.0.0.1", "--createTableMs", "20", "--deleteTableMs", "20"},
        log, log + ".err");
    await_listening(&pid_, log);
  }

  void stop() { stop_local_server(&pid_); }

  TempDir dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

// The rows of writer `w` in the table: its dedup records (under its own key and in a
// partition index, SK "D#<hex writer>#..."), meta, commit marker, log chunks and WRITERS
// entry, as "PK SK".
inline std::vector<std::string> table_rows_of_writer(const DynamoDbOptions& o, const std::string& w) {
  std::string index_prefix = "D#";
  for (unsigned char c : w) index_prefix += "0123456789abcdef"[c >> 4], index_prefix += "0123456789abcdef"[c & 0xf];
  index_prefix += "#";
  AwsCredentials credentials;
  if (!load_aws_credentials(&credentials).is_ok()) throw std::runtime_error("no AWS credentials for dynalite");
  DynamoDbClient client(resolve_dynamodb_options(o), credentials);
  std::vector<std::string> rows;
  boost::json::object request{{"TableName", o.table}};
  for (;;) {
    boost::json::object reply;
    Status s = client.call("Scan", request, &reply);
    if (!s.is_ok()) throw std::runtime_error("scan: " + s.to_string());
    for (const auto& item : reply.at("Items").as_array()) {
      const std::string pk(item.at("PK").at("S").as_string()), sk(item.at("SK").at("S").as_string());
      if (pk == "DEDUP#" + w || pk == "META#" + w || pk == "LOG#" + w || pk.rfind("LOG#" + w + "#", 0) == 0 ||
          (pk == "WRITERS" && sk == w) || (pk.rfind("PART#", 0) == 0 && sk.rfind(index_prefix, 0) == 0))
        rows.push_back(pk + " " + sk);
    }
    const boost::json::value* last = reply.if_contains("LastEvaluatedKey");
    if (!last) break;
    request["ExclusiveStartKey"] = *last;
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The --set options that point a command at this table.
inline std::string table_sets(const DynamoDbOptions& t) {
  return " --set state.backend=dynamodb --set state.endpoint=" + t.endpoint + " --set state.table=" + t.table;
}

// Waits up to `seconds` for the table to hold an item (a backfill part committed a slice),
// read by an observer writer; a failed read counts as nothing seen yet and is asked again.
inline bool wait_for_table_items(const DynamoDbOptions& table, int seconds) {
  DynamoDbOptions observer_options = table;
  observer_options.writer = "observer";
  std::unique_ptr<StateStore> observer;
  if (!open_dynamodb_store(observer_options, &observer).is_ok()) return false;
  return wait_for(
      [&] {
        std::size_t n = 0;
        const Status s = observer->scan([&](const ItemRecord&) { return ++n, true; });
        return s.is_ok() && n > 0;
      },
      seconds);
}

}  // namespace streamscore::testing
