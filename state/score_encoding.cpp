#include "state/score_encoding.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

namespace streamscore {

void append_score(std::string& out, float score) {
  fmt::format_to(std::back_inserter(out), "{}", score);
}

bool read_score(const std::string& item_json, float* score, int32_t* model_version) {
  *score = 0;
  *model_version = 0;
  static const char kScore[] = ",\"score\":";
  static const char kVersion[] = ",\"model_version\":\"v";
  const auto at = item_json.find(kScore);
  if (at == std::string::npos) return item_json.find(kVersion) == std::string::npos;
  const char* begin = item_json.c_str() + at + std::strlen(kScore);
  char* end = nullptr;
  *score = std::strtof(begin, &end);
  if (end == begin || std::strncmp(end, kVersion, std::strlen(kVersion)) != 0) return false;
  begin = end + std::strlen(kVersion);
  const long v = std::strtol(begin, &end, 10);
  if (end == begin || *end != '"' || v <= 0 || v > INT32_MAX) return false;
  *model_version = static_cast<int32_t>(v);
  return true;
}

}  // namespace streamscore
