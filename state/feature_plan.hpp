// How the engine computes a FeatureSet other than the default one: the distinct pieces
// its features share, numbered once so that the parser and the shards work with bits and
// indexes instead of names. The parser fills each event's filter bits and value slots
// (ParsedEvent::filters/present/values); a shard keeps, per 5-minute bucket, one Cell per
// input, and per track (an input over a window length) the running aggregate of the
// buckets inside that window.
#pragma once

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

  // Null for the default set: the engine keeps its own code path for it.
  static std::shared_ptr<const FeaturePlan> make(const FeatureSet& set);
  // Bit f set when an event of this type passes filter f.
  uint64_t filters_of(std::string_view event_type) const;

 private:
  uint64_t every_type_ = 0;                                // filters with no type listed
  std::vector<std::pair<std::string, uint64_t>> by_type_;  // sorted: a type's filters
};

// A feature's inputs in one bucket, or summed over a track's window.
struct Cell {
  int64_t sum = 0;
  int64_t min = 0;  // meaningful when n > 0
  int64_t max = 0;
  int64_t n = 0;  // events counted (count) or contributing a value
  void add(int64_t value) {
    min = n == 0 || value < min ? value : min;
    max = n == 0 || value > max ? value : max;
    sum += value;
    ++n;
  }
  void add(const Cell& other) {
    if (other.n == 0) return;
    min = n == 0 || other.min < min ? other.min : min;
    max = n == 0 || other.max > max ? other.max : max;
    sum += other.sum;
    n += other.n;
  }
};

// sum / n rounded to the nearest integer, halves away from zero (n > 0).
int64_t rounded_quotient(int64_t sum, int64_t n);

// The feature's value over a track's aggregate. Inline: a shard computes every feature
// at each evaluation.
inline FeatureValue feature_value(Aggregation aggregation, const Cell& track) {
  switch (aggregation) {
    case Aggregation::count:
      return FeatureValue{track.n, true};
    case Aggregation::sum:
      return FeatureValue{track.sum, true};
    case Aggregation::avg:
      return FeatureValue{track.n == 0 ? 0 : rounded_quotient(track.sum, track.n), true};
    case Aggregation::min:
      return track.n > 0 ? FeatureValue{track.min, true} : FeatureValue{0, false};
    case Aggregation::max:
      return track.n > 0 ? FeatureValue{track.max, true} : FeatureValue{0, false};
  }
  return FeatureValue{};
}

}  // namespace streamscore
