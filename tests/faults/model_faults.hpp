// Helpers of the model fault tests (fault_model_validation, fault_stale_scores,
// fault_admin_thread): a trained and activated model, copies of it edited the way an
// operator (or an attacker) would edit one, with a sidecar whose checksum matches, and a
// daemon run in the background that can be stopped with a deadline.
#pragma once

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "io/http_client.hpp"
#include "model/artifact.hpp"
#include "model/sha256.hpp"
#include "tests/cli_support.hpp"

namespace streamscore::testing {

// A log of events, a models directory with v1 trained on it, and v1 active.
struct ModelLab {
  TempDir dir;
  std::string events, models;

  explicit ModelLab(const std::string& prefix, int customers = 300, int lines = 20000)
      : dir(prefix), events(dir / "events.jsonl"), models(dir / "models") {
    Result g = run_cli(dir, "generate --customers " + std::to_string(customers) + " --events " + std::to_string(lines) +
                                " --days 40 --out " + events);
    BOOST_REQUIRE_MESSAGE(g.exit_code == 0, g.err);
    Result t = run_cli(dir, "train --events " + events + " --models " + models + " --rounds 4");
    BOOST_REQUIRE_MESSAGE(t.exit_code == 0, t.err);
    Result a = run_cli(dir, "model activate v1 --models " + models);
    BOOST_REQUIRE_MESSAGE(a.exit_code == 0, a.err);
  }

  std::string artifact(int v) const { return models + "/" + artifact_file_name(v); }
  std::string meta(int v) const { return models + "/" + meta_file_name(v); }

  // Stores `bytes` as version `v` with v1's sidecar, its checksum rewritten to match.
  void publish_bytes(int v, const std::string& bytes) const {
    ModelMeta m;
    BOOST_REQUIRE(parse_meta(slurp(meta(1)), &m).is_ok());
    m.version = v;
    m.sha256 = sha256_hex(bytes);
    std::ofstream(artifact(v), std::ios::binary) << bytes;
    std::ofstream(meta(v), std::ios::binary) << render_meta(m);
  }
  // v1's artifact, edited by `edit` (on the parsed XGBoost JSON), stored as version `v`.
  // A string made by raw_json() is written as its raw text.
  void publish_edited(int v, const std::function<void(boost::json::object& learner)>& edit) const {
    boost::json::value model = boost::json::parse(slurp(artifact(1)));
    edit(model.at("learner").as_object());
    std::string text = boost::json::serialize(model);
    const std::string marker = "\"@raw:";
    for (std::size_t at; (at = text.find(marker)) != std::string::npos;) {
      const std::size_t end = text.find('"', at + marker.size());
      text.replace(at, end + 1 - at, text.substr(at + marker.size(), end - at - marker.size()));
    }
    publish_bytes(v, text);
  }
  // A JSON value written as `text` by publish_edited (e.g. 1e999, which reads as infinity).
  static boost::json::value raw_json(const std::string& text) { return boost::json::value("@raw:" + text); }
  // Points active.json at `v` directly, as a hand edit (or an older binary) would.
  void point_active_at(int v) const {
    std::ofstream(models + "/active.json") << "{\"active\":\"v" << v << "\",\"history\":[\"v1\"]}\n";
  }
};

// The first tree of a model's learner.
inline boost::json::object& first_tree(boost::json::object& learner) {
  return learner.at("gradient_booster").at("model").at("trees").at(0).as_object();
}

// `streamscore run` in the background; stop() ends it with SIGTERM and a deadline.
class BackgroundDaemon {
 public:
  BackgroundDaemon(const TempDir& dir, const std::string& name, const std::vector<std::string>& args)
      : out_(dir / (name + "-out.txt")), err_(dir / (name + "-err.txt")) {
    std::vector<std::string> words = {"run"};
    words.insert(words.end(), args.begin(), args.end());
    pid_ = spawn_streamscore(words, out_, err_);
    BOOST_REQUIRE(pid_ > 0);
  }
  ~BackgroundDaemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  uint16_t port() { return daemon_port(err_); }
  std::string err() const { return slurp(err_); }
  std::string out() const { return slurp(out_); }
  bool running() {
    int status = 0;
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return false;
  }
  // SIGTERM, then up to `seconds` for the exit: the exit code, or -1 when it hung (it is
  // killed then).
  int stop(int seconds = 30) {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    return wait_exit(seconds);
  }
  int wait_exit(int seconds) {
    if (!wait_for([&] { return !running(); }, seconds)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    return exit_;
  }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int exit_ = -1;
};

// A daemon following `events` on `state` with the models directory `models`.
inline std::vector<std::string> follow_args(const TempDir& dir, const std::string& events, const std::string& state,
                                            const std::string& models) {
  std::vector<std::string> args = {
      "--set", "source.path=" + events,     "--set", "source.exit_at_end=false",
      "--set", "state.path=" + state,       "--set", "dead_letter.path=" + (dir / "dl.jsonl"),
      "--set", "checkpoint.interval=100ms", "--set", "model.poll_interval_ms=50",
      "--set", "http.admin_token=t0ken"};
  if (!models.empty()) args.insert(args.end(), {"--set", "model.dir=" + models});
  return args;
}

inline const std::vector<std::pair<std::string, std::string>>& admin_token() {
  static const std::vector<std::pair<std::string, std::string>> header = {{"Authorization", "Bearer t0ken"}};
  return header;
}

}  // namespace streamscore::testing
