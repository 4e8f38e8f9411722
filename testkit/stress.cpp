#include "testkit/stress.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "testkit/stress_internal.hpp"

namespace streamscore {

const std::vector<std::string>& stress_scenarios() {
  static const std::vector<std::string> names = {"steady",     "hot-keys",        "burst",         "duplicate-storm",
                                                 "late-storm", "malformed-flood", "crash-restart", "model-swap"};
  return names;
}

namespace stress_detail {

// The stream each scenario offers: the generator's defaults, changed where the
// scenario says so.
GeneratorOptions generator_for(const StressOptions& o, int64_t events) {
  GeneratorOptions g;
  g.customers = o.customers;
  g.events = events;
  g.days = o.days;
  g.seed = o.seed;
  if (o.scenario == "hot-keys") {  // 1% of the customers get half of the events
    g.hot_customers = 0.01;
    g.hot_share = 0.5;
  } else if (o.scenario == "duplicate-storm") {
    g.dup_rate = 0.5;
  } else if (o.scenario == "late-storm") {  // 1..48 hours late: inside the 30-day horizon
    g.late_rate = 0.2;
  } else if (o.scenario == "malformed-flood") {
    g.bad_rate = 0.3;
  }
  return g;
}

// Records offered by `t` seconds after the start. burst: 10x the rate for 0.2 s of
// every 2 s (so the mean is 1.9x the base rate).
double records_due(const StressOptions& o, double t) {
  const double r = static_cast<double>(o.rate);
  if (o.scenario != "burst") return r * t;
  const double cycles = std::floor(t / 2.0), within = t - cycles * 2.0;
  const double in_cycle = within < 0.2 ? 10 * r * within : 2 * r + r * (within - 0.2);
  return cycles * 3.8 * r + in_cycle;
}

int64_t records_for(const StressOptions& o) {
  if (o.events > 0) return o.events;
  return std::max<int64_t>(1, static_cast<int64_t>(records_due(o, o.duration_s)));
}

ReferenceOptions reference_options(const EngineOptions& engine, int64_t now_ns) {
  ReferenceOptions r;
  r.allowed_lateness_ns = engine.allowed_lateness_ns;
  r.max_event_ns = now_ns + engine.max_future_skew_ns;
  return r;
}

int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The same stream again, through the reference model.
ReferenceModel reference_of(const GeneratorOptions& g, const ReferenceOptions& r) {
  ReferenceModel model(r);
  EventGenerator generator(g);
  std::string line;
  while (generator.next(&line)) model.feed_line(line);
  model.finish();
  return model;
}

Status exported(StateStore& store, std::vector<std::string>* items) {
  return store.scan([&](const ItemRecord& r) {
    if (!r.item_json.empty()) items->push_back(r.item_json);
    return true;
  });
}

}  // namespace stress_detail

Status run_stress(const StressOptions& o, StressReport* report) {
  const auto& names = stress_scenarios();
  if (std::find(names.begin(), names.end(), o.scenario) == names.end())
    return Status::invalid_argument("--scenario " + o.scenario + ": unknown");
  if (o.rate < 0 || o.duration_s <= 0 || o.customers < 1 || o.customers > 9999999 || o.days < 1)
    return Status::invalid_argument("--rate >= 0, --duration > 0, --customers 1..9999999, --days >= 1");
  report->scenario = o.scenario;
  return o.scenario == "crash-restart" ? stress_detail::run_crash_restart(o, report)
                                       : stress_detail::run_in_process(o, report);
}

}  // namespace streamscore
