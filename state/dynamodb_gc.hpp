// Collection of gone writers in a DynamoDB table: the dedup records, meta, redo-log
// remains and WRITERS entry of a writer that will not come back are removed by whoever
// finds them, a bounded number of deletes at a time (docs/semantics.md, section 21,
// "Gone writers"). This is the policy; the DynamoDB store supplies the table operations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace streamscore {

// What the collector reads of another writer.
struct WriterSighting {
  bool has_marker = false;      // no marker: it never committed (an export, a writer starting)
  bool pending = false;         // its last commit passed its commit point and is not applied yet
  bool collecting = false;      // a collector has marked it: its commits are refused from then on
  uint64_t last_commit_us = 0;  // its marker's sequence: at least the wall clock of its last commit
  bool has_dedup = false;
  int64_t newest_dedup_day = 0;  // the day of its newest dedup record
};

// The table operations the collector needs.
class GcTable {
 public:
  virtual ~GcTable() = default;
  virtual Status list_writers(std::vector<std::string>* writers) = 0;
  virtual Status sight(const std::string& writer, WriterSighting* out) = 0;
  // Applies the writer's pending commit (as a takeover does), so that nothing committed is lost.
  virtual Status finish_commit(const std::string& writer) = 0;
  // Marks the writer collected if its marker is still the one sighted (sequence
  // `last_commit_us`, not pending); conflict when it committed meanwhile (it is alive).
  virtual Status mark_collecting(const std::string& writer, uint64_t last_commit_us) = 0;
  // Deletes up to `budget` of its dedup records, meta and log chunks; `*deleted` of them.
  virtual Status delete_leftovers(const std::string& writer, std::size_t budget, std::size_t* deleted) = 0;
  // Removes its WRITERS entry, then its marker (only while it is marked collected).
  virtual Status forget_writer(const std::string& writer) = 0;
};

struct GcPolicy {
  std::size_t deletes_per_pass = 100;  // 0: no collection
  uint64_t idle_us = 86'400'000'000;   // no commit for this long (wall clock)
};

struct GcPass {
  std::size_t deleted = 0;          // items removed
  std::size_t writers_removed = 0;  // writers whose last item went
  bool more = false;                // the budget ran out: call again
};

// Whether `w` is gone for a collector whose clock forgets the dedup days before
// `forget_day`: every id it wrote is forgotten by that clock (past the horizon plus the
// allowed lateness) and it has not committed for `policy.idle_us`.
bool is_gone(const WriterSighting& w, int64_t forget_day, uint64_t now_us, const GcPolicy& policy);

// One pass of writer `self`: finds the gone writers and removes at most
// `policy.deletes_per_pass` of their items. Idempotent: another collector at the same time
// deletes the same items, and a pass cut short is continued by the next one.
Status collect_gone_writers(GcTable& table, const std::string& self, int64_t forget_day, uint64_t now_us,
                            const GcPolicy& policy, GcPass* pass);

}  // namespace streamscore
