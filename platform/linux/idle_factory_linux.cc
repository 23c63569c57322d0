// The auto choice prefers sources that push (no polling, instant resume) and
// that see all of the user's input: under Wayland the X server (XWayland)
// sees only input sent to X clients, so x11 is never offered there. A
// terminal counts only when there is no display at all: on a desktop, typing
// into other windows leaves the terminal idle.
#include <systemd/sd-bus.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "platform/idle_factory.h"
#include "platform/linux/idle_sources_linux.h"

namespace dormant::platform {

std::vector<std::string> IdleSourceNames() {
  return {"gnome", "wayland", "x11", "kde", "logind", "tty", "manual"};
}

// Eager polling periods chosen to stay under 0.05 % of a core (measured by
// bench_idle_sources): a D-Bus round trip costs more than a stat().
IdleTiming KdeTiming() {
  IdleTiming t;
  t.eager_poll = enforcer::Duration(500);
  return t;
}

IdleTiming TtyTiming() {
  IdleTiming t;
  t.eager_poll = enforcer::Duration(250);
  return t;
}

Expected<std::unique_ptr<IdleSource>> CreateIdleSource(const std::string& name) {
  if (name == "x11") return NewX11IdleSource();
  if (name == "gnome") return NewGnomeIdleSource();
  if (name == "kde") return NewKdeIdleSource(KdeTiming());
  if (name == "wayland") return NewWaylandIdleSource();
  if (name == "logind") return NewLogindIdleSource();
  if (name == "tty") return NewTtyIdleSource("", TtyTiming());
  if (name == "manual") return NewManualIdleSource();
  return Error{EINVAL, "unknown idle source \"" + name +
                           "\" (expected x11, gnome, kde, wayland, logind, tty, manual or auto)"};
}

bool Environment::HasBusName(const std::string& name) const {
  return std::find(session_bus_names.begin(), session_bus_names.end(), name) !=
         session_bus_names.end();
}

static std::vector<std::string> ListSessionBusNames(bool* answered) {
  std::vector<std::string> names;
  *answered = false;
  sd_bus* bus = nullptr;
  if (sd_bus_open_user(&bus) < 0) return names;
  sd_bus_set_method_call_timeout(bus, 2 * 1000 * 1000);
  sd_bus_message* reply = nullptr;
  if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "ListNames", nullptr, &reply, "") >= 0) {
    *answered = true;
    char** strv = nullptr;
    if (sd_bus_message_read_strv(reply, &strv) >= 0 && strv != nullptr) {
      for (char** s = strv; *s != nullptr; ++s) {
        if (**s != ':') names.emplace_back(*s);  // unique names say nothing
        free(*s);
      }
      free(strv);
    }
    sd_bus_message_unref(reply);
  }
  sd_bus_flush_close_unref(bus);
  return names;
}

Environment CurrentEnvironment() {
  Environment env;
  for (const char* var : {"XDG_SESSION_TYPE", "WAYLAND_DISPLAY", "DISPLAY", "XDG_CURRENT_DESKTOP",
                          "XDG_SESSION_ID"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0') env.vars[var] = value;
  }
  env.session_bus_names = ListSessionBusNames(&env.session_bus);
  env.has_tty = !ControllingTerminal().empty();
  return env;
}

AutoChoice ChooseIdleSource(const Environment& env) {
  AutoChoice choice;
  auto add = [&](const std::string& name, std::string reason) {
    for (const auto& c : choice.candidates) {
      if (c.name == name) return;
    }
    choice.candidates.push_back({name, std::move(reason)});
  };
  std::string type = env.Var("XDG_SESSION_TYPE");
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::string wayland_display = env.Var("WAYLAND_DISPLAY");
  std::string display = env.Var("DISPLAY");
  bool wayland = type == "wayland" || (!wayland_display.empty() && type != "x11");
  bool x11 = !wayland && (!display.empty() || type == "x11");
  bool has_display = wayland || x11;

  if (env.HasBusName("org.gnome.Mutter.IdleMonitor")) {
    add("gnome", "org.gnome.Mutter.IdleMonitor is on the session bus (event-driven)");
  }
  if (wayland && !wayland_display.empty()) {
    add("wayland", "Wayland session (WAYLAND_DISPLAY=" + wayland_display +
                       "): ext-idle-notify-v1 where the compositor offers it (event-driven)");
  }
  if (x11) {
    add("x11", display.empty() ? "XDG_SESSION_TYPE=x11: XScreenSaver (polled)"
                               : "DISPLAY=" + display + ": XScreenSaver (polled)");
  }
  if (env.HasBusName("org.freedesktop.ScreenSaver")) {
    add("kde", "org.freedesktop.ScreenSaver is on the session bus: GetSessionIdleTime (polled)");
  }
  if (!has_display && env.has_tty) {
    add("tty", "no display: the controlling terminal's input (polled atime)");
  }
  add("logind", has_display
                    ? "logind session IdleHint (coarse: set after the desktop's own idle delay)"
                    : "logind session IdleHint");
  add("manual", "always available: activity only from `dormant activity`");
  return choice;
}

}  // namespace dormant::platform
