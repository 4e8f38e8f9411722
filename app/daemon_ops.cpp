#include "app/daemon_ops.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>

#include "app/logging.hpp"
#include "io/metrics_text.hpp"
#include "state/format.hpp"

namespace streamscore {

std::atomic<bool> DaemonOps::reload_requested_{false};

Status StoreCustomerLookup::get_item(std::string_view customer_id, std::string* item_json) {
  ItemRecord record;
  Status s = store_->get(customer_pk(customer_id), &record);
  if (!s.is_ok()) return s;
  if (record.version == 0 || record.item_json.empty())  // no public item yet
    return Status::not_found("customer " + std::string(customer_id));
  *item_json = std::move(record.item_json);
  return Status::ok();
}

Status ServedItemsLookup::get_item(std::string_view customer_id, std::string* item_json) {
  if (items_->get(customer_id, item_json)) return Status::ok();
  return Status::not_found("customer " + std::string(customer_id));
}

void StoreCountersProbe::render(std::string& out, int64_t) const {
  for (const StateStore::Counter& c : store_->counters()) render_counter(out, c.name, c.help, c.value);
}

void ServedItemsProbe::render(std::string& out, int64_t) const {
  render_gauge(out, "streamscore_http_item_cache_items",
               "Customers' items kept in memory for GET /v1/customers/{id} (http.item_cache).",
               static_cast<double>(items_->items()));
  render_gauge(out, "streamscore_http_item_cache_bytes", "Bytes of item JSON kept in memory for lookups.",
               static_cast<double>(items_->bytes()));
}

MetricsRegistry pipeline_probes(const Engine& engine, const KafkaSourceProbe& kafka_source,
                                const KafkaSinkProbe& kafka_sinks) {
  MetricsRegistry metrics;
  metrics.add(&engine.router_probe());
  metrics.add(&kafka_source);
  metrics.add(&kafka_sinks);
  metrics.add(&engine.clock_probe());
  metrics.add(&engine.shard_probe());
  metrics.add(&engine.checkpoint_probe());
  metrics.add(&engine.model_probe());
  return metrics;
}

std::string effective_admin_token(const HttpConfig& http) {
  if (!http.admin_token.empty()) return http.admin_token;
  const char* env = std::getenv(kAdminTokenEnv);
  return env ? std::string(env) : std::string();
}

HttpServerOptions http_server_options_from(const HttpConfig& http) {
  HttpServerOptions o;
  o.address = http.address;
  o.port = static_cast<uint16_t>(http.port);
  o.threads = http.threads;
  o.header_limit = static_cast<std::size_t>(http.max_header_bytes);
  o.body_limit = static_cast<std::size_t>(http.max_body_bytes);
  o.request_timeout = std::chrono::milliseconds(http.request_timeout_ms);
  o.max_connections = static_cast<std::size_t>(http.max_connections);
  o.realtime_priority = http.realtime_priority;
  return o;
}

Status DaemonOps::start(const Options& options, const Config& config, MetricsRegistry* metrics, StateStore* store,
                        std::unique_ptr<DaemonOps>* out) {
  std::unique_ptr<DaemonOps> ops(new DaemonOps());
  ops->options_ = options;
  ops->config_ = config;
  if (config.http.enabled) {
    if (options.served_items != nullptr)
      ops->lookup_ = std::make_unique<ServedItemsLookup>(options.served_items);
    else
      ops->lookup_ = std::make_unique<StoreCustomerLookup>(store);
    DaemonOps* self = ops.get();
    ops->metrics_ = std::make_unique<RegistryMetricsSource>(metrics);
    HttpApiOptions api;
    api.customers = ops->lookup_.get();
    api.metrics = ops->metrics_.get();
    api.model = options.model;
    api.ready = [self] { return self->ready_.load(); };
    ops->api_ = std::make_unique<HttpApi>(std::move(api));
    ops->register_probes(metrics, store);
    const std::string token = effective_admin_token(config.http);
    ops->api_->set_admin_token(token);
    Status s = HttpServer::start(http_server_options_from(config.http), ops->api_.get(), &ops->server_);
    if (!s.is_ok()) return s;
    spdlog::info("msg=\"http listening\" url=http://{}:{} admin_token={}", config.http.address, ops->server_->port(),
                 token.empty() ? "unset" : "set");
  }
  ops->watcher_ = std::thread([self = ops.get()] {
    pthread_setname_np(pthread_self(), "sighup");
    while (!self->stopping_.load()) {
      if (reload_requested_.exchange(false)) self->reload();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  *out = std::move(ops);
  return Status::ok();
}

void DaemonOps::register_probes(MetricsRegistry* metrics, const StateStore* store) {
  process_probe_ = std::make_unique<ProcessProbe>([this] { return ready_.load(); });
  metrics->add(process_probe_.get());
  metrics->add(&api_->metrics());
  if (store != nullptr) {
    store_probe_ = std::make_unique<StoreCountersProbe>(store);
    metrics->add(store_probe_.get());
  }
  if (options_.served_items != nullptr) {
    served_items_probe_ = std::make_unique<ServedItemsProbe>(options_.served_items);
    metrics->add(served_items_probe_.get());
  }
}

DaemonOps::~DaemonOps() {
  stop();
}

void DaemonOps::stop() {
  if (stopping_.exchange(true)) return;
  ready_.store(false);
  if (watcher_.joinable()) watcher_.join();
  if (server_) server_->stop();
}

void DaemonOps::reload() {
  Config next;
  Status s = load_config(options_.config_path, options_.overrides, &next);
  if (!s.is_ok()) {
    spdlog::error(
        "msg=\"reload refused: the config does not load; keeping the running config\" "
        "error={}",
        quoted_log_value(s.message()));
    return;
  }
  std::size_t applied = 0, refused = 0;
  for (const std::string& key : changed_keys(config_, next)) {
    if (!is_reloadable_key(key)) {
      ++refused;
      spdlog::error("msg=\"reload refused a change that needs a restart\" key={}", key);
      continue;
    }
    ++applied;
    if (key == "log.level") {
      // `next` passed load_config, which validated log.level: this cannot fail.
      static_cast<void>(configure_logging(next.log.level));
      config_.log.level = next.log.level;
    } else if (key == "http.admin_token") {
      config_.http.admin_token = next.http.admin_token;
    }
    spdlog::info("msg=\"reload applied\" key={}", key);  // the key only, never a value
  }
  if (api_) api_->set_admin_token(effective_admin_token(config_.http));
  spdlog::info("msg=\"config reloaded\" applied={} refused={}", applied, refused);
}

}  // namespace streamscore
