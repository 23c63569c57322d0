#include "enforcer/enforcer.h"

#include <algorithm>

namespace dormant::enforcer {

const char* ToString(Action::Kind kind) {
  switch (kind) {
    case Action::Kind::kSuspend: return "suspend";
    case Action::Kind::kResume: return "resume";
    case Action::Kind::kTerminate: return "terminate";
    case Action::Kind::kKill: return "kill";
    case Action::Kind::kWarn: return "warn";
  }
  return "?";
}

const char* ToString(ProviderState state) {
  switch (state) {
    case ProviderState::kRunning: return "running";
    case ProviderState::kSuspended: return "suspended";
    case ProviderState::kPaused: return "paused";
    case ProviderState::kTerminating: return "terminating";
    case ProviderState::kKilled: return "killed";
    case ProviderState::kLockedOut: return "locked-out";
  }
  return "?";
}

Enforcer::Enforcer(Policy policy, TimePoint start) : policy_(std::move(policy)), last_activity_(start) {}

Duration Enforcer::IdleFor(TimePoint now) const {
  return std::max(Duration::zero(), now - last_activity_);
}

// On battery, [power.battery] timers apply where they are stricter.
Duration Enforcer::SuspendAfter(const ProviderMatcher& m) const {
  Duration d = policy_.SuspendAfter(m);
  const auto& b = policy_.power.battery.suspend_after;
  return on_battery_ && b ? std::min(d, *b) : d;
}

Duration Enforcer::KillAfter(const ProviderMatcher& m) const {
  Duration d = policy_.KillAfter(m);
  const auto& b = policy_.power.battery.kill_after;
  return on_battery_ && b ? std::min(d, *b) : d;
}

std::optional<ProviderState> Enforcer::StateOf(int pid) const {
  auto it = providers_.find(pid);
  if (it == providers_.end()) return std::nullopt;
  return it->second.state;
}

bool Enforcer::NetworkAllowed(TimePoint now) const {
  return !paused_ && !hold_ && IdleFor(now) < policy_.idle.network_after;
}

const ProviderMatcher& Enforcer::MatcherOf(const Provider& p) const {
  return policy_.providers.at(p.matcher);
}

bool Enforcer::suspended_mode() const {
  return paused_ || hold_ || std::any_of(providers_.begin(), providers_.end(), [](const auto& kv) {
           return kv.second.state == ProviderState::kSuspended;
         });
}

Action Enforcer::Act(Action::Kind kind, int pid, const Provider& p, std::string reason) const {
  return Action{kind, pid, MatcherOf(p).name, std::move(reason)};
}

// When the next thing happens to `p` on its own, and what it is. Suspension and
// killing both count from the last activity: "kill_after" is idle time, so a
// provider that appears late in an idle period is not given a fresh allowance.
std::optional<std::pair<TimePoint, std::string>> Enforcer::NextFor(const Provider& p) const {
  const ProviderMatcher& m = MatcherOf(p);
  switch (p.state) {
    case ProviderState::kRunning:
      if (paused_ || hold_) return std::nullopt;
      return std::make_pair(last_activity_ + SuspendAfter(m), std::string("suspend"));
    case ProviderState::kSuspended:
      return std::make_pair(last_activity_ + KillAfter(m), std::string("terminate"));
    case ProviderState::kTerminating:
      return std::make_pair(p.since + policy_.idle.kill_grace, std::string("kill"));
    case ProviderState::kPaused:
    case ProviderState::kKilled:
    case ProviderState::kLockedOut:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<TimePoint> Enforcer::NextDeadline() const {
  std::optional<TimePoint> next;
  for (const auto& [pid, p] : providers_) {
    auto n = NextFor(p);
    if (n && (!next || n->first < *next)) next = n->first;
  }
  if (policy_.idle.warn_after && !warned_ && !paused_) {
    TimePoint warn_at = last_activity_ + *policy_.idle.warn_after;
    bool any_running = std::any_of(providers_.begin(), providers_.end(), [](const auto& kv) {
      return kv.second.state == ProviderState::kRunning;
    });
    if (any_running && (!next || warn_at < *next)) next = warn_at;
  }
  return next;
}

std::vector<Action> Enforcer::Evaluate(TimePoint now) {
  std::vector<Action> out;
  const Duration idle = IdleFor(now);
  const std::string idle_text = "idle for " + FormatDuration(idle);
  bool any_running = false;
  for (auto& [pid, p] : providers_) {
    const ProviderMatcher& m = MatcherOf(p);
    switch (p.state) {
      case ProviderState::kRunning:
        if (paused_) {
          p = {p.matcher, ProviderState::kPaused, now, "paused by `dormant pause`"};
          out.push_back(Act(Action::Kind::kSuspend, pid, p, p.reason));
        } else if (hold_) {
          p = {p.matcher, ProviderState::kSuspended, now, hold_reason_};
          out.push_back(Act(Action::Kind::kSuspend, pid, p, p.reason));
        } else if (idle >= SuspendAfter(m)) {
          p = {p.matcher, ProviderState::kSuspended, now,
               idle_text + " >= suspend_after " + FormatDuration(SuspendAfter(m)) +
                   (on_battery_ && SuspendAfter(m) != policy_.SuspendAfter(m) ? " (on battery)" : "")};
          out.push_back(Act(Action::Kind::kSuspend, pid, p, p.reason));
        } else {
          any_running = true;
        }
        break;
      case ProviderState::kSuspended:
        if (idle >= KillAfter(m)) {
          p = {p.matcher, ProviderState::kTerminating, now,
               idle_text + " >= kill_after " + FormatDuration(KillAfter(m)) +
                   (on_battery_ && KillAfter(m) != policy_.KillAfter(m) ? " (on battery)" : "")};
          out.push_back(Act(Action::Kind::kTerminate, pid, p, p.reason));
        }
        break;
      case ProviderState::kTerminating:
        if (now - p.since >= policy_.idle.kill_grace) {
          p = {p.matcher, ProviderState::kKilled, now,
               "still there " + FormatDuration(now - p.since) + " after SIGTERM (kill_grace " +
                   FormatDuration(policy_.idle.kill_grace) + ")"};
          out.push_back(Act(Action::Kind::kKill, pid, p, p.reason));
        }
        break;
      case ProviderState::kPaused:
      case ProviderState::kKilled:
      case ProviderState::kLockedOut:
        break;
    }
  }
  const auto& warn_after = policy_.idle.warn_after;
  if (warn_after && any_running && !warned_ && !paused_ && !hold_ && idle >= *warn_after) {
    warned_ = true;
    out.push_back(Action{Action::Kind::kWarn, 0, "",
                         idle_text + ": providers will be suspended at suspend_after " +
                             FormatDuration(policy_.idle.suspend_after)});
  }
  return out;
}

std::vector<Action> Enforcer::ResumeAll(TimePoint now, bool include_paused, const std::string& why) {
  std::vector<Action> out;
  for (auto& [pid, p] : providers_) {
    bool resume = p.state == ProviderState::kSuspended ||
                  (include_paused && p.state == ProviderState::kPaused);
    if (!resume) continue;
    p = {p.matcher, ProviderState::kRunning, now, why};
    out.push_back(Act(Action::Kind::kResume, pid, p, why));
  }
  return out;
}

// The user is here (input at `input_at`): the idle period ends, holds lift,
// and idle-suspended providers run again.
std::vector<Action> Enforcer::Activity(TimePoint input_at, TimePoint now, const std::string& why) {
  last_activity_ = std::max(last_activity_, input_at);
  warned_ = false;
  hold_ = false;
  return ResumeAll(now, false, why);
}

std::vector<Action> Enforcer::OnEvent(const Event& e, TimePoint now) {
  std::vector<Action> out;
  switch (e.kind) {
    case Event::Kind::kTick:
      break;
    case Event::Kind::kIdleSample: {
      // A sample that moves the last input forward means the user was here.
      TimePoint input_at = now - std::max(Duration::zero(), e.idle_for);
      if (hold_ && input_at <= hold_since_) {
        last_activity_ = std::max(last_activity_, input_at);  // from before the hold
      } else if (input_at > last_activity_) {
        out = Activity(input_at, now, "user active (idle source)");
      }
      break;
    }
    case Event::Kind::kActivity:
      out = Activity(now, now, "user active (`dormant activity`)");
      break;
    case Event::Kind::kPause:
      if (!app_exited_) {
        paused_ = true;
        for (auto& [pid, p] : providers_) {
          if (p.state == ProviderState::kSuspended) {
            p = {p.matcher, ProviderState::kPaused, now, "paused by `dormant pause`"};
          }
        }
      }
      break;
    case Event::Kind::kResume:
      paused_ = false;
      out = Activity(now, now, "resumed by `dormant resume`");
      for (auto& a : ResumeAll(now, true, "resumed by `dormant resume`")) out.push_back(a);
      break;
    case Event::Kind::kSleep:
      hold_ = true;
      hold_since_ = now;
      hold_reason_ = "the machine is going to sleep";
      break;
    case Event::Kind::kWake:
      // Sleep is not idle time: every timer restarts from the wake.
      last_activity_ = std::max(last_activity_, now);
      warned_ = false;
      if (policy_.power.after_wake == AfterWake::kResume) {
        hold_ = false;
        out = ResumeAll(now, false, "woke from sleep (after_wake = resume)");
      } else {
        hold_ = true;
        hold_since_ = now;
        hold_reason_ = "woke from sleep; waiting for input (after_wake = wait-for-input)";
      }
      break;
    case Event::Kind::kBudgetExhausted:
      if (e.flag) {
        lockout_ = e.text;
        lockout_kill_ = e.kill;
      }
      for (auto& [pid, p] : providers_) {
        if (p.state == ProviderState::kTerminating || p.state == ProviderState::kKilled) continue;
        if (e.kill) {
          p = {p.matcher, ProviderState::kTerminating, now, e.text};
          out.push_back(Act(Action::Kind::kTerminate, pid, p, e.text));
        } else {
          bool running = p.state == ProviderState::kRunning;
          p = {p.matcher, ProviderState::kLockedOut, now, e.text};
          if (running) out.push_back(Act(Action::Kind::kSuspend, pid, p, e.text));
        }
      }
      break;
    case Event::Kind::kBudgetReset:
      lockout_.clear();
      for (auto& [pid, p] : providers_) {
        if (p.state != ProviderState::kLockedOut) continue;
        // Already stopped: a provider the user is not here for stays stopped,
        // now for the ordinary reason, with no resume-then-stop flicker.
        if (paused_) {
          p = {p.matcher, ProviderState::kPaused, now, e.text + "; still paused"};
        } else if (hold_ || IdleFor(now) >= SuspendAfter(MatcherOf(p))) {
          p = {p.matcher, ProviderState::kSuspended, now, e.text + "; the user is still away"};
        } else {
          p = {p.matcher, ProviderState::kRunning, now, e.text};
          out.push_back(Act(Action::Kind::kResume, pid, p, e.text));
        }
      }
      break;
    case Event::Kind::kBudgetWarn:
      out.push_back(Action{Action::Kind::kWarn, 0, "", e.text});
      break;
    case Event::Kind::kIdleSpendExceeded:
      hold_ = true;
      hold_since_ = now;
      hold_reason_ = e.text;
      break;
    case Event::Kind::kBattery:
      on_battery_ = e.flag;
      break;
    case Event::Kind::kLock:
      locked_ = e.flag;
      if (policy_.power.on_lock == OnLock::kSuspend) {
        if (e.flag) {
          hold_ = true;
          hold_since_ = now;
          hold_reason_ = "the session locked (on_lock = suspend)";
        } else {
          out = Activity(now, now, "the session unlocked");
        }
      }
      break;
    case Event::Kind::kProviderStarted: {
      if (e.matcher >= policy_.providers.size() || providers_.count(e.pid)) break;
      Provider& p = providers_[e.pid];
      p = {e.matcher, ProviderState::kRunning, now, "started"};
      if (app_exited_) {
        p = {e.matcher, ProviderState::kTerminating, now, "started after the app exited"};
        out.push_back(Act(Action::Kind::kTerminate, e.pid, p, p.reason));
      } else if (!lockout_.empty()) {
        std::string why = "started while locked out: " + lockout_;
        p = {e.matcher, lockout_kill_ ? ProviderState::kTerminating : ProviderState::kLockedOut, now, why};
        out.push_back(Act(lockout_kill_ ? Action::Kind::kTerminate : Action::Kind::kSuspend, e.pid, p, why));
      }
      break;
    }
    case Event::Kind::kProviderExited:
      providers_.erase(e.pid);
      break;
    case Event::Kind::kAppExited:
      app_exited_ = true;
      paused_ = false;
      for (auto& [pid, p] : providers_) {
        if (p.state == ProviderState::kTerminating || p.state == ProviderState::kKilled) continue;
        p = {p.matcher, ProviderState::kTerminating, now, "the app exited"};
        out.push_back(Act(Action::Kind::kTerminate, pid, p, p.reason));
      }
      break;
  }
  auto more = Evaluate(now);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

std::vector<Action> Enforcer::SetPolicy(Policy policy, TimePoint now) {
  policy_ = std::move(policy);
  std::erase_if(providers_, [&](const auto& kv) { return kv.second.matcher >= policy_.providers.size(); });
  return Evaluate(now);
}

Status Enforcer::GetStatus(TimePoint now) const {
  Status s;
  s.idle_for = IdleFor(now);
  s.paused = paused_;
  s.app_exited = app_exited_;
  s.on_battery = on_battery_;
  s.locked = locked_;
  s.waiting_for_input = hold_;
  s.lockout = lockout_;
  for (const auto& [pid, p] : providers_) {
    ProviderStatus ps{pid, MatcherOf(p).name, p.state, p.since, p.reason, std::nullopt, ""};
    if (auto n = NextFor(p)) {
      ps.next_at = n->first;
      ps.next = n->second;
    }
    s.providers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace dormant::enforcer
