// What the DynamoDB store did on the wire, for /metrics, the run summaries and the tests.
// Fed by the store and its client (relaxed counters); the store lists the series through
// StateStore::counters(), which the daemon's exporter renders.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "state/store.hpp"

namespace streamscore {

struct DynamoDbProbe {
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

  // Every series, named and explained as /metrics shows them.
  std::vector<StateStore::Counter> counters() const;
};

}  // namespace streamscore
