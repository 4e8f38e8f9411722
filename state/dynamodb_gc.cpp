#include "state/dynamodb_gc.hpp"

namespace streamscore {

bool is_gone(const WriterSighting& w, int64_t forget_day, uint64_t now_us, const GcPolicy& policy) {
  if (!w.has_marker) return false;  // never committed: nothing but its WRITERS entry, maybe starting up
  if (w.collecting) return true;    // a pass cut short: continue it
  const bool idle = now_us >= w.last_commit_us && now_us - w.last_commit_us >= policy.idle_us;
  const bool ids_forgotten = !w.has_dedup || w.newest_dedup_day < forget_day;
  return idle && ids_forgotten;
}

namespace {

// Removes what is left of `writer` within `budget`; `*done` once nothing is.
Status collect_writer(GcTable& table, const std::string& writer, std::size_t budget, GcPass* pass, bool* done) {
  std::size_t deleted = 0;
  Status s = table.delete_leftovers(writer, budget, &deleted);
  pass->deleted += deleted;
  *done = s.is_ok() && deleted < budget;
  if (!s.is_ok() || !*done) return s;
  if ((s = table.forget_writer(writer)).is_ok()) ++pass->writers_removed;
  return s;
}

// Whether `writer` is to be collected now; a pending commit it left is finished first
// (its items and offsets are someone's committed work).
Status judge(GcTable& table, const std::string& writer, int64_t forget_day, uint64_t now_us, const GcPolicy& policy,
             bool* gone) {
  WriterSighting w;
  Status s = table.sight(writer, &w);
  if (s.is_ok() && w.pending) {
    WriterSighting idle = w;
    idle.pending = false;
    if (!is_gone(idle, forget_day, now_us, policy)) return Status::ok();  // alive, applying: its own work
    if (!(s = table.finish_commit(writer)).is_ok() || !(s = table.sight(writer, &w)).is_ok()) return s;
  }
  if (!s.is_ok() || w.pending || !is_gone(w, forget_day, now_us, policy)) return s;
  if (!w.collecting) {
    s = table.mark_collecting(writer, w.last_commit_us);
    if (s.is_conflict()) return Status::ok();  // it committed meanwhile: alive
  }
  *gone = s.is_ok();
  return s;
}

}  // namespace

Status collect_gone_writers(GcTable& table, const std::string& self, int64_t forget_day, uint64_t now_us,
                            const GcPolicy& policy, GcPass* pass) {
  *pass = GcPass{};
  if (policy.deletes_per_pass == 0) return Status::ok();
  std::vector<std::string> writers;
  Status s = table.list_writers(&writers);
  Status first_error;  // one writer that cannot be collected (a damaged log) does not stop the others
  for (std::size_t i = 0; s.is_ok() && i < writers.size(); ++i) {
    if (writers[i] == self) continue;
    bool gone = false, done = false;
    Status w = judge(table, writers[i], forget_day, now_us, policy, &gone);
    if (w.is_ok() && gone) w = collect_writer(table, writers[i], policy.deletes_per_pass - pass->deleted, pass, &done);
    if (w.is_ok() && gone && !done) {
      pass->more = true;
      break;
    }
    if (!w.is_ok() && first_error.is_ok()) first_error = w;
  }
  return s.is_ok() ? first_error : s;
}

}  // namespace streamscore
