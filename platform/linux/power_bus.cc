// Mirrors BusIdleSource for power sources: a service that leaves the bus or
// restarts is a failure, reported once.
#include <cerrno>

#include "platform/linux/power_sources_linux.h"

namespace dormant::platform {

Expected<void> BusPowerSource::OpenBus(uv_loop_t* loop, Listener* listener, const char* service) {
  loop_ = loop;
  listener_ = listener;
  service_ = service;
  failed_ = false;
  auto bus = UvBus::Open(loop, UvBus::Kind::kSystem);
  if (!bus) return Error{bus.error().code, std::string(name()) + ": " + bus.error().message};
  bus_ = std::move(*bus);
  auto owner = GetNameOwner(bus_->get(), service);
  if (!owner) {
    CloseBus();
    return Error{ENOENT, std::string(name()) + ": " + service + " is not on the system bus"};
  }
  owner_ = *owner;
  auto slot = MatchNameOwnerChanged(bus_->get(), service, &BusPowerSource::OnOwnerChanged, this);
  if (!slot) {
    CloseBus();
    return Error{slot.error().code, std::string(name()) + ": " + slot.error().message};
  }
  owner_slot_ = std::move(*slot);
  fail_report_.Init(loop, [this] {
    Listener* l = listener_;
    Error why = fail_why_;
    l->OnPowerSourceFailed(why);  // last: the listener may delete us
  });
  bus_->SetOnLost([this](const Error& e) {
    Fail(Error{e.code, std::string(name()) + ": " + e.message});
  });
  return {};
}

int BusPowerSource::OnOwnerChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<BusPowerSource*>(userdata);
  std::string new_owner = ReadNewOwner(m);
  if (new_owner == self->owner_) return 0;
  self->Fail(
      Error{ENOENT, std::string(self->name()) + ": " + self->service_ +
                        (new_owner.empty() ? " left the bus" : " changed owner (restarted)")});
  return 0;
}

void BusPowerSource::Fail(Error why) {
  if (failed_) return;
  failed_ = true;
  fail_why_ = std::move(why);
  OnFailed();
  fail_report_.Fire();
}

void BusPowerSource::CloseBus() {
  owner_slot_.reset();
  fail_report_.Reset();
  bus_.reset();
}

}  // namespace dormant::platform
