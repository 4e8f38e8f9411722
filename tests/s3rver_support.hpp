// s3rver (npm, tests/s3rver/) for tests: an S3-API server on a free loopback port with a
// bucket "logs", started for the test and killed when it ends. s3rver checks SigV4
// signatures against its own credentials (S3RVER / S3RVER), which the test process gets.
#pragma once

#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/cli_support.hpp"
#include "tests/dynalite_support.hpp"  // free_loopback_port

namespace streamscore::testing {

class S3rver {
 public:
  S3rver() : dir_("streamscore-s3rver-") {
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    ::setenv("AWS_REGION", "us-east-1", 1);
    ::unsetenv("AWS_SESSION_TOKEN");
    const std::string bin = std::string(STREAMSCORE_SOURCE_DIR) + "/tests/s3rver/node_modules/.bin/s3rver";
    if (!fs::exists(bin))
      throw std::runtime_error(bin + " is missing: run scripts/install-deps (npm ci in tests/s3rver)");
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) start(bin);
    if (pid_ <= 0) throw std::runtime_error("s3rver did not start: " + slurp(dir_ / "s3rver.log"));
  }
  ~S3rver() { stop(); }
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // The --set that points a command at this server.
  std::string sets() const { return " --set s3.endpoint=" + endpoint(); }

  // Stores `bytes` as s3://logs/<key> (`key` already URL-encoded where it needs to be).
  void put(const std::string& key, const std::string& bytes) const {
    CURL* curl = curl_easy_init();
    curl_slist* headers = curl_slist_append(nullptr, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    const std::string url = endpoint() + "/logs/" + key;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, bytes.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(bytes.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(curl, CURLOPT_USERPWD, "S3RVER:S3RVER");
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION, +[](char*, std::size_t size, std::size_t n, void*) { return size * n; });
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK || status != 200)
      throw std::runtime_error("s3rver PUT " + key + ": " + curl_easy_strerror(rc) + " HTTP " + std::to_string(status));
  }

 private:
  void start(const std::string& bin) {
    port_ = free_loopback_port();
    const std::string log = dir_ / "s3rver.log";
    // s3rver 3.7 makes continuation tokens (lists of more than a page) with a cipher that
    // Node 17+ enables only with OpenSSL's legacy provider.
    const char* node_options = std::getenv("NODE_OPTIONS");
    const std::string saved = node_options ? node_options : "";
    ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
    pid_ = spawn_process(
        {bin, "-d", dir_ / "data", "-a", "127.0.0.1", "-p", std::to_string(port_), "--configure-bucket", "logs"}, log,
        log + ".err");
    if (node_options)
      ::setenv("NODE_OPTIONS", saved.c_str(), 1);
    else
      ::unsetenv("NODE_OPTIONS");
    await_listening(&pid_, log);
  }

  void stop() { stop_local_server(&pid_); }

  TempDir dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

// A loopback HTTP proxy in front of a server that spoils some answers, as a store under
// load does: the n-th request (1-based) gets "503 SlowDown" when n % slow_down_every == 0,
// or its answer cut in the middle when n % cut_every == 0 (0: never). One request per
// connection ("Connection: close" upstream), answers relayed byte for byte.
class FaultyProxy {
 public:
  FaultyProxy(int upstream_port, int slow_down_every, int cut_every)
      : upstream_port_(upstream_port), slow_down_every_(slow_down_every), cut_every_(cut_every) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 64) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("FaultyProxy: cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FaultyProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  FaultyProxy(const FaultyProxy&) = delete;
  FaultyProxy& operator=(const FaultyProxy&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }
  int spoiled() const { return spoiled_.load(); }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    return addr;
  }

  static void send_all(int fd, const std::string& bytes) {
    for (std::size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return;
      at += static_cast<std::size_t>(n);
    }
  }

  void serve() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      handle(client);  // one at a time: the readers here send one request at a time
      ::close(client);
    }
  }

  void handle(int client) {
    std::string request;
    char buf[64 << 10];
    while (request.find("\r\n\r\n") == std::string::npos) {  // GETs only: no body
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const int n = ++requests_;
    if (slow_down_every_ > 0 && n % slow_down_every_ == 0) {
      ++spoiled_;
      const std::string body =
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
          "<Message>Please reduce your request rate.</Message></Error>";
      send_all(client, "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
      return;
    }
    request.insert(request.find("\r\n") + 2, "Connection: close\r\n");
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = loopback(upstream_port_);
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(upstream);
      return;
    }
    send_all(upstream, request);
    std::string answer;
    for (ssize_t got; (got = ::recv(upstream, buf, sizeof buf, 0)) > 0;)
      answer.append(buf, static_cast<std::size_t>(got));
    ::close(upstream);
    if (cut_every_ > 0 && n % cut_every_ == 0) {
      ++spoiled_;
      answer.resize(answer.size() / 2);  // the connection drops in the middle of the answer
    }
    send_all(client, answer);
  }

  int upstream_port_, slow_down_every_, cut_every_;
  int listener_ = -1, port_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, spoiled_{0};
  std::thread thread_;
};

}  // namespace streamscore::testing
