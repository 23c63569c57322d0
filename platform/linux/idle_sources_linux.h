// The Linux idle sources, with the knobs tests and benchmarks turn. The
// factory (CreateIdleSource) makes them with the defaults.
//
// How sources keep the listener current: a sample means "idle for d as of
// now", and idle grows from there until the next sample. Sources that query an
// idle time (x11, kde, tty) report each query. Event-driven ones (gnome,
// wayland, logind) know the user is active while their idle watch has not
// fired, and then re-report a sample of 0 every `active_refresh`, from a local
// timer, with no traffic to the desktop.
#pragma once

#include <memory>
#include <string>

#include "enforcer/time.h"
#include "platform/idle_source.h"

namespace dormant::platform {

struct IdleTiming {
  /// Poll period of polled sources while not eager.
  enforcer::Duration lazy_poll{5000};
  /// Poll period of polled sources while eager (providers suspended).
  enforcer::Duration eager_poll{100};
  /// Event-driven sources: idle for this long counts as "the user left".
  enforcer::Duration idle_gate{2000};
  /// Event-driven sources: re-report "active" this often while active.
  enforcer::Duration active_refresh{5000};
  /// x11: while eager, wait for an XSync IDLETIME alarm (input) instead of
  /// polling every eager_poll, when the server offers the counter.
  bool use_xsync = true;
};

/// The timings CreateIdleSource uses for kde and tty (slower eager polls).
IdleTiming KdeTiming();
IdleTiming TtyTiming();

/// XScreenSaver on `display` ("" = $DISPLAY).
std::unique_ptr<IdleSource> NewX11IdleSource(std::string display = "", IdleTiming timing = {});
/// org.gnome.Mutter.IdleMonitor on the session bus.
std::unique_ptr<IdleSource> NewGnomeIdleSource(IdleTiming timing = {});
/// org.freedesktop.ScreenSaver.GetSessionIdleTime on the session bus (KDE).
std::unique_ptr<IdleSource> NewKdeIdleSource(IdleTiming timing = {});
/// logind's session IdleHint / IdleSinceHint on the system bus. The session is
/// $XDG_SESSION_ID, else the caller's (GetSessionByPID).
std::unique_ptr<IdleSource> NewLogindIdleSource(IdleTiming timing = {});
/// The access time of `tty_path` ("" = this process's controlling terminal).
std::unique_ptr<IdleSource> NewTtyIdleSource(std::string tty_path = "", IdleTiming timing = {});
/// ext-idle-notify-v1 on $WAYLAND_DISPLAY.
std::unique_ptr<IdleSource> NewWaylandIdleSource(IdleTiming timing = {});
/// This process's controlling terminal, e.g. "/dev/pts/3" ("" when none).
std::string ControllingTerminal();
/// Reports nothing; activity comes from `dormant activity`.
std::unique_ptr<IdleSource> NewManualIdleSource();

}  // namespace dormant::platform
