// The Linux desktop notifier: org.freedesktop.Notifications on the session bus
// (Desktop Notifications Specification 1.2), called asynchronously through
// sd-bus driven by the libuv loop, so a slow or absent daemon never stalls it.
#pragma once

#include <uv.h>

#include <list>
#include <map>
#include <memory>
#include <string>

#include "platform/linux/sdbus_uv.h"
#include "platform/notifier.h"

namespace dormant::platform {

class DbusNotifier : public Notifier {
 public:
  /// Connects to the session bus (DBUS_SESSION_BUS_ADDRESS or the default)
  /// and asks the daemon for its capabilities in the background.
  explicit DbusNotifier(uv_loop_t* loop);
  ~DbusNotifier() override { Close(); }

  Expected<void> Notify(const std::string& subject, const std::string& summary,
                        const std::string& body, Urgency urgency) override;
  const std::string& unavailable() const override { return unavailable_; }
  void Close() override;
  const char* name() const override { return "org.freedesktop.Notifications"; }

  /// Notifications the daemon accepted (replied to with an id).
  uint64_t delivered() const { return delivered_; }
  /// Calls sent whose reply (or error) has not come yet.
  size_t pending() const { return pending_.size(); }

 private:
  // One call in flight: its slot (releasing it cancels the call) and what
  // the reply is for.
  struct Call {
    DbusNotifier* self;
    std::string subject;  // "" for the capabilities probe
    BusSlot slot;
  };

  Expected<void> Connect();
  void Disconnect();
  Expected<void> Send(const std::string& subject, const std::string& summary,
                      const std::string& body, Urgency urgency);
  static int OnReply(sd_bus_message* m, void* userdata, sd_bus_error*);
  void Finish(Call* call, sd_bus_message* m);
  void Unavailable(const std::string& why);
  void Available();

  uv_loop_t* loop_;
  bool closed_ = false;
  std::unique_ptr<UvBus> bus_;
  std::list<Call> pending_;
  std::map<std::string, uint32_t> ids_;  // subject -> the daemon's id of its last bubble
  bool markup_ = true;                   // the daemon reads the body as markup (escape it)
  std::string unavailable_;
  bool reported_ = false;  // the unavailability was logged; stay quiet until it ends
  uint64_t delivered_ = 0;
};

/// The body as Desktop Notifications markup: '&', '<' and '>' as entities.
std::string EscapeNotificationMarkup(const std::string& text);

}  // namespace dormant::platform
