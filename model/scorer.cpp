#include "model/scorer.hpp"

#include <fmt/format.h>

namespace streamscore {

void append_score(std::string& out, float score) { fmt::format_to(std::back_inserter(out), "{}", score); }

}  // namespace streamscore
