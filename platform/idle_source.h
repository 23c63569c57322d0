// Where the user's input idleness comes from. Some sources push (D-Bus signals,
// an XSync alarm, Wayland ext-idle-notify), some are polled (XScreenSaver,
// KDE, logind, tty atime); both report through Listener on the libuv loop.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <string_view>

#include "enforcer/expected.h"
#include "enforcer/time.h"

namespace dormant::platform {

class IdleSource {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    /// The user has been idle for `idle_for` as of now (0 means input just happened).
    virtual void OnIdleSample(enforcer::Duration idle_for) = 0;
    /// The source broke (X server gone, bus name vanished); it reports nothing more.
    virtual void OnIdleSourceFailed(const Error& why) = 0;
  };
  virtual ~IdleSource() = default;
  /// "manual", "x11", "gnome", ...
  virtual std::string_view name() const = 0;
  /// Starts reporting on `loop`. An error when the source is unavailable here.
  virtual Expected<void> Start(uv_loop_t* loop, Listener* listener) = 0;
  /// `eager` while providers are suspended: report activity as soon as possible
  /// (polled sources poll fast). Otherwise a source may be lazy.
  virtual void SetEager(bool eager) { (void)eager; }
  /// Stops reporting and closes its handles; the loop can then close.
  virtual void Stop() = 0;
};

}  // namespace dormant::platform
