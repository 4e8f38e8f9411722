#include "state/event_clock.hpp"

#include <algorithm>

namespace streamscore {

ClockSnapshot combined(const ClockSnapshots& clocks) {
  ClockSnapshot out;
  for (const auto& [id, c] : clocks) {
    if (!c.started) continue;
    out.max_event_ns = out.started ? std::max(out.max_event_ns, c.max_event_ns) : c.max_event_ns;
    out.tick = out.started ? std::max(out.tick, c.tick) : c.tick;
    out.started = true;
  }
  return out;
}

bool earliest_tick(const ClockSnapshots& clocks, int64_t* tick) {
  bool any = false;
  for (const auto& [id, c] : clocks) {
    if (!c.started) continue;
    *tick = any ? std::min(*tick, c.tick) : c.tick;
    any = true;
  }
  return any;
}

bool EventClock::expired(const ClockSnapshot& clock, int64_t time_ns) const {
  // Older than the current tick minus the horizon: it can no longer change any feature.
  return clock.started && time_ns < horizon_start_ns(clock.tick, horizon_windows_);
}

bool EventClock::remembered(const ClockSnapshot& clock, int64_t first_time_ns) const {
  return !clock.started || first_time_ns >= forget_before_ns(clock.tick, horizon_windows_, lateness_ns_);
}

void EventClock::accept(ClockSnapshot& clock, int32_t id, int64_t time_ns, uint32_t position, ClassifyResult* out) {
  const int64_t watermark = time_ns - lateness_ns_;
  if (!clock.started) {
    clock.started = true;
    clock.max_event_ns = time_ns;
    clock.tick = window_of(watermark);
    out->ticks.push_back(TickMark{position, clock.tick, id});  // starts the shards' clock
    return;
  }
  if (time_ns <= clock.max_event_ns) return;
  clock.max_event_ns = time_ns;
  // A tick at T is due once the watermark has reached T.
  const int64_t due = window_of(watermark);
  if (due > clock.tick) {
    out->ticks_emitted += static_cast<uint64_t>(due - clock.tick);
    clock.tick = due;
    out->ticks.push_back(TickMark{position, due, id});
  }
}

void EventClock::classify(const std::vector<Candidate>& batch, ClassifyResult* out) {
  out->verdicts.assign(batch.size(), Verdict::accepted);
  out->ticks.clear();
  out->ticks_emitted = 0;
  batch_ids_.clear();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Candidate& c = batch[i];
    ClockSnapshot& clock = clocks_[c.clock];
    if (expired(clock, c.time_ns)) {
      out->verdicts[i] = Verdict::expired;
      continue;
    }
    uint32_t first_fingerprint = c.seen_fingerprint;
    bool seen = c.seen_before && remembered(clock, c.seen_time_ns);
    if (!seen) {
      const DedupEntry* e = batch_ids_.find(c.key);
      if (e && remembered(clock, e->time_ns)) {
        seen = true;
        first_fingerprint = e->fingerprint;
      }
    }
    if (seen) {
      out->verdicts[i] = first_fingerprint == c.fingerprint ? Verdict::duplicate : Verdict::conflicting_duplicate;
      continue;
    }
    batch_ids_.upsert(DedupEntry{c.key, c.time_ns, c.fingerprint, 0});
    accept(clock, c.clock, c.time_ns, static_cast<uint32_t>(i + 1), out);
  }
}

bool EventClock::final_tick(TickMark* mark, uint64_t* ticks_emitted, int64_t floor_ns) {
  *ticks_emitted = 0;
  const ClockSnapshot all = combined(clocks_);
  if (!all.started) return false;
  const int64_t end = window_of(std::max(all.max_event_ns, floor_ns)) + 1;
  for (auto& [id, clock] : clocks_) {
    if (!clock.started || end <= clock.tick) continue;
    *ticks_emitted += static_cast<uint64_t>(end - clock.tick);
    clock.tick = end;
  }
  if (*ticks_emitted == 0) return false;
  mark->position = 0;
  mark->tick = end;
  mark->clock = kEveryClock;
  return true;
}

}  // namespace streamscore
