// The DynamoDB StateStore (`[state] backend = "dynamodb"`): table
// `customer_feature_state`, one item per customer (PK "CUSTOMER#<id>", SK "STATE"), in the
// contract's shape plus the engine's internal data. Speaks DynamoDB's HTTP JSON API
// through libcurl, signed with SigV4 by libcurl itself. Commits stay all-or-nothing for
// the engine through a redo log in the same table: docs/semantics.md, "State in DynamoDB".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "state/store.hpp"

namespace streamscore {

// What the store did on the wire, for /metrics and the tests. Relaxed counters.
struct DynamoDbMetrics {
  std::atomic<uint64_t> requests{0};     // HTTP requests sent (each attempt counts)
  std::atomic<uint64_t> retries{0};      // attempts repeated after a throttle, 5xx or transport error
  std::atomic<uint64_t> throttles{0};    // throttling answers, unprocessed batch items included
  std::atomic<uint64_t> conflicts{0};    // failed conditions (ConditionalCheckFailed), redo skips included
  std::atomic<uint64_t> rebased{0};      // puts moved on top of a racing writer while applying a commit
  std::atomic<uint64_t> recovered{0};    // committed logs finished at open
  std::atomic<uint64_t> fenced{0};       // commits refused: another writer took over this one's partitions
  std::atomic<uint64_t> rows_read{0};    // rows a Scan or Query read, items a BatchGetItem returned
  std::atomic<uint64_t> gc_deleted{0};   // items of gone writers removed (dedup, meta, log chunks)
  std::atomic<uint64_t> gc_writers{0};   // gone writers removed entirely (their WRITERS entry and marker)
  std::atomic<uint64_t> gc_failures{0};  // collection passes that failed (retried at the next checkpoint)
  // Capacity DynamoDB reports it consumed (ReturnConsumedCapacity = TOTAL on every data
  // request), in thousandths of a unit: eventually consistent reads cost half a unit.
  std::atomic<uint64_t> consumed_wcu_milli{0};
  std::atomic<uint64_t> consumed_rcu_milli{0};
};

// Where a commit stops when a test asks it to (a simulated crash): after writing the log
// (before the commit point), after the commit point, after applying (before the log is
// marked done).
enum class CommitStage { none, log_written, committed, applied };

struct DynamoDbOptions {
  std::string endpoint;  // empty: https://dynamodb.<region>.amazonaws.com
  std::string region;    // empty: $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1
  std::string table = "customer_feature_state";
  // Names this writer's redo log (PK "LOG#<writer>") and its stamp on the items it
  // writes. Two live processes must not share one: the second one's commit fails.
  std::string writer = "streamscore";
  // scan_dedup reads every writer's dedup records, not only this writer's: the daemons of
  // a group sharing the table (state.shared), whose customers move between writers.
  bool dedup_of_all_writers = false;
  long connect_timeout_ms = 3000;
  long request_timeout_ms = 20000;
  int max_attempts = 10;     // per request, throttles and transport errors included
  int backoff_base_ms = 20;  // full jitter: sleep uniform(0, min(cap, base * 2^attempt))
  int backoff_cap_ms = 5000;
  int parallel_requests = 8;  // requests in flight for one commit, scan or clear
  // Gone writers (semantics.md, section 21): at most this many of their items are deleted
  // per checkpoint (0: none); a writer is gone once its dedup ids are all past this
  // writer's horizon and it has not committed for gc_idle_ms.
  std::size_t gc_deletes_per_checkpoint = 100;
  int64_t gc_idle_ms = 86'400'000;
  // A rebuild (`replay`): no redo log; conflicts are still checked first, and a crash
  // mid-way leaves the state marked as an interrupted rebuild (the engine's session meta).
  bool bulk_load = false;
  std::shared_ptr<DynamoDbMetrics> metrics;  // filled by the store; created when null

  // Test hooks. `test_fault` may answer a request instead of the server (HTTP status and
  // body), so that the retry path runs for real; `test_stop_after` makes the next commits
  // stop (return an error, as a crash would) right after that stage.
  std::function<bool(std::string_view operation, long* http_status, std::string* body)> test_fault;
  CommitStage test_stop_after = CommitStage::none;
};

// The writer of part K of P of a backfill by `writer` (`backfill --part K/P`). A later
// writer `writer` continues from its parts: it reads their dedup ids besides its own,
// and a meta value it has not written yet is theirs (the clock: every part has the same).
std::string backfill_part_writer(const std::string& writer, int part, int parts);

// Fills endpoint and region from the environment rules above.
DynamoDbOptions resolve_dynamodb_options(DynamoDbOptions options);

// Opens the store: checks the table is there, and finishes a committed but unapplied
// commit of this writer (a crash between the commit point and the end of its apply)
// before anything can be read. Missing credentials are invalid_argument.
Status open_dynamodb_store(DynamoDbOptions options, std::unique_ptr<StateStore>* out);

// CreateTable (PK and SK strings, on-demand capacity), then waits until it is ACTIVE.
// `*existed` is true when the table was already there (nothing changed).
Status create_dynamodb_table(DynamoDbOptions options, bool* existed);

}  // namespace streamscore
