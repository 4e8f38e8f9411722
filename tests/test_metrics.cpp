// Every metric /metrics exports is documented in README's metrics paragraph, every
// documented one is exported, and a daemon that reads, dead-letters, ticks, checkpoints and
// scores moves every series those paths feed. A metric that was registered but never fed
// (as streamscore_model_active_version and streamscore_scoring_latency_seconds once were)
// or exported without a word to the operator fails here.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "actors/checkpoint_probe.hpp"
#include "actors/clock_probe.hpp"
#include "actors/model_probe.hpp"
#include "actors/router_probe.hpp"
#include "actors/shard_probe.hpp"
#include "app/daemon_ops.hpp"
#include "daemon_support.hpp"
#include "faults/model_faults.hpp"
#include "io/http_api.hpp"
#include "io/kafka_sink_probe.hpp"
#include "io/kafka_source_probe.hpp"
#include "io/metrics_text.hpp"
#include "state/dynamodb_probe.hpp"
#include "state/served_items.hpp"

using namespace streamscore;
using namespace streamscore::testing;

namespace {

// The families README's "**Metrics.**" paragraph names, with their prefix and without
// their labels (`events_dead_lettered_total{reason=...}` -> streamscore_events_dead_lettered_total).
std::set<std::string> documented_families() {
  std::ifstream in(std::string(STREAMSCORE_SOURCE_DIR) + "/README.md");
  std::string line, paragraph;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("**Metrics.**", 0) == 0) inside = true;
    if (inside && line.empty()) break;
    if (inside) paragraph += line + "\n";
  }
  BOOST_REQUIRE_MESSAGE(!paragraph.empty(), "README has no **Metrics.** paragraph");
  std::set<std::string> families;
  const std::regex quoted("`([a-z_]*[a-z])(\\{[^`]*\\})?`");  // not the bare prefix `streamscore_`
  for (std::sregex_iterator it(paragraph.begin(), paragraph.end(), quoted), end; it != end; ++it) {
    const std::string name = (*it)[1];
    families.insert(name.rfind("process_", 0) == 0 ? name : "streamscore_" + name);
  }
  return families;
}

MetricsSnapshot scrape(HttpClient& client) {
  HttpResponse response;
  BOOST_REQUIRE(client.get("/metrics", &response).is_ok());
  MetricsSnapshot snap;
  const Status s = parse_prometheus(response.body(), &snap);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());
  return snap;
}

bool starts_with_any(const std::string& name, std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_exported_metric_is_documented_and_fed) {
  ModelLab lab("streamscore-metrics-fed-", 200, 6000);
  BackgroundDaemon d(lab.dir, "metrics", follow_args(lab.dir, lab.events, lab.dir / "state", lab.models));
  HttpClient c("127.0.0.1", d.port());
  // Every record through and a checkpoint; then the scoring of a batch, which a daemon whose
  // model actor does not feed the exporter never shows.
  BOOST_REQUIRE(wait_for(
      [&] {
        const MetricsSnapshot s = scrape(c);
        return s.value("streamscore_events_read_total") == 6000 && s.value("streamscore_checkpoints_total") > 0;
      },
      60));
  BOOST_TEST(wait_for([&] { return scrape(c).value("streamscore_scoring_latency_seconds_count") > 0; }, 20));
  HttpResponse probe;  // a 404 and a customer lookup feed the HTTP server's families
  BOOST_REQUIRE(c.get("/v1/customers/nobody", &probe).is_ok());
  const MetricsSnapshot snap = scrape(c);

  const std::set<std::string> documented = documented_families();
  for (const auto& [family, type] : snap.types)
    BOOST_TEST(documented.count(family) == 1, family << " (" << type << ") is exported but not in README's metrics");
  // Present on a RocksDB daemon with a file source and sinks, a model and the item cache;
  // DynamoDB's and the Kafka source's partition clocks and lag need those backends.
  for (const std::string& family : documented) {
    if (starts_with_any(family, {"streamscore_dynamodb_", "streamscore_partition_watermark", "streamscore_kafka_lag"}))
      continue;
    BOOST_TEST(snap.types.count(family) == 1, family << " is in README's metrics but not exported");
  }

  // What this run must have moved: each is fed by a different component.
  for (const char* fed : {"streamscore_events_read_total",
                          "streamscore_events_accepted_total",
                          "streamscore_events_duplicate_total",
                          "streamscore_ticks_total",
                          "streamscore_event_clock_started",
                          "streamscore_max_event_time_seconds",
                          "streamscore_watermark_seconds",
                          "streamscore_tick_duration_seconds_count",
                          "streamscore_items_written_total",
                          "streamscore_checkpoints_total",
                          "streamscore_last_checkpoint_seconds",
                          "streamscore_scoring_latency_seconds_count",
                          "streamscore_model_active_version",
                          "streamscore_ready",
                          "process_resident_memory_bytes",
                          "process_start_time_seconds",
                          "streamscore_http_request_duration_seconds_count",
                          "streamscore_http_connections_open",
                          "streamscore_http_item_cache_items",
                          "streamscore_http_item_cache_bytes"})
    BOOST_TEST(snap.value(fed) > 0, fed << " was not fed: " << snap.value(fed));
  BOOST_TEST(snap.sum("streamscore_events_dead_lettered_total") > 0);
  BOOST_TEST(snap.value("streamscore_http_responses_total{code=\"4xx\"}") > 0);
  BOOST_TEST(snap.value("streamscore_model_active_version") == 1);
  BOOST_TEST(snap.value("streamscore_events_read_total") == snap.value("streamscore_events_accepted_total") +
                                                                snap.value("streamscore_events_duplicate_total") +
                                                                snap.sum("streamscore_events_dead_lettered_total"));
  BOOST_TEST(d.stop() == 0, d.err());
}

// The backends the daemon above does not run (DynamoDB, a Kafka source's lag and partition
// clocks): every family README documents is rendered by one of the probes, fed as those
// components feed them, and no probe renders a family README does not name.
BOOST_AUTO_TEST_CASE(every_documented_family_is_rendered_by_a_probe) {
  RouterProbe router;
  KafkaSourceProbe kafka_source;
  kafka_source.lag = 3;  // known once the source has fetched
  KafkaSinkProbe kafka_sinks;
  ClockProbe clock;
  clock.started = 1;
  clock.set_partition_watermarks({{0, 1'700'000'000'000'000'000}});
  ShardProbe shards;
  shards.shard_count = 1;
  CheckpointProbe checkpoints;
  checkpoints.last_checkpoint_unix_ms = 1'700'000'000'000;
  ModelProbe model(1);
  ProcessProbe process(nullptr);
  HttpMetrics http;
  ServedItems served;
  ServedItemsProbe served_probe(&served);
  MetricsRegistry registry;
  for (const MetricsProbe* probe : std::initializer_list<const MetricsProbe*>{
           &router, &kafka_source, &kafka_sinks, &clock, &shards, &checkpoints, &model, &process, &http, &served_probe})
    registry.add(probe);
  std::string text = registry.render();
  for (const StateStore::Counter& c : DynamoDbProbe().counters()) render_counter(text, c.name, c.help, c.value);
  MetricsSnapshot snap;
  const Status s = parse_prometheus(text, &snap);
  BOOST_REQUIRE_MESSAGE(s.is_ok(), s.to_string());

  const std::set<std::string> documented = documented_families();
  for (const std::string& family : documented)
    BOOST_TEST(snap.types.count(family) == 1, family << " is in README's metrics but no probe renders it");
  for (const auto& [family, type] : snap.types)
    BOOST_TEST(documented.count(family) == 1, family << " (" << type << ") is rendered but not in README's metrics");
}
