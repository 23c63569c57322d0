// Shared plumbing of the idle sources that talk to a desktop service over
// D-Bus (gnome, kde, logind): the connection, the service's owner, and the
// rule that a service leaving the bus, or the bus going away, is a failure
// reported once through Listener::OnIdleSourceFailed.
#pragma once

#include <string>

#include "platform/idle_source.h"
#include "platform/linux/sdbus_uv.h"

namespace dormant::platform {

class BusIdleSource : public IdleSource {
 protected:
  /// Connects, finds `service`'s owner (an error when none) and watches it.
  Expected<void> OpenBus(uv_loop_t* loop, Listener* listener, UvBus::Kind kind,
                         const char* service);
  /// Closes the connection and everything on it.
  void CloseBus();
  /// Reports a failure once, from a fresh loop callback; OnFailed runs first.
  void Fail(Error why);
  /// Stops the subclass's own handles when the source fails.
  virtual void OnFailed() {}
  void Report(enforcer::Duration idle_for) {
    if (!failed_ && listener_ != nullptr) listener_->OnIdleSample(idle_for);
  }
  /// Calls `method` (no arguments) on the service, asynchronously.
  Expected<void> CallAsync(BusSlot* slot, const char* path, const char* interface,
                           const char* method, sd_bus_message_handler_t cb);
  /// Fails the source when `m` is an error reply; returns whether it was one.
  bool FailOnError(sd_bus_message* m, const char* what);

  uv_loop_t* loop_ = nullptr;
  Listener* listener_ = nullptr;
  std::unique_ptr<UvBus> bus_;
  std::string service_;
  std::string owner_;
  bool failed_ = false;

 private:
  static int OnOwnerChanged(sd_bus_message* m, void* self, sd_bus_error*);

  BusSlot owner_slot_;
  Deferred fail_report_;
  Error fail_why_;
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
