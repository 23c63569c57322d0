// Making idle sources by name, and choosing one for `[idle] source = "auto"`.
// The supervisor starts the first candidate that starts, and moves to the next
// when the one in use reports OnIdleSourceFailed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "enforcer/expected.h"
#include "platform/idle_source.h"

namespace dormant::platform {

/// The source names CreateIdleSource knows on this platform, "manual" last.
std::vector<std::string> IdleSourceNames();

/// A source by name: "x11", "gnome", "kde", "wayland", "logind", "tty" or
/// "manual" (reports nothing itself; activity comes from `dormant activity`).
/// An error for an unknown name. Whether the source works here shows at Start().
Expected<std::unique_ptr<IdleSource>> CreateIdleSource(const std::string& name);

/// What the auto choice looks at.
struct Environment {
  std::map<std::string, std::string> vars;     // XDG_SESSION_TYPE, WAYLAND_DISPLAY, DISPLAY, ...
  std::vector<std::string> session_bus_names;  // well-known names now on the session bus
  bool session_bus = false;                    // a session bus answered
  bool has_tty = false;                        // this process has a controlling terminal
  std::string Var(const std::string& name) const {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : it->second;
  }
  bool HasBusName(const std::string& name) const;
};

/// This process's environment; lists the session bus's names (a blocking call
/// of at most a few seconds; none when no session bus answers).
Environment CurrentEnvironment();

struct IdleCandidate {
  std::string name;    // for CreateIdleSource
  std::string reason;  // why it is on the list, for the log and `dormant status`
};

/// Candidates, best first; always ends with "manual".
struct AutoChoice {
  std::vector<IdleCandidate> candidates;
};

/// Pure: the ordered candidates for `env`.
AutoChoice ChooseIdleSource(const Environment& env);

}  // namespace dormant::platform
