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

#include "state/dynamodb_probe.hpp"
#include "state/store.hpp"

namespace streamscore {

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
  std::shared_ptr<DynamoDbProbe> metrics;  // filled by the store; created when null

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
