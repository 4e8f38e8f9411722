#include "state/dynamodb_probe.hpp"

namespace streamscore {

std::vector<StateStore::Counter> DynamoDbProbe::counters() const {
  return {{"streamscore_dynamodb_requests_total", "HTTP requests to DynamoDB (every attempt).", requests.load()},
          {"streamscore_dynamodb_retries_total", "Requests repeated after a throttle, a 5xx or a transport error.",
           retries.load()},
          {"streamscore_dynamodb_throttles_total", "Throttling answers (unprocessed batch items included).",
           throttles.load()},
          {"streamscore_dynamodb_conflicts_total",
           "Failed conditions (ConditionalCheckFailed), puts a redo found applied included.", conflicts.load()},
          {"streamscore_dynamodb_rebased_total", "Puts moved on top of a racing writer while applying a commit.",
           rebased.load()},
          {"streamscore_dynamodb_recovered_total", "Committed redo logs finished at open.", recovered.load()},
          {"streamscore_dynamodb_fenced_total",
           "Checkpoints refused because another writer took over this writer's partitions (their work dropped).",
           fenced.load()},
          {"streamscore_dynamodb_rows_read_total",
           "Table rows read: rows a Scan or a Query went through, items a BatchGetItem returned.", rows_read.load()},
          {"streamscore_dynamodb_gc_deleted_total",
           "Items of gone writers removed (dedup records, meta, redo-log chunks).", gc_deleted.load()},
          {"streamscore_dynamodb_gc_writers_total", "Gone writers removed entirely (WRITERS entry and commit marker).",
           gc_writers.load()},
          {"streamscore_dynamodb_gc_failures_total",
           "Collection passes that failed (continued at the next checkpoint).", gc_failures.load()},
          {"streamscore_dynamodb_consumed_wcu_total",
           "Write capacity units DynamoDB reported consumed (failed conditions not included).",
           consumed_wcu_milli.load() / 1000},
          {"streamscore_dynamodb_consumed_rcu_total", "Read capacity units DynamoDB reported consumed.",
           consumed_rcu_milli.load() / 1000}};
}

}  // namespace streamscore
