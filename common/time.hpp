// Time units and the window grid every layer counts in (nanoseconds since the epoch).
#pragma once

#include <cstdint>

namespace streamscore {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kWindowSeconds = 300;  // 5-minute tumbling windows
constexpr int64_t kWindowNanos = kWindowSeconds * kNanosPerSecond;
constexpr int64_t kDayNanos = 86'400 * kNanosPerSecond;
constexpr int64_t kHorizonWindows = 30 * 24 * 3600 / kWindowSeconds;  // 30 days = 8640 windows
constexpr int64_t kHorizonNanos = kHorizonWindows * kWindowNanos;

// floor(a / b) for b > 0, also for negative a (instants before 1970).
constexpr int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace streamscore
