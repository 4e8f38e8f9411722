#include "actors/router_probe.hpp"

#include <fmt/format.h>

namespace streamscore {

void RouterProbe::render(std::string& out, int64_t) const {
  render_counter(out, "streamscore_events_read_total", "Records read from the source.", read.load());
  render_counter(out, "streamscore_events_accepted_total", "Events applied to the features.", accepted.load());
  render_counter(out, "streamscore_events_duplicate_total",
                 "Redeliveries of an event id already applied (conflicting ones included).", duplicates.load());
  render_counter(out, "streamscore_events_conflicting_duplicate_total",
                 "Duplicates whose content differs from the first occurrence.", conflicting_duplicates.load());
  render_family(out, "streamscore_events_dead_lettered_total", "counter",
                "Records sent to the dead letter, by reason.");
  for (int r = 0; r < kReasonCount; ++r)
    out += fmt::format("streamscore_events_dead_lettered_total{{reason=\"{}\"}} {}\n",
                       reason_name(static_cast<Reason>(r)), dead_lettered[r].load());
  render_counter(out, "streamscore_events_expired_total",
                 "Events older than the 30-day horizon (also counted as dead-lettered, reason expired).",
                 dead_lettered[static_cast<int>(Reason::expired)].load());
  render_counter(out, "streamscore_ticks_total", "5-minute ticks emitted.", ticks.load());
  render_counter(out, "streamscore_key_mismatches_total",
                 "Kafka records whose key is not their customer_id (the value wins).", key_mismatches.load());
}

}  // namespace streamscore
