// What `streamscore run` adds around the engine to be operable as a service: the HTTP
// server with its routes wired to the store and the engine's metrics, readiness, and
// SIGHUP config reload. run_command.cpp only starts it after the engine and stops it
// at shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/engine.hpp"
#include "config/config.hpp"
#include "io/http_api.hpp"
#include "io/http_server.hpp"
#include "io/kafka_sink_probe.hpp"
#include "io/kafka_source_probe.hpp"
#include "io/metrics_text.hpp"
#include "state/served_items.hpp"
#include "state/store.hpp"

namespace streamscore {

// GET /v1/customers/{id} over StateStore::get, which is safe next to the engine's
// writers (RocksDB reads are thread-safe; the memory store takes its mutex). The store
// holds the last committed checkpoint: at most checkpoint.interval behind the shards.
// What a daemon of a shared table (or http.item_cache = false) serves.
class StoreCustomerLookup final : public CustomerLookup {
 public:
  explicit StoreCustomerLookup(StateStore* store) : store_(store) {}
  Status get_item(std::string_view customer_id, std::string* item_json) override;

 private:
  StateStore* store_;
};

// GET /v1/customers/{id} from the committed items in memory (state/served_items.hpp):
// the same answers as the store, without waiting on the store's locks.
class ServedItemsLookup final : public CustomerLookup {
 public:
  explicit ServedItemsLookup(const ServedItems* items) : items_(items) {}
  Status get_item(std::string_view customer_id, std::string* item_json) override;

 private:
  const ServedItems* items_;
};

// GET /metrics: what the registry's probes render.
class RegistryMetricsSource final : public MetricsSource {
 public:
  explicit RegistryMetricsSource(const MetricsRegistry* registry) : registry_(registry) {}
  std::string render_metrics() override { return registry_->render(); }

 private:
  const MetricsRegistry* registry_;
};

// The store's backend counters (DynamoDB's requests, retries, ...), as it lists them.
class StoreCountersProbe final : public MetricsProbe {
 public:
  explicit StoreCountersProbe(const StateStore* store) : store_(store) {}
  void render(std::string& out, int64_t now_unix_ns) const override;

 private:
  const StateStore* store_;
};

// The item cache's gauges (http.item_cache): the items kept in memory and their bytes.
class ServedItemsProbe final : public MetricsProbe {
 public:
  explicit ServedItemsProbe(const ServedItems* items) : items_(items) {}
  void render(std::string& out, int64_t now_unix_ns) const override;

 private:
  const ServedItems* items_;
};

// The pipeline's probes in the order /metrics has always listed their families: the
// records, the Kafka source and sinks, event time, the shards, checkpoints, the model.
// The Kafka probes are rendered (as zeros) without Kafka too.
MetricsRegistry pipeline_probes(const Engine& engine, const KafkaSourceProbe& kafka_source,
                                const KafkaSinkProbe& kafka_sinks);

// The admin token in effect: http.admin_token, or the environment variable when unset.
std::string effective_admin_token(const HttpConfig& http);

HttpServerOptions http_server_options_from(const HttpConfig& http);

class DaemonOps {
 public:
  struct Options {
    std::string config_path;  // reread on SIGHUP, with the same overrides
    std::vector<std::string> overrides;
    ModelAdmin* model = nullptr;  // the model registry, when this process has one
    // Set: GET /v1/customers/{id} answers from these (a ServingStore's); else from the store.
    const ServedItems* served_items = nullptr;
  };

  // Starts the HTTP server when http.enabled, and the SIGHUP watcher. `metrics` holds the
  // pipeline's probes; the daemon adds its own after them (the process, the HTTP server,
  // the store's counters, the item cache). `metrics` and `store` must outlive the
  // returned object.
  static Status start(const Options& options, const Config& config, MetricsRegistry* metrics, StateStore* store,
                      std::unique_ptr<DaemonOps>* out);
  ~DaemonOps();  // stop()

  void set_ready(bool ready) { ready_.store(ready); }
  uint16_t http_port() const { return server_ ? server_->port() : 0; }

  // Rereads the config; applies the reloadable keys that changed and refuses (logs an
  // error naming the key) every other change. Called on SIGHUP; public for tests.
  void reload();

  // Stops the watcher and the server (in-flight requests are cut). Idempotent.
  void stop();

  // The SIGHUP handler only sets this flag; the watcher thread does the work.
  static void request_reload() { reload_requested_.store(true); }

 private:
  DaemonOps() = default;
  // Adds the daemon's own probes to `metrics`, after the pipeline's.
  void register_probes(MetricsRegistry* metrics, const StateStore* store);

  static std::atomic<bool> reload_requested_;
  Options options_;
  Config config_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<CustomerLookup> lookup_;
  std::unique_ptr<ProcessProbe> process_probe_;
  std::unique_ptr<StoreCountersProbe> store_probe_;
  std::unique_ptr<ServedItemsProbe> served_items_probe_;
  std::unique_ptr<RegistryMetricsSource> metrics_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace streamscore
