// The policy model: what the TOML files say, after validation. Loading and
// validating files lives in launcher/policy_loader.*; this is only the model.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "enforcer/budget.h"
#include "enforcer/time.h"

namespace dormant::enforcer {

/// Recognises a provider process: its program name equals `exe` and its
/// arguments contain every string in `args`. See matcher.h for "program name".
struct ProviderMatcher {
  std::string name;               // shown in status and logs, e.g. "codex"
  std::string exe;                // program base name, e.g. "codex"
  std::vector<std::string> args;  // each must appear among argv[1..]
  std::optional<Duration> suspend_after;  // per-provider override of [idle]
  std::optional<Duration> kill_after;     // per-provider override of [idle]
};

struct IdlePolicy {
  std::string source = "manual";  // manual | auto | x11 | gnome | kde | wayland | logind | tty
  Duration suspend_after = std::chrono::minutes(10);
  Duration kill_after = std::chrono::hours(2);
  Duration kill_grace = std::chrono::seconds(5);
  std::optional<Duration> warn_after;  // notify before suspending
  /// With [sandbox] network = "when-active": refuse providers' new IP
  /// connections once the user has been idle this long.
  Duration network_after = std::chrono::minutes(2);
};

/// [power] after_wake: what providers do after the machine wakes from sleep.
enum class AfterWake { kWaitForInput, kResume };
/// [power] on_lock: what a session lock does.
enum class OnLock { kIgnore, kSuspend };

/// Timers used instead of [idle]'s while on battery; unset means "as on AC".
struct BatteryPolicy {
  std::optional<Duration> suspend_after;
  std::optional<Duration> kill_after;
};

struct PowerPolicy {
  AfterWake after_wake = AfterWake::kWaitForInput;
  OnLock on_lock = OnLock::kIgnore;
  BatteryPolicy battery;
};

/// [sandbox] gate: the seccomp exec/connect gate.
enum class SandboxGate { kAuto, kOn, kOff };
/// [sandbox] network: when providers may open new IP connections.
enum class SandboxNetwork { kAlways, kWhenActive };

struct SandboxPolicy {
  SandboxGate gate = SandboxGate::kAuto;
  SandboxNetwork network = SandboxNetwork::kAlways;
  /// Execs refused by the gate; only name, exe and args are used.
  std::vector<ProviderMatcher> deny_exec;
};

/// [suspend] freezer: how a provider's subtree is stopped. kSignal is SIGSTOP
/// and SIGCONT; kCgroup the cgroup v2 freezer in dormant's own (delegated)
/// cgroup, refusing to start without it; kAuto the cgroup one where it works.
enum class SuspendFreezer { kSignal, kAuto, kCgroup };

struct SuspendPolicy {
  SuspendFreezer freezer = SuspendFreezer::kSignal;
};

/// [notify]: desktop notifications of warnings and of budget actions.
struct NotifyPolicy {
  bool desktop = true;
};

struct Policy {
  IdlePolicy idle;
  std::vector<ProviderMatcher> providers;
  PowerPolicy power;
  SandboxPolicy sandbox;
  SuspendPolicy suspend;
  /// [[budget]], [budget_idle], [plan], [[price]] and [prices]: spending
  /// limits and the price table (shipped prices unless a file changes them).
  BudgetPolicy budget;
  NotifyPolicy notify;

  Duration SuspendAfter(const ProviderMatcher& m) const {
    return m.suspend_after.value_or(idle.suspend_after);
  }
  Duration KillAfter(const ProviderMatcher& m) const { return m.kill_after.value_or(idle.kill_after); }
};

/// The built-in defaults: manual idle, 10m/2h/5s, codex app-server and claude.
Policy DefaultPolicy();

/// The policy-file spelling of each enum value ("wait-for-input", "suspend", ...).
const char* ToString(AfterWake v);
const char* ToString(OnLock v);
const char* ToString(SandboxGate v);
const char* ToString(SandboxNetwork v);

}  // namespace dormant::enforcer
