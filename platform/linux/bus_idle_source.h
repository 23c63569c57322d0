// The D-Bus idle sources (gnome, kde, logind): BusSource plus samples and
// asynchronous calls to the service.
#pragma once

#include <string>

#include "platform/idle_source.h"
#include "platform/linux/bus_source.h"
#include "platform/linux/sdbus_uv.h"

namespace dormant::platform {

class BusIdleSource : public BusSource<IdleSource> {
 protected:
  void Report(enforcer::Duration idle_for) {
    if (!failed_ && listener_ != nullptr) listener_->OnIdleSample(idle_for);
  }
  /// Calls `method` (no arguments) on the service, asynchronously.
  Expected<void> CallAsync(BusSlot* slot, const char* path, const char* interface,
                           const char* method, sd_bus_message_handler_t cb);
  /// Fails the source when `m` is an error reply; returns whether it was one.
  bool FailOnError(sd_bus_message* m, const char* what);
};

/// Reads one basic value of `type` from a finished method call.
template <typename T>
Expected<T> CallForValue(sd_bus* bus, const char* dest, const char* path, const char* interface,
                         const char* method, char type, const char* what) {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, dest, path, interface, method, &err, &reply, "");
  if (r < 0) {
    Error e = BusError(what, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  T value{};
  r = sd_bus_message_read_basic(reply, type, &value);
  sd_bus_message_unref(reply);
  if (r <= 0)
    return BusError(std::string(what) + ": unexpected reply", nullptr, r == 0 ? -EBADMSG : r);
  return value;
}

}  // namespace dormant::platform
