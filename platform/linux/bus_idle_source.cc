// A service that restarts under the same name has forgotten our watches, so
// any owner change counts as a failure; the supervisor starts a fresh source.
#include "platform/linux/bus_idle_source.h"

#include <cerrno>

namespace dormant::platform {

Expected<void> BusIdleSource::OpenBus(uv_loop_t* loop, Listener* listener, UvBus::Kind kind,
                                      const char* service) {
  loop_ = loop;
  listener_ = listener;
  service_ = service;
  failed_ = false;
  auto bus = UvBus::Open(loop, kind);
  if (!bus) return Error{bus.error().code, std::string(name()) + ": " + bus.error().message};
  bus_ = std::move(*bus);
  auto owner = GetNameOwner(bus_->get(), service);
  if (!owner) {
    CloseBus();
    return Error{ENOENT, std::string(name()) + ": " + service + " is not on the " +
                             (kind == UvBus::Kind::kSession ? "session" : "system") + " bus"};
  }
  owner_ = *owner;
  auto slot = MatchNameOwnerChanged(bus_->get(), service, &BusIdleSource::OnOwnerChanged, this);
  if (!slot) {
    CloseBus();
    return Error{slot.error().code, std::string(name()) + ": " + slot.error().message};
  }
  owner_slot_ = std::move(*slot);
  fail_report_.Init(loop, [this] {
    Listener* l = listener_;
    Error why = fail_why_;
    l->OnIdleSourceFailed(why);  // last: the listener may delete us
  });
  bus_->SetOnLost([this](const Error& e) {
    Fail(Error{e.code, std::string(name()) + ": " + e.message});
  });
  return {};
}

int BusIdleSource::OnOwnerChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<BusIdleSource*>(userdata);
  std::string new_owner = ReadNewOwner(m);
  if (new_owner == self->owner_) return 0;
  self->Fail(
      Error{ENOENT, std::string(self->name()) + ": " + self->service_ +
                        (new_owner.empty() ? " left the bus" : " changed owner (restarted)")});
  return 0;
}

void BusIdleSource::Fail(Error why) {
  if (failed_) return;
  failed_ = true;
  fail_why_ = std::move(why);
  OnFailed();
  fail_report_.Fire();
}

void BusIdleSource::CloseBus() {
  owner_slot_.reset();
  fail_report_.Reset();
  bus_.reset();
}

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
