// The parts of `streamscore stress` (testkit/stress.hpp) share these: the stream each scenario
// offers, its work directory, the reference check, and the two ways a scenario runs
// (in process: testkit/stress_in_process.cpp; as killed daemons: testkit/stress_crash_restart.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "actors/engine.hpp"
#include "state/store.hpp"
#include "testkit/reference_model.hpp"
#include "testkit/stress.hpp"
#include "testkit/stress_sampling.hpp"

namespace streamscore::stress_detail {

namespace fs = std::filesystem;

// The stream each scenario offers: the generator's defaults, changed where the
// scenario says so.
GeneratorOptions generator_for(const StressOptions& o, int64_t events);

// Records offered by `t` seconds after the start (burst: 10x the rate for 0.2 s of every 2 s).
double records_due(const StressOptions& o, double t);

int64_t records_for(const StressOptions& o);

// A directory for the state: the one given (must be empty or absent) or a temp dir
// that is removed at the end.
class WorkDir {
 public:
  Status open(const std::string& given) {
    std::error_code ec;
    if (!given.empty()) {
      if (fs::exists(given, ec) && !fs::is_empty(given, ec))
        return Status::invalid_argument("--state " + given + ": not empty (stress starts from scratch)");
      fs::create_directories(given, ec);
      if (ec) return Status::io_error("--state " + given + ": " + ec.message());
      path_ = fs::absolute(given).string();
      return Status::ok();
    }
    std::string pattern = (fs::temp_directory_path(ec) / "streamscore-stress-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return Status::io_error("cannot create a temp dir");
    path_ = pattern;
    remove_ = true;
    return Status::ok();
  }
  ~WorkDir() {
    std::error_code ec;
    if (remove_) fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
  bool remove_ = false;
};

ReferenceOptions reference_options(const EngineOptions& engine, int64_t now_ns);

int64_t wall_now_ns();

// The same stream again, through the reference model.
ReferenceModel reference_of(const GeneratorOptions& g, const ReferenceOptions& r);

// The public items of a store, as export prints them.
Status exported(StateStore& store, std::vector<std::string>* items);

// In process, against the engine on a RocksDB store (every scenario but crash-restart).
Status run_in_process(const StressOptions& o, StressReport* report);

// crash-restart: a daemon on a file source, killed and resumed.
Status run_crash_restart(const StressOptions& o, StressReport* report);

}  // namespace streamscore::stress_detail
