// Time as the enforcer sees it: a monotonic point handed in by the caller.
// The enforcer never reads a clock; tests pass whatever time they like.
#pragma once

#include <chrono>
#include <string>

namespace dormant::enforcer {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

/// "1h2m3s", "10m", "250ms", "0s": the shortest exact form, used in reasons.
std::string FormatDuration(Duration d);

}  // namespace dormant::enforcer
