// Point-in-time rows (`streamscore features`): for each row of a spine (a customer and
// an instant `at`), the customer's item as the engine wrote it at the latest tick
// T <= at - lag, found by replaying the event log once through the engine's own logic
// (model/log_replay.hpp), the clock stopping at each row's cut tick on its way.
// An as-of join on the item history: the item at T holds only events with
// event_time < T that had arrived when the clock reached T, so nothing later leaks in.
// Memory: the spine's rows and the replay's customers (as `replay` keeps them).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "model/log_replay.hpp"

namespace streamscore {

struct SpineRow {
  std::string json;  // the spine line as written (a JSON object), passed through
  std::string customer_id;
  int64_t at_ns = 0;
};

// The fields a joined row adds to its spine row; a spine row must not have them.
inline constexpr const char* kJoinedFields[] = {"features", "as_of", "item_version"};

// Reads a spine file: one JSON object per line with "customer_id" (a string of 1 to 256
// bytes) and "at" (an RFC 3339 UTC instant, as event_time); blank lines are skipped.
// Any other line is an error naming the file, the line and what is wrong.
Status read_spine(const std::string& path, std::vector<SpineRow>* rows);

struct PointInTimeStats {
  LogReplayCounts log;
  uint64_t rows = 0;
  uint64_t rows_with_item = 0;
  int64_t end_tick = 0;  // the log's final tick
};

using RowWriter = std::function<Status(const std::string& row)>;

// For every spine row, in spine order, `write_row` gets the row with the joined fields appended:
// "features" (the item's features object, or null), "as_of" and "item_version" (the
// item's, or null). `lag_ns` >= 0 moves every row's cut earlier.
Status join_point_in_time(const std::vector<std::string>& event_files, const std::vector<SpineRow>& spine,
                          int64_t lag_ns, const LogReplayOptions& options, const RowWriter& write_row,
                          PointInTimeStats* stats, const ReplayProgress& progress = {});

}  // namespace streamscore
