#include "actors/event_clock.hpp"

namespace streamscore {

bool EventClock::expired(int64_t time_ns) const {
  // Older than the current tick minus 30 days: it can no longer change any feature.
  return state_.started && time_ns < horizon_start_ns(state_.tick);
}

bool EventClock::remembered(int64_t first_time_ns) const {
  return !state_.started || first_time_ns >= forget_before_ns(state_.tick, lateness_ns_);
}

void EventClock::accept(int64_t time_ns, uint32_t position, ClassifyResult* out) {
  if (!state_.started) {
    state_.started = true;
    state_.max_event_ns = time_ns;
    state_.tick = window_of(watermark_ns());
    out->ticks.push_back(TickMark{position, state_.tick});  // starts the shards' clocks
    return;
  }
  if (time_ns <= state_.max_event_ns) return;
  state_.max_event_ns = time_ns;
  // A tick at T is due once the watermark has reached T.
  const int64_t due = window_of(watermark_ns());
  if (due > state_.tick) {
    out->ticks_emitted += static_cast<uint64_t>(due - state_.tick);
    state_.tick = due;
    out->ticks.push_back(TickMark{position, due});
  }
}

void EventClock::classify(const std::vector<Candidate>& batch, ClassifyResult* out) {
  out->verdicts.assign(batch.size(), Verdict::accepted);
  out->ticks.clear();
  out->ticks_emitted = 0;
  batch_ids_.clear();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Candidate& c = batch[i];
    if (expired(c.time_ns)) {
      out->verdicts[i] = Verdict::expired;
      continue;
    }
    uint32_t first_fingerprint = c.seen_fingerprint;
    bool seen = c.seen_before && remembered(c.seen_time_ns);
    if (!seen) {
      const DedupEntry* e = batch_ids_.find(c.key);
      if (e && remembered(e->time_ns)) {
        seen = true;
        first_fingerprint = e->fingerprint;
      }
    }
    if (seen) {
      out->verdicts[i] = first_fingerprint == c.fingerprint ? Verdict::duplicate
                                                            : Verdict::conflicting_duplicate;
      continue;
    }
    batch_ids_.upsert(DedupEntry{c.key, c.time_ns, c.fingerprint, 0});
    accept(c.time_ns, static_cast<uint32_t>(i + 1), out);
  }
}

bool EventClock::final_tick(TickMark* mark, uint64_t* ticks_emitted) {
  *ticks_emitted = 0;
  if (!state_.started) return false;
  const int64_t end = window_of(state_.max_event_ns) + 1;
  if (end <= state_.tick) return false;
  *ticks_emitted = static_cast<uint64_t>(end - state_.tick);
  state_.tick = end;
  mark->position = 0;
  mark->tick = end;
  return true;
}

}  // namespace streamscore
