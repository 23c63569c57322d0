#include "enforcer/policy.h"

namespace dormant::enforcer {

// The defaults are the core issue's example: a new user who writes no policy
// gets codex app-server and Claude Code suspended after 10 idle minutes.
Policy DefaultPolicy() {
  Policy p;
  p.providers.push_back({"codex", "codex", {"app-server"}, std::nullopt, std::nullopt});
  p.providers.push_back({"claude", "claude", {}, std::nullopt, std::nullopt});
  return p;
}

const char* ToString(AfterWake v) {
  return v == AfterWake::kResume ? "resume" : "wait-for-input";
}

const char* ToString(OnLock v) { return v == OnLock::kSuspend ? "suspend" : "ignore"; }

const char* ToString(SandboxGate v) {
  switch (v) {
    case SandboxGate::kOn: return "on";
    case SandboxGate::kOff: return "off";
    case SandboxGate::kAuto: break;
  }
  return "auto";
}

const char* ToString(SandboxNetwork v) {
  return v == SandboxNetwork::kWhenActive ? "when-active" : "always";
}

}  // namespace dormant::enforcer
