// The offset between the two clocks only grows, and only by time spent
// suspended; comparing offsets instead of deltas makes the detector immune to
// how late its timer fires.
#include "platform/power_source.h"

namespace dormant::platform {

std::optional<enforcer::Duration> SleepGapDetector::Sample(int64_t boottime_ms,
                                                           int64_t monotonic_ms) {
  int64_t offset = boottime_ms - monotonic_ms;
  if (!primed_) {
    primed_ = true;
    offset_ms_ = offset;
    return std::nullopt;
  }
  int64_t gap = offset - offset_ms_;
  offset_ms_ = offset;
  if (gap >= threshold_.count()) return enforcer::Duration(gap);
  return std::nullopt;
}

}  // namespace dormant::platform
