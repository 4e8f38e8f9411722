// streamscore configuration: a TOML file (toml++) plus `--set section.key=value`
// overrides. Every key is documented in config/streamscore.example.toml. Unknown keys
// and bad values are errors that name the key.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "common/time.hpp"
#include "state/feature_set.hpp"

namespace streamscore {

struct SourceConfig {
  std::string kind = "file";          // "file" | "generator" | "kafka"
  std::string path = "events.jsonl";  // kind = "file"
  // file: stop after the final tick instead of following the file; kafka: bounded mode,
  // read every partition up to its end offset as of start, then the final tick
  bool exit_at_end = true;
  // kind = "kafka" (brokers and client properties: [kafka])
  std::string topic = "customer-events";
  std::string group_id = "streamscore";
  // kind = "generator": the built-in simulator (same knobs as `streamscore generate`)
  int64_t customers = 10000;
  int64_t events = 1000000;  // total events to produce; 0 = unbounded
  int64_t rate = 0;          // events per second; 0 = as fast as possible
  int64_t days = 45;
  double dup_rate = 0.02;
  int64_t disorder_s = 120;
  double late_rate = 0.001;
  double bad_rate = 0.001;
  uint64_t seed = 42;
  std::string start = "2025-01-01T00:00:00Z";
};

struct StateConfig {
  std::string backend = "rocksdb";  // "rocksdb" | "memory" | "dynamodb"
  std::string path = "data/state";  // rocksdb
  // dynamodb: empty endpoint = https://dynamodb.<region>.amazonaws.com; empty region =
  // $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1
  std::string endpoint;
  std::string region;
  std::string table = "customer_feature_state";
  // dynamodb: names this process's redo log, its private meta (clock, checkpoint) and its
  // dedup records. Every process writing one table needs its own.
  std::string writer = "streamscore";
  // dynamodb + kafka (following): the table is shared by the daemons of one consumer group.
  // A daemon holds only the customers of the partitions assigned to it, loaded from the
  // table at each assignment (docs/semantics.md, section 21).
  bool shared = false;
  // dynamodb: gone writers' rows (their dedup ids past this writer's horizon, no commit for
  // gc_idle) are deleted after each checkpoint, at most this many per checkpoint (0: never).
  int64_t gc_deletes_per_checkpoint = 100;
  int64_t gc_idle_ns = kDayNanos;
};

struct DeadLetterConfig {
  std::string kind = "file";                    // "file" | "kafka"
  std::string path = "data/dead-letter.jsonl";  // kind = "file"
  std::string topic = "customer-events-dlq";    // kind = "kafka"
};

// Kafka clients (source, dead-letter topic, output topic): the brokers, and librdkafka
// properties passed through as they are ("security.protocol", "sasl.mechanisms", ...).
struct KafkaConfig {
  std::string bootstrap_servers;                                // "host:port,host:port"; required by anything Kafka
  std::vector<std::pair<std::string, std::string>> properties;  // in file order
};

// Optional stream of every written item, for downstream services.
struct OutputConfig {
  std::string topic;  // e.g. "customer-scores" (key = customer_id); empty = off
};

struct WindowConfig {
  int64_t allowed_lateness_ns = kDefaultAllowedLatenessNs;  // "10m"
  int64_t max_future_skew_ns = kDefaultMaxFutureSkewNs;     // "24h"
};

struct EngineConfig {
  int shards = 8;          // shard actors; results do not depend on it
  int threads = 0;         // CAF scheduler threads; 0 = number of cores
  int parsers = 0;         // parser actors; 0 = number of threads
  int batch_size = 65536;  // records per batch from the source (big batches amortize messaging)
  // `run`: nice steps for the threads that ingest (the scheduler's, the source loop's),
  // so that the HTTP server's thread wins a core when a request arrives. 0 = none. 10
  // was measured best on 2 cores (BENCHMARKS.md, HTTP serving); ingestion keeps its rate.
  int nice = 10;
};

struct CheckpointConfig {
  // How often `run` commits a checkpoint: changed items, dedup ids, clock and source
  // position in one atomic write. Also how stale the stored items may be.
  int64_t interval_ns = 2 * kNanosPerSecond;  // "2s"
};

struct ModelConfig {
  std::string dir;                 // models directory; empty = no model (items carry no score)
  int64_t poll_interval_ms = 500;  // how often the daemon reads DIR/active.json
  int64_t rescore_rate = 50000;    // items per second re-scored in the background after a swap
  int nthread = 1;                 // XGBoost threads for scoring
  // run: a refused active model at start (corrupt, or failing the structural check) is a
  // config error (exit 2) unless this allows starting without a model (scoring nothing).
  bool allow_unscored_start = false;
};

// The daemon's HTTP server (`streamscore run`): see README "Operating the daemon".
struct HttpConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";  // loopback by default: expose deliberately
  int64_t port = 8480;                // 0 = any free port (logged at start)
  int threads = 1;                    // server threads, separate from the engine's
  std::string admin_token;            // bearer token of the admin routes; empty: $STREAMSCORE_ADMIN_TOKEN
  int64_t request_timeout_ms = 5000;  // a request must arrive completely within this
  int64_t max_header_bytes = 8192;    // larger: 431
  int64_t max_body_bytes = 65536;     // larger: 413
  // Open connections at most; at the cap a new one sheds the one waiting longest on its
  // client. Must leave the fds RocksDB and Kafka need (app/fd_budget.hpp).
  int64_t max_connections = 512;
  // SCHED_RR priority of the server threads (1..99), so that a request preempts every
  // normal thread at once; 0 = normal scheduling. Needs root, CAP_SYS_NICE or
  // RLIMIT_RTPRIO; without it a warning is logged once and the server runs normally.
  // 2 was measured to pay on 2 shared cores (BENCHMARKS.md, HTTP serving); it leaves 1
  // for a load client that must yield to the server.
  int realtime_priority = 2;
  // RocksDB and memory state: GET /v1/customers/{id} answers from the committed items
  // kept in memory (state/served_items.hpp), so that a lookup never waits on a lock of
  // the store that ingestion holds. false: read the store (less memory, a slower tail).
  // On DynamoDB lookups always read the table, which other writers may change.
  bool item_cache = true;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, off
};

// Event logs in S3 or an S3-compatible store (`--events s3://bucket/key`): signed and
// credentialled like DynamoDB (state/aws_credentials.hpp).
struct S3Config {
  std::string endpoint;  // "" = https://s3.<region>.amazonaws.com; else e.g. a local server (path-style)
  std::string region;    // "" = $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1
  int max_attempts = 8;  // per request: throttles, 5xx and transport errors are retried with backoff
};

struct Config {
  SourceConfig source;
  S3Config s3;
  StateConfig state;
  DeadLetterConfig dead_letter;
  KafkaConfig kafka;
  OutputConfig output;
  WindowConfig window;
  EngineConfig engine;
  CheckpointConfig checkpoint;
  HttpConfig http;
  LogConfig log;
  ModelConfig model;
  // The [[feature]] tables, validated, in file order; none declared: today's three.
  // Part of the state: a state built with other definitions is refused (docs/semantics.md).
  FeatureSet features = FeatureSet::defaults();
};

// The environment variable that supplies the admin token when http.admin_token is unset.
constexpr const char* kAdminTokenEnv = "STREAMSCORE_ADMIN_TOKEN";

// Keys that a running daemon applies on SIGHUP; a change to any other key needs a restart.
bool is_reloadable_key(const std::string& key);

// The "section.key" names whose values differ between `a` and `b`, in schema order, then
// "feature" when the [[feature]] definitions differ.
std::vector<std::string> changed_keys(const Config& a, const Config& b);

// Loads `path` (empty: defaults only), then applies each "section.key=value" override.
// An error names the offending key (and the file position when there is one).
Status load_config(const std::string& path, const std::vector<std::string>& overrides, Config* out);

// Parses durations such as "0s", "90s", "10m", "1h", "2d", "500ms": a non-negative
// integer and a unit (ms, s, m, h, d); a bare number ("0", "90") is refused. On failure
// the message says what is expected, without repeating the text.
Status parse_duration(const std::string& text, int64_t* nanos);

// Parses an RFC 3339 UTC instant written exactly `YYYY-MM-DDTHH:MM:SSZ` (source.start,
// `generate --start`) to nanoseconds since the Unix epoch. Years 1678..2261.
Status parse_utc_time(const std::string& text, int64_t* nanos);

}  // namespace streamscore
