// `streamscore stress --scenario crash-restart`: the binary as a daemon on a file source,
// SIGKILLed mid-run `kills` times and resumed from its checkpoints, then the reference check
// on what it left (items and dead letter: nothing lost or doubled).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <thread>

#include <boost/json.hpp>

#include "app/common.hpp"
#include "common/spawn.hpp"
#include "testkit/stress_internal.hpp"

namespace streamscore::stress_detail {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// How far process `pid` has read `path` (0 while it has not opened it).
uint64_t read_offset(pid_t pid, const std::string& path) {
  std::error_code ec;
  const fs::path fds = fs::path("/proc") / std::to_string(pid) / "fd";
  for (const auto& entry : fs::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(entry.path(), link_ec) != path) continue;
    std::ifstream info(fs::path("/proc") / std::to_string(pid) / "fdinfo" / entry.path().filename());
    std::string key;
    uint64_t value = 0;
    while (info >> key >> value)
      if (key == "pos:") return value;
  }
  return 0;
}

// Dead-letter lines per reason, from the file the daemons left.
std::map<std::string, uint64_t> reasons_in(const std::string& path) {
  std::map<std::string, uint64_t> counts;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* r = o ? o->if_contains("reason") : nullptr;
    ++counts[r && r->is_string() ? std::string(r->as_string()) : std::string("(unreadable line)")];
  }
  return counts;
}

}  // namespace

Status run_crash_restart(const StressOptions& o, StressReport* report) {
  if (o.binary.empty()) return Status::invalid_argument("crash-restart needs the streamscore binary");
  WorkDir dir;
  Status s = dir.open(o.state_dir);
  if (!s.is_ok()) return s;
  report->generator = generator_for(o, records_for(o));
  const std::string log = dir / "events.jsonl", dead_letter = dir / "dead-letter.jsonl";
  {
    std::ofstream out(log, std::ios::binary);
    EventGenerator generator(report->generator);
    std::string line;
    while (generator.next(&line)) out << line << '\n';
    if (!out) return Status::io_error("cannot write " + log);
    report->records = static_cast<uint64_t>(generator.produced());
    report->offered = generator.counts();
  }
  std::error_code size_ec;
  const uint64_t log_bytes = fs::file_size(log, size_ec);
  std::vector<std::string> args = {
      o.binary, "run", "--json", "--top", "0", "--set", "source.kind=file", "--set", "source.path=" + log, "--set",
      "source.exit_at_end=true", "--set", "state.path=" + (dir / "state"), "--set", "dead_letter.path=" + dead_letter,
      "--set", "checkpoint.interval=" + std::to_string(std::max<int64_t>(1, o.checkpoint_interval_ms)) + "ms", "--set",
      "engine.shards=" + std::to_string(o.shards),
      // Small batches, so that a kill lands between many checkpoints.
      "--set", "engine.batch_size=" + std::to_string(o.batch_size > 0 ? o.batch_size : 4096)};
  if (o.threads > 0) args.insert(args.end(), {"--set", "engine.threads=" + std::to_string(o.threads)});
  std::mt19937_64 rng(o.seed);
  const int64_t now_ns = wall_now_ns();
  const auto start = Clock::now();
  int exit_code = -1;
  std::string summary;
  for (int attempt = 0;; ++attempt) {
    const std::string out = dir / ("run-" + std::to_string(attempt) + ".json");
    const std::string err = dir / ("run-" + std::to_string(attempt) + ".err");
    const pid_t pid = spawn_process(args, out, err);
    if (pid < 0) return Status::io_error("cannot start " + o.binary);
    int status = 0;
    if (report->kills < o.kills) {
      // Kill when the daemon has read past a random point of the log (its read offset,
      // from /proc), so that every kill lands mid-run however fast the machine is: kill
      // k aims at the k-th of `kills` equal parts of the log.
      const uint64_t part = log_bytes / static_cast<uint64_t>(o.kills + 1);
      const uint64_t target =
          part * static_cast<uint64_t>(report->kills) + part / 2 + rng() % std::max<uint64_t>(1, part);
      bool exited = false;
      while (!(exited = ::waitpid(pid, &status, WNOHANG) == pid) && read_offset(pid, log) < target)
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ++report->kills;
        continue;
      }
    } else {
      ::waitpid(pid, &status, 0);
    }
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    summary = slurp(out);
    if (exit_code != 0)
      return Status::io_error("the daemon exited with " + std::to_string(exit_code) + ": " + slurp(err));
    break;
  }
  report->seconds = seconds_since(start);
  report->records_per_second = report->seconds > 0 ? report->records / report->seconds : 0;
  // The last daemon's summary: its counters cover what it read after its checkpoint.
  boost::system::error_code ec;
  const auto v = boost::json::parse(summary, ec);
  const auto* o_json = ec ? nullptr : v.if_object();
  if (!o_json) return Status::io_error("the daemon's summary is not JSON: " + summary);
  auto field = [&](const char* name) -> uint64_t {
    const auto* f = o_json->if_contains(name);
    return f && f->is_int64() ? static_cast<uint64_t>(f->as_int64()) : f && f->is_uint64() ? f->as_uint64() : 0;
  };
  report->stats.read = field("read");
  report->stats.accepted = field("accepted");
  report->stats.duplicates = field("duplicates");
  report->stats.customers = field("customers");
  report->stats.ticks = field("ticks");
  report->peak_rss_kb = field("peak_rss_kb");
  const auto* balanced = o_json->if_contains("balanced");
  const auto* recovery = o_json->if_contains("recovery_seconds");
  if (recovery && recovery->is_number()) report->last_recovery_seconds = recovery->to_number<double>();
  if (!o.verify) return Status::ok();

  const auto verify_start = Clock::now();
  EngineOptions defaults;
  const ReferenceModel ref = reference_of(report->generator, reference_options(defaults, now_ns));
  std::unique_ptr<StateStore> store;
  if (!(s = open_store("rocksdb", dir / "state", &store)).is_ok()) return s;
  std::vector<std::string> items;
  if (!(s = exported(*store, &items)).is_ok()) return s;
  std::string diff = first_item_difference(items, ref.items());
  if (diff.empty() && !(balanced && balanced->is_bool() && balanced->as_bool()))
    diff = "the last daemon's counters do not balance: " + summary;
  if (diff.empty()) {  // the dead letter is cut back at every restart: nothing lost or doubled
    const auto got = reasons_in(dead_letter);
    for (int r = 0; r < kReasonCount && diff.empty(); ++r) {
      const std::string name(reason_name(static_cast<Reason>(r)));
      const uint64_t want = ref.stats().dead_lettered[r];
      const auto it = got.find(name);
      const uint64_t have = it == got.end() ? 0 : it->second;
      report->stats.dead_lettered[r] = have;
      if (have != want)
        diff = "dead letter " + name + ": " + std::to_string(have) + " lines, reference " + std::to_string(want);
    }
    uint64_t lines = 0;
    for (const auto& [name, n] : got) lines += n;
    if (diff.empty() && lines != ref.stats().dead_lettered_total())
      diff = "dead letter: " + std::to_string(lines) + " lines, reference " +
             std::to_string(ref.stats().dead_lettered_total());
  }
  report->first_difference = diff;
  report->verified = true;
  report->verify_seconds = seconds_since(verify_start);
  return Status::ok();
}

}  // namespace streamscore::stress_detail
