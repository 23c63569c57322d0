// The policy state machine. Fed events stamped with a time it is given, it
// returns actions, each with its reason. It reads no clock and makes no syscall.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "enforcer/policy.h"
#include "enforcer/time.h"

namespace dormant::enforcer {

/// Something that happened. Build with the named constructors below.
struct Event {
  enum class Kind {
    kTick,             // time passed (a deadline from NextDeadline() was reached)
    kIdleSample,       // the idle source says: idle for `idle_for` as of now
    kActivity,         // the user is here (input, or `dormant activity`)
    kPause,            // `dormant pause`: suspend every provider now, until resume
    kResume,           // `dormant resume`: resume every provider, counts as activity
    kProviderStarted,  // a process matched provider matcher `matcher` (index in policy)
    kProviderExited,   // a provider's root process is gone
    kAppExited,        // the supervised app exited: end every provider
    kSleep,            // the machine is about to sleep: suspend every provider now
    kWake,             // the machine woke: timers restart from now ([power] after_wake)
    kBattery,          // `flag`: running on battery (true) or on AC (false)
    kLock,             // `flag`: the session locked (true) or unlocked (false)
    kBudgetExhausted,  // a budget is spent: `text` says which and why; `kill`
                       // ends providers (else they are held stopped); `flag` = lockout
    kBudgetReset,      // a new window: the lockout (if any) is lifted
    kBudgetWarn,       // a warn_at fraction was crossed: `text` says so
    kIdleSpendExceeded,  // spend while idle passed [budget_idle]: suspend at once
  };
  Kind kind = Kind::kTick;
  int pid = 0;
  size_t matcher = 0;
  Duration idle_for{0};
  bool flag = false;
  bool kill = false;
  std::string text;

  static Event Tick() { return Of(Kind::kTick); }
  static Event IdleSample(Duration d) {
    Event e = Of(Kind::kIdleSample);
    e.idle_for = d;
    return e;
  }
  static Event Activity() { return Of(Kind::kActivity); }
  static Event Pause() { return Of(Kind::kPause); }
  static Event Resume() { return Of(Kind::kResume); }
  static Event ProviderStarted(int pid, size_t matcher) {
    Event e = Of(Kind::kProviderStarted);
    e.pid = pid;
    e.matcher = matcher;
    return e;
  }
  static Event ProviderExited(int pid) {
    Event e = Of(Kind::kProviderExited);
    e.pid = pid;
    return e;
  }
  static Event AppExited() { return Of(Kind::kAppExited); }
  static Event Sleep() { return Of(Kind::kSleep); }
  static Event Wake() { return Of(Kind::kWake); }
  static Event Battery(bool on_battery) { return Of(Kind::kBattery, on_battery); }
  static Event Lock(bool locked) { return Of(Kind::kLock, locked); }
  static Event BudgetExhausted(std::string why, bool kill, bool lockout) {
    Event e = Of(Kind::kBudgetExhausted, lockout, std::move(why));
    e.kill = kill;
    return e;
  }
  static Event BudgetReset(std::string why) { return Of(Kind::kBudgetReset, false, std::move(why)); }
  static Event BudgetWarn(std::string why) { return Of(Kind::kBudgetWarn, false, std::move(why)); }
  static Event IdleSpendExceeded(std::string why) {
    return Of(Kind::kIdleSpendExceeded, false, std::move(why));
  }

 private:
  static Event Of(Kind kind, bool flag = false, std::string text = {}) {
    Event e;
    e.kind = kind;
    e.flag = flag;
    e.text = std::move(text);
    return e;
  }
};

/// Something to do to a provider's subtree, and why.
struct Action {
  enum class Kind {
    kSuspend,    // stop the subtree
    kResume,     // continue the subtree
    kTerminate,  // SIGCONT, then SIGTERM to the subtree
    kKill,       // SIGKILL to the subtree
    kWarn,       // tell the user: providers will be suspended soon (pid 0)
  };
  Kind kind;
  int pid;               // the provider's root process
  std::string provider;  // the matcher's name
  std::string reason;    // "idle for 10m >= suspend_after 10m"

  bool operator==(const Action&) const = default;
};

const char* ToString(Action::Kind kind);

/// A provider's state.
enum class ProviderState {
  kRunning,
  kSuspended,    // stopped because the user is idle; activity resumes it
  kPaused,       // stopped by `dormant pause`; only `dormant resume` resumes it
  kTerminating,  // sent SIGTERM; SIGKILL follows after kill_grace
  kKilled,       // sent SIGKILL; waiting to hear that it exited
  kLockedOut,    // stopped because a budget is spent; a new window resumes it
};

const char* ToString(ProviderState state);

struct ProviderStatus {
  int pid = 0;
  std::string name;
  ProviderState state = ProviderState::kRunning;
  TimePoint since;
  std::string reason;                 // why it is in this state
  std::optional<TimePoint> next_at;   // when the next action is due
  std::string next;                   // what it is ("suspend", "terminate", "kill")
};

struct Status {
  Duration idle_for{0};
  bool paused = false;
  bool app_exited = false;
  bool on_battery = false;
  bool locked = false;
  bool waiting_for_input = false;  // after a wake, a lock or a sleep: held until the user is back
  std::string lockout;             // why providers are locked out ("" when not)
  std::vector<ProviderStatus> providers;  // by pid
};

class Enforcer {
 public:
  Enforcer(Policy policy, TimePoint start);

  /// Feeds one event; returns what to do now, in order.
  std::vector<Action> OnEvent(const Event& event, TimePoint now);
  /// The earliest time at which a kTick may produce actions; nullopt when none.
  std::optional<TimePoint> NextDeadline() const;
  /// Replaces the policy (reload). Providers keep their state; timers follow
  /// the new values at once. Matcher indices of running providers must still
  /// be valid (the caller re-matches them otherwise).
  std::vector<Action> SetPolicy(Policy policy, TimePoint now);

  Status GetStatus(TimePoint now) const;
  const Policy& policy() const { return policy_; }
  bool suspended_mode() const;  // a new provider would be stopped on sight
  /// Whether providers may open new IP connections now ([sandbox] network).
  bool NetworkAllowed(TimePoint now) const;
  /// How long the user has been idle as of `now` (as in GetStatus, without building it).
  Duration IdleFor(TimePoint now) const;
  /// Why providers are locked out by a spent budget; empty when they are not.
  const std::string& lockout() const { return lockout_; }
  /// A provider's state, if the enforcer knows `pid` as a provider.
  std::optional<ProviderState> StateOf(int pid) const;

 private:
  struct Provider {
    size_t matcher = 0;
    ProviderState state = ProviderState::kRunning;
    TimePoint since;
    std::string reason;
  };

  std::vector<Action> Evaluate(TimePoint now);
  std::vector<Action> ResumeAll(TimePoint now, bool include_paused, const std::string& why);
  std::vector<Action> Activity(TimePoint input_at, TimePoint now, const std::string& why);
  Duration SuspendAfter(const ProviderMatcher& m) const;
  Duration KillAfter(const ProviderMatcher& m) const;
  const ProviderMatcher& MatcherOf(const Provider& p) const;
  std::optional<std::pair<TimePoint, std::string>> NextFor(const Provider& p) const;
  Action Act(Action::Kind kind, int pid, const Provider& p, std::string reason) const;

  Policy policy_;
  TimePoint last_activity_;
  bool paused_ = false;
  bool app_exited_ = false;
  bool warned_ = false;  // kWarn sent in this idle period
  bool on_battery_ = false;
  bool locked_ = false;
  // After a sleep, a wake (with after_wake = wait-for-input) or a lock (with
  // on_lock = suspend), providers stay stopped until the user is back.
  bool hold_ = false;
  TimePoint hold_since_{};  // input at or before it does not lift the hold
  std::string hold_reason_;
  // A spent budget with lockout: providers that start are ended (lockout_kill_)
  // or held stopped on sight, until the budget's next window.
  std::string lockout_;
  bool lockout_kill_ = false;
  std::map<int, Provider> providers_;
};

}  // namespace dormant::enforcer
