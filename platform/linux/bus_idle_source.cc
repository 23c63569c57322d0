#include "platform/linux/bus_idle_source.h"

#include <cerrno>

namespace dormant::platform {

Expected<void> BusIdleSource::CallAsync(BusSlot* slot, const char* path, const char* interface,
                                        const char* method, sd_bus_message_handler_t cb) {
  sd_bus_slot* s = nullptr;
  int r = sd_bus_call_method_async(bus_->get(), &s, service_.c_str(), path, interface, method, cb,
                                   this, "");
  if (r < 0) return BusError(std::string(name()) + ": " + method, nullptr, r);
  slot->reset(s);
  return {};
}

bool BusIdleSource::FailOnError(sd_bus_message* m, const char* what) {
  if (!sd_bus_message_is_method_error(m, nullptr)) return false;
  Fail(BusError(std::string(name()) + ": " + what, sd_bus_message_get_error(m),
                -sd_bus_message_get_errno(m)));
  return true;
}

}  // namespace dormant::platform
