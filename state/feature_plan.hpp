// How the engine computes a FeatureSet other than the default one: the distinct pieces
// its features share, numbered once so that the parser and the shards work with bits and
// indexes instead of names. The parser fills each event's filter bits and value slots
// (ParsedEvent::inputs); a shard keeps, per 5-minute bucket, one cell per input, and per
// track (an input over a window length) the running aggregate of the buckets inside that
// window, all in one block of words per customer (Layout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "state/feature_set.hpp"

namespace streamscore {

struct FeaturePlan {
  struct ValueSlot {  // a field read at a scale
    std::string field;
    int scale = 0;
    int extra_field = -1;  // its position in `fields`; -1: "amount"
  };
  struct Input {  // the events of a filter, and the value they contribute
    int filter = 0;
    int value = -1;  // a value slot; -1: each event counts 1 (aggregation count)
  };
  struct Track {  // an input over the windows [T - window, T)
    int input = 0;
    int64_t window = 0;
    bool extremes = false;  // a min or max feature reads it
  };
  struct Output {  // a feature, in config order
    std::string name;
    Aggregation aggregation = Aggregation::count;
    int track = 0;
    int scale = 0;
  };

  std::vector<ValueSlot> values;
  std::vector<std::string> fields;  // distinct fields of `values`, other than "amount"
  std::vector<std::vector<std::string>> filters;
  std::vector<Input> inputs;
  std::vector<std::vector<int>> input_tracks;  // by input: the tracks that read it
  std::vector<Track> tracks;
  std::vector<int64_t> windows;                 // distinct track windows, ascending
  std::vector<std::vector<int>> window_tracks;  // by `windows` entry: its tracks
  std::vector<int> track_window;                // by track: its `windows` entry
  // By input: a bit per `windows` entry with a track that reads it. A bucket whose inputs
  // are all empty for a window length changes no feature when it leaves that length.
  std::vector<uint64_t> input_windows;
  std::vector<Output> outputs;
  int64_t horizon_windows = 0;

  // Where a customer's DeclaredState keeps each thing, in int64 words of one block: a
  // fixed part (per `windows` entry a cursor and the window of its bucket, the tracks'
  // cells, the written features and a bit per written feature that is not null), then a
  // row per bucket (its window, then each input's cell). One block: an evaluation's cache misses are the block's lines
  // and the rows it reads, not a chain of separate allocations.
  struct Layout {
    std::vector<uint8_t> input_width;   // by input: its cells' width (cell::add)
    std::vector<std::size_t> input_at;  // by input: its cell's first word in a row
    std::size_t row_words = 0;          // the window, then the inputs' cells
    std::size_t cursors_at = 0;
    std::size_t cursor_windows_at = 0;
    std::vector<std::size_t> track_at;  // by track: its cell's first word
    std::size_t written_at = 0;         // by output: the written value (0 when null)
    std::size_t present_at = 0;         // bit f: output f was written not null
    std::size_t fixed_words = 0;
  };
  Layout layout;

  // Null for the default set: the engine keeps its own code path for it.
  static std::shared_ptr<const FeaturePlan> make(const FeatureSet& set);
  // Bit f set when an event of this type passes filter f.
  uint64_t filters_of(std::string_view event_type) const;

 private:
  uint64_t every_type_ = 0;                                // filters with no type listed
  std::vector<std::pair<std::string, uint64_t>> by_type_;  // sorted: a type's filters
};

// A cell: an input's aggregate in one bucket, or summed over a track's window, as
// `width` int64 words of a customer's DeclaredState: n (events counted, or contributing a
// value), then for an input with a value its sum, then, when a min or max feature reads
// the input, its min and max (meaningful when n > 0).
namespace cell {
enum Word : std::size_t { n = 0, sum = 1, min = 2, max = 3 };

inline void add(int64_t* cell, std::size_t width, int64_t value) {
  if (width == 4) {
    cell[min] = cell[n] == 0 || value < cell[min] ? value : cell[min];
    cell[max] = cell[n] == 0 || value > cell[max] ? value : cell[max];
  }
  if (width >= 2) cell[sum] += value;
  ++cell[n];
}
inline void add(int64_t* cell, std::size_t width, const int64_t* other) {
  if (other[n] == 0) return;
  if (width == 4) {
    cell[min] = cell[n] == 0 || other[min] < cell[min] ? other[min] : cell[min];
    cell[max] = cell[n] == 0 || other[max] > cell[max] ? other[max] : cell[max];
  }
  if (width >= 2) cell[sum] += other[sum];
  cell[n] += other[n];
}
}  // namespace cell

// sum / n rounded to the nearest integer, halves away from zero (n > 0).
int64_t rounded_quotient(int64_t sum, int64_t n);

// The feature's value over a track's cell. Inline: a shard computes every feature at each
// evaluation.
inline FeatureValue feature_value(Aggregation aggregation, const int64_t* track) {
  const int64_t n = track[cell::n];
  switch (aggregation) {
    case Aggregation::count:
      return FeatureValue{n, true};
    case Aggregation::sum:
      return FeatureValue{track[cell::sum], true};
    case Aggregation::avg:
      return FeatureValue{n == 0 ? 0 : rounded_quotient(track[cell::sum], n), true};
    case Aggregation::min:
      return n > 0 ? FeatureValue{track[cell::min], true} : FeatureValue{0, false};
    case Aggregation::max:
      return n > 0 ? FeatureValue{track[cell::max], true} : FeatureValue{0, false};
  }
  return FeatureValue{};
}

}  // namespace streamscore
