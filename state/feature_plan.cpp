#include "state/feature_plan.hpp"

#include <algorithm>

namespace streamscore {

namespace {

bool operator==(const FeaturePlan::ValueSlot& a, const FeaturePlan::ValueSlot& b) {
  return a.field == b.field && a.scale == b.scale;
}
bool operator==(const FeaturePlan::Input& a, const FeaturePlan::Input& b) {
  return a.filter == b.filter && a.value == b.value;
}

// Index of `item` in `list`, appended when new.
template <class T>
int index_in(std::vector<T>& list, const T& item) {
  for (std::size_t i = 0; i < list.size(); ++i)
    if (list[i] == item) return static_cast<int>(i);
  list.push_back(item);
  return static_cast<int>(list.size() - 1);
}

// Min and max are kept for an input only when a min or max feature reads it.
FeaturePlan::Layout layout_of(const FeaturePlan& plan) {
  FeaturePlan::Layout layout;
  layout.input_width.assign(plan.inputs.size(), 1);
  for (std::size_t i = 0; i < plan.inputs.size(); ++i)
    if (plan.inputs[i].value >= 0) layout.input_width[i] = 2;
  for (const FeaturePlan::Track& track : plan.tracks)
    if (track.extremes) layout.input_width[track.input] = 4;
  layout.row_words = 1;  // the window
  for (uint8_t width : layout.input_width) {
    layout.input_at.push_back(layout.row_words);
    layout.row_words += width;
  }
  std::size_t at = 0;
  layout.cursors_at = at;
  at += plan.windows.size();
  layout.cursor_windows_at = at;
  at += plan.windows.size();
  for (const FeaturePlan::Track& track : plan.tracks) {
    layout.track_at.push_back(at);
    at += layout.input_width[track.input];
  }
  layout.written_at = at;
  at += plan.outputs.size();
  layout.present_at = at++;
  layout.fixed_words = at;
  return layout;
}

}  // namespace

std::shared_ptr<const FeaturePlan> FeaturePlan::make(const FeatureSet& set) {
  if (set.is_default()) return nullptr;
  auto plan = std::make_shared<FeaturePlan>();
  std::vector<std::pair<int, int64_t>> track_keys;  // (input, window)
  for (const FeatureSpec& spec : set.specs()) {
    Input input;
    input.filter = index_in(plan->filters, spec.event_types);  // sorted and unique (FeatureSet::make)
    if (spec.uses_field()) {
      const int extra_field = spec.field == "amount" ? -1 : index_in(plan->fields, spec.field);
      input.value = index_in(plan->values, ValueSlot{spec.field, spec.scale, extra_field});
    }
    const int input_index = index_in(plan->inputs, input);
    const int track = index_in(track_keys, std::make_pair(input_index, spec.window));
    if (static_cast<std::size_t>(track) == plan->tracks.size())
      plan->tracks.push_back(Track{input_index, spec.window, false});
    if (spec.aggregation == Aggregation::min || spec.aggregation == Aggregation::max)
      plan->tracks[track].extremes = true;
    plan->outputs.push_back(Output{spec.name, spec.aggregation, track, spec.scale});
  }
  plan->input_tracks.resize(plan->inputs.size());
  for (std::size_t t = 0; t < plan->tracks.size(); ++t) {
    plan->input_tracks[plan->tracks[t].input].push_back(static_cast<int>(t));
    index_in(plan->windows, plan->tracks[t].window);
  }
  std::sort(plan->windows.begin(), plan->windows.end());
  plan->window_tracks.resize(plan->windows.size());
  for (std::size_t t = 0; t < plan->tracks.size(); ++t) {
    const auto at = std::lower_bound(plan->windows.begin(), plan->windows.end(), plan->tracks[t].window);
    plan->window_tracks[at - plan->windows.begin()].push_back(static_cast<int>(t));
    plan->track_window.push_back(static_cast<int>(at - plan->windows.begin()));
  }
  plan->input_windows.assign(plan->inputs.size(), 0);
  for (std::size_t t = 0; t < plan->tracks.size(); ++t)
    plan->input_windows[plan->tracks[t].input] |= uint64_t{1} << plan->track_window[t];
  plan->horizon_windows = set.horizon_windows();
  plan->layout = layout_of(*plan);
  for (std::size_t f = 0; f < plan->filters.size(); ++f) {
    if (plan->filters[f].empty()) plan->every_type_ |= uint64_t{1} << f;
    for (const std::string& type : plan->filters[f]) {
      auto it = std::find_if(plan->by_type_.begin(), plan->by_type_.end(),
                             [&](const auto& entry) { return entry.first == type; });
      if (it == plan->by_type_.end()) it = plan->by_type_.insert(plan->by_type_.end(), {type, 0});
      it->second |= uint64_t{1} << f;
    }
  }
  std::sort(plan->by_type_.begin(), plan->by_type_.end());
  return plan;
}

uint64_t FeaturePlan::filters_of(std::string_view event_type) const {
  const auto it = std::lower_bound(by_type_.begin(), by_type_.end(), event_type,
                                   [](const auto& entry, std::string_view type) { return entry.first < type; });
  return every_type_ | (it != by_type_.end() && it->first == event_type ? it->second : 0);
}

// Half away from zero, in 128 bits: 2 * sum may leave int64.
int64_t rounded_quotient(int64_t sum, int64_t n) {
  const __int128 magnitude = sum < 0 ? -static_cast<__int128>(sum) : static_cast<__int128>(sum);
  const __int128 q = (magnitude * 2 + n) / (static_cast<__int128>(n) * 2);
  return static_cast<int64_t>(sum < 0 ? -q : q);
}

}  // namespace streamscore
