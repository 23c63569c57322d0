// sd-bus driven by a libuv loop. The bus fd is watched with uv_poll, sd-bus's
// own deadlines (pending method-call replies) with a uv_timer, and a
// uv_prepare re-arms both before the loop sleeps, so a message queued from any
// callback gets written. Bus addresses follow sd-bus: DBUS_SESSION_BUS_ADDRESS
// and DBUS_SYSTEM_BUS_ADDRESS override the defaults (tests point them at a
// private dbus-daemon).
#pragma once

#include <systemd/sd-bus.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "enforcer/expected.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {

struct SlotUnref {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
/// A match or pending call; releasing it cancels it.
using BusSlot = std::unique_ptr<sd_bus_slot, SlotUnref>;

class UvBus {
 public:
  enum class Kind { kSession, kSystem };

  /// Connects to the session or system bus and starts driving it on `loop`.
  static Expected<std::unique_ptr<UvBus>> Open(uv_loop_t* loop, Kind kind);
  ~UvBus();
  UvBus(const UvBus&) = delete;
  UvBus& operator=(const UvBus&) = delete;

  sd_bus* get() const { return bus_; }
  const char* what() const { return kind_ == Kind::kSession ? "session bus" : "system bus"; }
  /// Called once, from a fresh loop callback, when the connection is lost.
  /// The callee may destroy this UvBus.
  void SetOnLost(std::function<void(const Error&)> fn) { on_lost_ = std::move(fn); }
  /// Processes what is queued and re-arms the poll and timer.
  void Process();

 private:
  UvBus(uv_loop_t* loop, sd_bus* bus, Kind kind) : loop_(loop), bus_(bus), kind_(kind) {}
  Expected<void> Attach();
  void Arm();
  void Lost(Error why);

  uv_loop_t* loop_;
  sd_bus* bus_;
  Kind kind_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_prepare_t> prepare_;
  Deferred lost_report_;
  Error lost_why_;
  bool lost_ = false;
  std::function<void(const Error&)> on_lost_;
};

/// "what: message (errno text)" from an sd-bus error and return code.
Error BusError(const std::string& what, const sd_bus_error* e, int r);
/// The unique name that owns `name` now, or an error (blocking call).
Expected<std::string> GetNameOwner(sd_bus* bus, const char* name);
/// Subscribes to NameOwnerChanged for `name` (blocking AddMatch); the handler
/// reads the signal with ReadNameOwnerChanged.
Expected<BusSlot> MatchNameOwnerChanged(sd_bus* bus, const char* name, sd_bus_message_handler_t cb,
                                        void* userdata);
/// The new owner carried by a NameOwnerChanged signal ("" when the name left).
std::string ReadNewOwner(sd_bus_message* m);
/// Subscribes to PropertiesChanged on `path` (any interface).
Expected<BusSlot> MatchPropertiesChanged(sd_bus* bus, const char* path, sd_bus_message_handler_t cb,
                                         void* userdata);
/// Subscribes to signal `member` of `interface` on `path` from any sender;
/// handlers check the sender themselves (see SenderIs).
Expected<BusSlot> MatchSignal(sd_bus* bus, const char* path, const char* interface,
                              const char* member, sd_bus_message_handler_t cb, void* userdata);
/// True when `m` was sent by unique name `owner`.
bool SenderIs(sd_bus_message* m, const std::string& owner);

}  // namespace dormant::platform

namespace dormant::platform {
/// logind: the object path of this process's session: $XDG_SESSION_ID's when
/// set (GetSession), else the caller's (GetSessionByPID). Blocking.
Expected<std::string> LogindSessionPath(sd_bus* bus);
}  // namespace dormant::platform
