// The policy model: what the TOML files say, after validation. Loading and
// validating files lives in launcher/policy_loader.*; this is only the model.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
  std::string source = "manual";
  Duration suspend_after = std::chrono::minutes(10);
  Duration kill_after = std::chrono::hours(2);
  Duration kill_grace = std::chrono::seconds(5);
  std::optional<Duration> warn_after;  // notify before suspending
};

struct Policy {
  IdlePolicy idle;
  std::vector<ProviderMatcher> providers;

  Duration SuspendAfter(const ProviderMatcher& m) const {
    return m.suspend_after.value_or(idle.suspend_after);
  }
  Duration KillAfter(const ProviderMatcher& m) const { return m.kill_after.value_or(idle.kill_after); }
};

/// The built-in defaults: manual idle, 10m/2h/5s, codex app-server and claude.
Policy DefaultPolicy();

}  // namespace dormant::enforcer
