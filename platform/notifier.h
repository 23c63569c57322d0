// Desktop notifications: telling the user, in a bubble, what dormant warns of
// or did to a provider. One small interface, one backend per OS
// (linux/notifier_dbus.cc: org.freedesktop.Notifications over sd-bus;
// macos/notifier_macos.cc: osascript).
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "enforcer/expected.h"

namespace dormant::platform {

enum class Urgency { kLow, kNormal, kCritical };

/// Shows notifications without ever waiting: a call only queues the request on
/// the loop, and what comes of it (the daemon's reply or error) is handled
/// there later. When notifications cannot be shown (no session bus, no
/// notification daemon) the backend says so once, at info level, and is quiet
/// afterwards; it never reports a notification it could not hand over.
class Notifier {
 public:
  virtual ~Notifier() = default;

  /// Queues a notification. Notifications about the same `subject` ("idle",
  /// "budget 'daily'") replace the previous bubble of that subject where the
  /// desktop can, instead of piling up. An error means it was not queued
  /// (already reported once; callers need not log it again).
  virtual Expected<void> Notify(const std::string& subject, const std::string& summary,
                                const std::string& body, Urgency urgency) = 0;
  /// Why notifications cannot be shown, as last found; empty while they can
  /// (or before the first attempt has been answered).
  virtual const std::string& unavailable() const = 0;
  /// Releases every loop handle (the loop can then end); Notify afterwards fails.
  virtual void Close() = 0;
  virtual const char* name() const = 0;
};

/// This OS's desktop notifier, driven by `loop`. Creating it connects nothing
/// yet on Linux beyond the session bus, and asks the notification daemon, in
/// the background, who it is, so its absence is reported at start.
std::unique_ptr<Notifier> CreateNotifier(uv_loop_t* loop);

}  // namespace dormant::platform
