// Where power events come from: the machine about to sleep or just woken,
// AC/battery, the session's lock screen. Sources report through Listener on
// the libuv loop. A listener must not destroy the source from inside a
// callback other than OnPowerSourceFailed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "enforcer/expected.h"
#include "enforcer/time.h"

namespace dormant::platform {

class PowerSource {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    /// The machine is about to sleep (true) or has just woken (false). After
    /// `true` the source holds a delay inhibitor (where it takes one) until
    /// ReleaseSleepLock(), so providers can be suspended first.
    virtual void OnPrepareForSleep(bool sleeping) { (void)sleeping; }
    /// The machine slept for about `slept`; timers should restart from now.
    virtual void OnWake(enforcer::Duration slept) { (void)slept; }
    /// Running on battery (true) or on external power (false). Also reported
    /// once at Start.
    virtual void OnBatteryChanged(bool on_battery) { (void)on_battery; }
    /// The session's screen was locked (true) or unlocked (false). Also
    /// reported once at Start where the state is known.
    virtual void OnLockChanged(bool locked) { (void)locked; }
    /// The source broke (bus gone, service left); it reports nothing more.
    virtual void OnPowerSourceFailed(const Error& why) { (void)why; }
  };
  virtual ~PowerSource() = default;
  /// "logind", "upower", "sysfs", "clock", "auto".
  virtual std::string_view name() const = 0;
  /// Starts reporting on `loop`. An error when the source is unavailable here.
  virtual Expected<void> Start(uv_loop_t* loop, Listener* listener) = 0;
  /// Providers are suspended: let the machine sleep (drops the delay
  /// inhibitor; it is taken again after the wake).
  virtual void ReleaseSleepLock() {}
  /// Whether a delay inhibitor is held now.
  virtual bool HoldsSleepLock() const { return false; }
  /// Stops reporting and closes its handles; the loop can then close.
  virtual void Stop() = 0;
};

/// A power source by name: "logind" (sleep, lock), "upower" (battery),
/// "sysfs" (battery from /sys/class/power_supply, or $DORMANT_SYSFS_ROOT
/// instead of /sys), "clock" (sleep seen as CLOCK_BOOTTIME running ahead of
/// CLOCK_MONOTONIC, no D-Bus at all), or "auto": all that start here, with
/// upower preferred to sysfs, and a wake reported once when two parts see it.
Expected<std::unique_ptr<PowerSource>> CreatePowerSource(const std::string& name);

/// Pure: finds sleeps from successive (boottime, monotonic) readings. Both
/// clocks advance together while the machine runs (even when this process is
/// stopped); only suspend advances CLOCK_BOOTTIME alone.
class SleepGapDetector {
 public:
  explicit SleepGapDetector(enforcer::Duration threshold) : threshold_(threshold) {}
  /// The sleep since the previous reading, when it reaches the threshold.
  std::optional<enforcer::Duration> Sample(int64_t boottime_ms, int64_t monotonic_ms);

 private:
  enforcer::Duration threshold_;
  bool primed_ = false;
  int64_t offset_ms_ = 0;  // boottime - monotonic at the previous reading
};

}  // namespace dormant::platform
