// The Linux power sources, with the knobs tests turn. CreatePowerSource makes
// them with the defaults.
#pragma once

#include <memory>
#include <string>

#include "enforcer/time.h"
#include "platform/linux/sdbus_uv.h"
#include "platform/linux/bus_source.h"
#include "platform/power_source.h"

namespace dormant::platform {

/// logind on the system bus: PrepareForSleep with a delay inhibitor lock, and
/// the session's Lock/Unlock signals and LockedHint.
std::unique_ptr<PowerSource> NewLogindPowerSource();
/// UPower's OnBattery on the system bus.
std::unique_ptr<PowerSource> NewUpowerPowerSource();
/// /sys/class/power_supply under `sysfs_root` ("" = $DORMANT_SYSFS_ROOT, else
/// /sys), read every `poll`: on battery when some supply has an `online` file
/// and none reads 1.
std::unique_ptr<PowerSource> NewSysfsPowerSource(
    std::string sysfs_root = "", enforcer::Duration poll = enforcer::Duration(10000));
/// Reads CLOCK_BOOTTIME and CLOCK_MONOTONIC every `every`; a gap of at least
/// `threshold` is a wake (OnPrepareForSleep(false), then OnWake).
std::unique_ptr<PowerSource> NewClockPowerSource(
    enforcer::Duration every = enforcer::Duration(10000),
    enforcer::Duration threshold = enforcer::Duration(2000));

/// The D-Bus power sources (logind, upower) live on the system bus.
class BusPowerSource : public BusSource<PowerSource> {
 protected:
  Expected<void> OpenBus(uv_loop_t* loop, Listener* listener, const char* service) {
    return BusSource::OpenBus(loop, listener, UvBus::Kind::kSystem, service);
  }
};

}  // namespace dormant::platform
