// Shared plumbing of every source that talks to a service over D-Bus (idle:
// gnome, kde, logind; power: logind, upower): the connection, the service's
// owner, and the rule that the service leaving the bus, restarting (it has
// forgotten our watches) or the bus going away is a failure, reported once to
// the listener from a fresh loop callback. `Interface` is IdleSource or
// PowerSource; only the listener's failure method differs between them.
#pragma once

#include <cerrno>
#include <memory>
#include <string>

#include "platform/idle_source.h"
#include "platform/linux/sdbus_uv.h"
#include "platform/linux/uv_handle.h"
#include "platform/power_source.h"

namespace dormant::platform {

inline void NotifyFailed(IdleSource::Listener* l, const Error& why) { l->OnIdleSourceFailed(why); }
inline void NotifyFailed(PowerSource::Listener* l, const Error& why) { l->OnPowerSourceFailed(why); }

template <typename Interface>
class BusSource : public Interface {
 public:
  using Listener = typename Interface::Listener;

 protected:
  /// Connects, finds `service`'s owner (an error when none) and watches it.
  Expected<void> OpenBus(uv_loop_t* loop, Listener* listener, UvBus::Kind kind, const char* service) {
    loop_ = loop;
    listener_ = listener;
    service_ = service;
    failed_ = false;
    auto bus = UvBus::Open(loop, kind);
    if (!bus) return Error{bus.error().code, Named(bus.error().message)};
    bus_ = std::move(*bus);
    auto owner = GetNameOwner(bus_->get(), service);
    if (!owner) {
      CloseBus();
      return Error{ENOENT, Named(service_ + " is not on the " +
                                 (kind == UvBus::Kind::kSession ? "session" : "system") + " bus")};
    }
    owner_ = *owner;
    auto slot = MatchNameOwnerChanged(bus_->get(), service, &BusSource::OnOwnerChanged, this);
    if (!slot) {
      CloseBus();
      return Error{slot.error().code, Named(slot.error().message)};
    }
    owner_slot_ = std::move(*slot);
    fail_report_.Init(loop, [this] {
      Listener* l = listener_;
      Error why = fail_why_;
      NotifyFailed(l, why);  // last: the listener may delete us
    });
    bus_->SetOnLost([this](const Error& e) { Fail(Error{e.code, Named(e.message)}); });
    return {};
  }

  /// Closes the connection and everything on it.
  void CloseBus() {
    owner_slot_.reset();
    fail_report_.Reset();
    bus_.reset();
  }

  /// Reports a failure once, from a fresh loop callback; OnFailed runs first.
  void Fail(Error why) {
    if (failed_) return;
    failed_ = true;
    fail_why_ = std::move(why);
    OnFailed();
    fail_report_.Fire();
  }

  /// Stops the subclass's own handles when the source fails.
  virtual void OnFailed() {}

  /// "NAME: text", NAME being the source's name.
  std::string Named(const std::string& text) const { return std::string(this->name()) + ": " + text; }

  uv_loop_t* loop_ = nullptr;
  Listener* listener_ = nullptr;
  std::unique_ptr<UvBus> bus_;
  std::string service_;
  std::string owner_;
  bool failed_ = false;

 private:
  static int OnOwnerChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<BusSource*>(userdata);
    std::string new_owner = ReadNewOwner(m);
    if (new_owner == self->owner_) return 0;
    self->Fail(Error{ENOENT, self->Named(self->service_ + (new_owner.empty()
                                                               ? " left the bus"
                                                               : " changed owner (restarted)"))});
    return 0;
  }

  BusSlot owner_slot_;
  Deferred fail_report_;
  Error fail_why_;
};

}  // namespace dormant::platform
