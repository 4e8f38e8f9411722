// Issue 16, class 1: a model whose checksum is valid but whose structure is not (a child
// out of range, a split on a feature the schema lacks, a cycle, a shared node, a
// non-finite threshold, another objective, ...) is refused by every path that can make
// it active: `model activate`, the HTTP route, the daemon's watcher of active.json, the
// daemon's start and `replay --models`. Nothing crashes or hangs; the refusal names the
// version, the tree, the node and what is wrong. Also (class 8): `model.dir` that does
// not exist is a config error, and /metrics shows the active model and feeds the
// scoring latency.
#define BOOST_TEST_MODULE fault_model_validation
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cmath>
#include <filesystem>

#include "daemon_support.hpp"
#include "faults/model_faults.hpp"

using namespace streamscore;
using namespace streamscore::testing;
namespace json = boost::json;

namespace {

struct Corruption {
  const char* name;
  const char* expected;  // in the refusal
  std::function<void(json::object& learner)> edit;
};

void set_int(json::object& tree, const char* key, std::size_t at, int64_t value) {
  tree.at(key).as_array().at(at) = value;
}

const std::vector<Corruption>& corruptions() {
  static const std::vector<Corruption> all = {
      {"left child out of range", "tree 0 node 0: left child 999 is out of range",
       [](json::object& l) { set_int(first_tree(l), "left_children", 0, 999); }},
      {"negative right child", "tree 0 node 0: right child -7 is out of range",
       [](json::object& l) { set_int(first_tree(l), "right_children", 0, -7); }},
      {"split on a feature beyond the schema", "tree 0 node 0: split on feature 7",
       [](json::object& l) { set_int(first_tree(l), "split_indices", 0, 7); }},
      {"a cycle back to an ancestor", "tree 0 node 1: left child 0 is reached twice",
       [](json::object& l) { set_int(first_tree(l), "left_children", 1, 0); }},
      {"a node shared by two parents", "is reached twice",
       [](json::object& l) {
         json::object& t = first_tree(l);
         t.at("right_children").as_array().at(0) = t.at("left_children").as_array().at(0);
       }},
      {"a leaf with one child", "tree 0 node 0: one child is -1",
       [](json::object& l) { set_int(first_tree(l), "right_children", 0, -1); }},
      {"an array shorter than num_nodes", "tree 0: base_weights has 22 entries, num_nodes is 23",
       [](json::object& l) { first_tree(l).at("base_weights").as_array().pop_back(); }},
      {"num_nodes larger than the arrays", "tree 0: left_children has 23 entries, num_nodes is 24",
       [](json::object& l) { first_tree(l).at("tree_param").as_object()["num_nodes"] = "24"; }},
      {"an infinite threshold", "tree 0 node 0: split condition is not finite",
       [](json::object& l) { first_tree(l).at("split_conditions").as_array().at(0) = ModelLab::raw_json("1e999"); }},
      {"a leaf value of minus infinity", "leaf value is not finite",
       [](json::object& l) {
         json::object& t = first_tree(l);
         const auto& left = t.at("left_children").as_array();
         for (std::size_t j = 0; j < left.size(); ++j)
           if (left[j].as_int64() == -1) {
             t.at("split_conditions").as_array().at(j) = ModelLab::raw_json("-1e999");
             break;
           }
       }},
      {"an orphan node", "tree 0 node 23: not reached from the root",
       [](json::object& l) {  // a 24th node, a leaf no node points to
         json::object& t = first_tree(l);
         for (const char* key : {"left_children", "right_children"}) t.at(key).as_array().push_back(-1);
         t.at("parents").as_array().push_back(0);
         for (const char* key : {"split_indices", "default_left"}) t.at(key).as_array().push_back(0);
         for (const char* key : {"split_conditions", "base_weights", "loss_changes", "sum_hessian"})
           t.at(key).as_array().push_back(0.5);
         t.at("split_type").as_array().push_back(0);
         t.at("tree_param").as_object()["num_nodes"] = "24";
       }},
      {"a base score that is not a probability", "base_score 2 is not a probability",
       [](json::object& l) { l.at("learner_model_param").as_object()["base_score"] = "2"; }},
      {"regression objective", "objective 'reg:squarederror', the engine expects 'binary:logistic'",
       [](json::object& l) { l.at("objective").as_object()["name"] = "reg:squarederror"; }},
      {"another feature count", "num_feature 5, the engine's schema has 3",
       [](json::object& l) { l.at("learner_model_param").as_object()["num_feature"] = "5"; }},
      // XGBoost reads split_type by num_nodes, past the end of a shorter array (a segfault).
      {"split_type shorter than num_nodes", "tree 0: split_type has 0 entries, num_nodes is 23",
       [](json::object& l) { first_tree(l).at("split_type").as_array().clear(); }},
      // Finite as a double, infinite as the float XGBoost stores.
      {"a threshold beyond float range", "tree 0 node 0: split condition is not finite",
       [](json::object& l) { first_tree(l).at("split_conditions").as_array().at(0) = ModelLab::raw_json("1e300"); }},
      {"a base weight beyond float range", "tree 0 node 0: base weight is not finite",
       [](json::object& l) { first_tree(l).at("base_weights").as_array().at(0) = ModelLab::raw_json("-3.5e38"); }},
      {"a model without trees", "the model has no trees",
       [](json::object& l) {
         json::object& model = l.at("gradient_booster").at("model").as_object();
         model.at("trees").as_array().clear();
         model.at("tree_info").as_array().clear();
         model.at("gbtree_model_param").as_object()["num_trees"] = "0";
       }},
      // Left to XGBoost's own checks: its refusal is one line, without its stack trace.
      {"num_deleted naming nodes that are not deleted", "param.num_deleted (0 vs. 5)",
       [](json::object& l) { first_tree(l).at("tree_param").as_object()["num_deleted"] = "5"; }},
      {"num_trees disagreeing with the trees", "num_trees is 9, the model has 4 trees",
       [](json::object& l) {
         l.at("gradient_booster").at("model").at("gbtree_model_param").as_object()["num_trees"] = "9";
       }},
  };
  return all;
}

// Publishes every corruption as v2, v3, ... and returns the versions in the same order.
std::vector<int> publish_all(const ModelLab& lab) {
  std::vector<int> versions;
  for (std::size_t i = 0; i < corruptions().size(); ++i) {
    const int v = static_cast<int>(i) + 2;
    lab.publish_edited(v, corruptions()[i].edit);
    versions.push_back(v);
  }
  return versions;
}

std::string first_item_line(const std::string& export_text) {
  return export_text.substr(0, export_text.find('\n'));
}

}  // namespace

BOOST_AUTO_TEST_CASE(model_activate_refuses_each_corruption_naming_the_defect) {
  ModelLab lab("streamscore-fault-mv-activate-");
  const std::vector<int> versions = publish_all(lab);
  for (std::size_t i = 0; i < versions.size(); ++i) {
    const std::string v = "v" + std::to_string(versions[i]);
    Result r = run_cli(lab.dir, "model activate " + v + " --models " + lab.models);
    BOOST_TEST(r.exit_code == 1, corruptions()[i].name << ": " << r.err);
    BOOST_TEST(r.err.find("model " + v + " refused") != std::string::npos, corruptions()[i].name << ": " << r.err);
    BOOST_TEST(r.err.find(corruptions()[i].expected) != std::string::npos, corruptions()[i].name << ": " << r.err);
    BOOST_TEST(r.err.find('\n') == r.err.size() - 1, corruptions()[i].name << ": not one line: " << r.err);
  }
  BOOST_TEST(slurp(lab.models + "/active.json").find("\"active\":\"v1\"") != std::string::npos);
}

// Replay with the corrupt model active (active.json edited by hand): refused before any
// item is written, exit 2 naming the version; never a crash.
BOOST_AUTO_TEST_CASE(replay_refuses_a_corrupt_active_model) {
  ModelLab lab("streamscore-fault-mv-replay-");
  const std::vector<int> versions = publish_all(lab);
  for (std::size_t i = 0; i < versions.size(); ++i) {
    lab.point_active_at(versions[i]);
    Result r = run_cli(lab.dir,
                       "replay --events " + lab.events + " --state " + (lab.dir / "state") + " --models " + lab.models);
    BOOST_TEST(r.exit_code == 2, corruptions()[i].name << ": " << r.err);
    BOOST_TEST(r.err.find("model v" + std::to_string(versions[i]) + " refused") != std::string::npos,
               corruptions()[i].name << ": " << r.err);
    BOOST_TEST(r.err.find(corruptions()[i].expected) != std::string::npos, corruptions()[i].name << ": " << r.err);
  }
}

// A daemon whose active.json names a corrupt model does not start (exit 2, naming the
// version and the defect), unless model.allow_unscored_start says to run without one.
BOOST_AUTO_TEST_CASE(a_daemon_refuses_to_start_on_a_corrupt_active_model) {
  ModelLab lab("streamscore-fault-mv-start-");
  const std::vector<int> versions = publish_all(lab);
  for (std::size_t i = 0; i < versions.size(); ++i) {
    lab.point_active_at(versions[i]);
    BackgroundDaemon d(lab.dir, "start" + std::to_string(i),
                       follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
    BOOST_TEST(d.wait_exit(60) == 2, corruptions()[i].name << ": " << d.err());
    BOOST_TEST(d.err().find("model v" + std::to_string(versions[i]) + " refused") != std::string::npos, d.err());
    BOOST_TEST(d.err().find(corruptions()[i].expected) != std::string::npos, d.err());
    BOOST_TEST(d.err().find("model.allow_unscored_start") != std::string::npos, d.err());
  }
  // Allowed explicitly: it runs, scores nothing, and says so.
  lab.point_active_at(versions[0]);
  std::vector<std::string> args = follow_args(lab.dir, lab.events, lab.dir / "state", lab.models);
  args.insert(args.end(), {"--set", "model.allow_unscored_start=true"});
  BackgroundDaemon d(lab.dir, "allowed", args);
  HttpClient c("127.0.0.1", d.port());
  BOOST_TEST(wait_for([&] { return metric(c, "streamscore_events_accepted_total") > 0; }, 60));
  BOOST_TEST(metric(c, "streamscore_model_active_version") == 0);
  BOOST_TEST(d.err().find("starting without a model") != std::string::npos, d.err());
  BOOST_TEST(d.stop() == 0, d.err());
  BOOST_TEST(export_of(lab.dir, lab.dir / "state").find("\"score\"") == std::string::npos);
}

// A running daemon on v1: every corruption is refused over HTTP (409) and by the watcher
// (active.json edited by hand); the daemon keeps answering, keeps v1, and stops on SIGTERM.
BOOST_AUTO_TEST_CASE(a_running_daemon_refuses_each_corruption_over_http_and_from_the_watcher) {
  ModelLab lab("streamscore-fault-mv-daemon-");
  const std::vector<int> versions = publish_all(lab);
  BackgroundDaemon d(lab.dir, "daemon", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  HttpClient c("127.0.0.1", d.port());
  BOOST_TEST_REQUIRE(wait_for([&] { return metric(c, "streamscore_model_active_version") == 1; }, 60));
  for (std::size_t i = 0; i < versions.size(); ++i) {
    const std::string v = "v" + std::to_string(versions[i]);
    HttpResponse r;
    BOOST_TEST_REQUIRE(
        c.request(http::verb::post, "/v1/model/activate", &r, "{\"version\":\"" + v + "\"}", admin_token()).is_ok());
    BOOST_TEST(r.result_int() == 409, corruptions()[i].name << ": " << r.body());
    BOOST_TEST(r.body().find(corruptions()[i].expected) != std::string::npos,
               corruptions()[i].name << ": " << r.body());
  }
  for (std::size_t i = 0; i < versions.size(); ++i) {
    const std::string v = "v" + std::to_string(versions[i]);
    lab.point_active_at(versions[i]);
    BOOST_TEST(wait_for([&] { return d.err().find("model " + v + " refused") != std::string::npos; }, 30),
               corruptions()[i].name << ": " << d.err());
    HttpResponse r;
    BOOST_TEST(c.get("/healthz", &r).is_ok());
    BOOST_TEST(metric(c, "streamscore_model_active_version") == 1);
  }
  BOOST_TEST(d.running());
  BOOST_TEST(d.stop() == 0, d.err());
  const std::string item = first_item_line(export_of(lab.dir, lab.dir / "state"));
  BOOST_TEST(item.find("\"model_version\":\"v1\"") != std::string::npos, item);
}

// Not JSON (XGBoost's UBJSON or binary formats, or anything else): the engine writes
// JSON and cannot validate the others, so it refuses them.
BOOST_AUTO_TEST_CASE(an_artifact_that_is_not_json_is_refused) {
  ModelLab lab("streamscore-fault-mv-ubj-");
  lab.publish_bytes(2, std::string("{L\x00\x00\x00\x00\x00\x00\x00\x01", 10));
  Result r = run_cli(lab.dir, "model activate v2 --models " + lab.models);
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find("model v2 refused: corrupt artifact") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("not an XGBoost JSON model") != std::string::npos, r.err);
}

// An artifact that is not a regular file (a FIFO, whose reader waits for a writer) is
// refused at once by `model activate` and by a running daemon's watcher, which keeps its
// model, keeps answering and still stops on SIGTERM.
BOOST_AUTO_TEST_CASE(an_artifact_that_is_not_a_regular_file_is_refused_at_once) {
  ModelLab lab("streamscore-fault-mv-fifo-");
  lab.publish_bytes(2, slurp(lab.artifact(1)));
  std::filesystem::remove(lab.artifact(2));
  BOOST_TEST_REQUIRE(::mkfifo(lab.artifact(2).c_str(), 0644) == 0);
  const pid_t pid = spawn_streamscore({"model", "activate", "v2", "--models", lab.models}, lab.dir / "fifo-out.txt",
                                      lab.dir / "fifo-err.txt");
  int status = 0;
  const bool ended = wait_for([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 30);
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  BOOST_TEST_REQUIRE(ended, "model activate blocked on the FIFO");
  const std::string err = slurp(lab.dir / "fifo-err.txt");
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 1), err);
  BOOST_TEST(err.find("model v2 refused: artifact ") != std::string::npos, err);
  BOOST_TEST(err.find("not a regular file") != std::string::npos, err);

  BackgroundDaemon d(lab.dir, "daemon", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  HttpClient c("127.0.0.1", d.port());
  BOOST_TEST_REQUIRE(wait_for([&] { return metric(c, "streamscore_model_active_version") == 1; }, 60));
  lab.point_active_at(2);
  BOOST_TEST(wait_for([&] { return d.err().find("model v2 refused") != std::string::npos; }, 30), d.err());
  HttpResponse r;
  BOOST_TEST(c.get("/healthz", &r).is_ok());
  BOOST_TEST(metric(c, "streamscore_model_active_version") == 1);
  BOOST_TEST(d.stop(30) == 0, d.err());
}

// A model is read whole into memory: a file far larger than any model (here sparse, so it
// costs no disk) is refused from its size before it is read, artifact or sidecar, by
// `model activate` and by a running daemon's watcher, which keeps its model.
BOOST_AUTO_TEST_CASE(a_model_file_larger_than_any_model_is_refused_before_it_is_read) {
  ModelLab lab("streamscore-fault-mv-huge-");
  const auto huge = static_cast<std::uintmax_t>(kMaxModelFileBytes) + 1;
  lab.publish_bytes(2, slurp(lab.artifact(1)));
  std::filesystem::resize_file(lab.artifact(2), huge);
  Result r = run_cli(lab.dir, "model activate v2 --models " + lab.models);
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find("model v2 refused: artifact ") != std::string::npos, r.err);
  BOOST_TEST(
      r.err.find(std::to_string(huge) + " bytes, more than the 256 MiB a model file may have") != std::string::npos,
      r.err);

  lab.publish_bytes(3, slurp(lab.artifact(1)));
  std::filesystem::resize_file(lab.meta(3), huge);
  r = run_cli(lab.dir, "model activate v3 --models " + lab.models);
  BOOST_TEST(r.exit_code == 1, r.err);
  BOOST_TEST(r.err.find("model v3 refused: metadata ") != std::string::npos, r.err);

  BackgroundDaemon d(lab.dir, "daemon", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  HttpClient c("127.0.0.1", d.port());
  BOOST_TEST_REQUIRE(wait_for([&] { return metric(c, "streamscore_model_active_version") == 1; }, 60));
  lab.point_active_at(2);
  BOOST_TEST(wait_for([&] { return d.err().find("model v2 refused") != std::string::npos; }, 30), d.err());
  BOOST_TEST(metric(c, "streamscore_model_active_version") == 1);
  BOOST_TEST(d.stop(30) == 0, d.err());
}

// Class 8: a models directory that does not exist is a config error naming the key.
BOOST_AUTO_TEST_CASE(a_model_dir_that_does_not_exist_is_a_config_error) {
  ModelLab lab("streamscore-fault-mv-dir-");
  const std::string missing = lab.dir / "no-such-models";
  std::vector<std::string> args = follow_args(lab.dir, lab.events, lab.dir / "state", missing);
  Result r = run_cli(lab.dir, "run " + words(args));
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("model.dir") != std::string::npos, r.err);
  BOOST_TEST(r.err.find(missing) != std::string::npos, r.err);
  Result replay =
      run_cli(lab.dir, "replay --events " + lab.events + " --state " + (lab.dir / "state2") + " --models " + missing);
  BOOST_TEST(replay.exit_code == 2, replay.err);
  BOOST_TEST(replay.err.find(missing) != std::string::npos, replay.err);
}

// Class 8: /metrics shows the active version (and `status` with it) and the scoring
// latency of the batches scored.
BOOST_AUTO_TEST_CASE(metrics_show_the_active_model_and_the_scoring_latency) {
  ModelLab lab("streamscore-fault-mv-metrics-");
  BackgroundDaemon d(lab.dir, "metrics", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  const uint16_t port = d.port();
  HttpClient c("127.0.0.1", port);
  BOOST_TEST(wait_for([&] { return metric(c, "streamscore_model_active_version") == 1; }, 60));
  BOOST_TEST(wait_for([&] { return metric(c, "streamscore_scoring_latency_seconds_count") > 0; }, 60));
  Result s = run_cli(lab.dir, "status --url http://127.0.0.1:" + std::to_string(port));
  BOOST_TEST(s.out.find("none active") == std::string::npos, s.out << s.err);
  BOOST_TEST(s.out.find("v1") != std::string::npos, s.out << s.err);
  BOOST_TEST(d.stop() == 0, d.err());
}
