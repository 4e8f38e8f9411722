// How a score is written into an item and read back: the item format is the state's,
// whichever model computed the score.
#pragma once

#include <cstdint>
#include <string>

namespace streamscore {

// The shortest decimal that reads back as the same float32 (what XGBoost computed):
// no digits invented by a double conversion, none lost by rounding to a fixed count.
void append_score(std::string& out, float score);

// Reads back `"score":S,"model_version":"vN"` from an item written with append_score
// (a restart keeps the scores). An item without them gives model_version 0. False when
// they are present but malformed.
bool read_score(const std::string& item_json, float* score, int32_t* model_version);

}  // namespace streamscore
