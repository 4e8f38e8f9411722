// s3rver (npm, tests/s3rver/) for tests: an S3-API server on a free loopback port with a
// bucket "logs", started for the test and killed when it ends. s3rver checks SigV4
// signatures against its own credentials (S3RVER / S3RVER), which the test process gets.
#pragma once

#include <curl/curl.h>

#include <stdexcept>
#include <string>

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
    pid_ = spawn_process(
        {bin, "-d", dir_ / "data", "-a", "127.0.0.1", "-p", std::to_string(port_), "--configure-bucket", "logs"}, log,
        log + ".err");
    for (int i = 0; i < 300 && pid_ > 0; ++i) {  // up to 15 s: node starts slowly on a busy machine
      if (slurp(log).find("listening") != std::string::npos) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;  // died (port taken?)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  TempDir dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace streamscore::testing
