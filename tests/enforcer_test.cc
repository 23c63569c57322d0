// The enforcer with a fake clock: every state against every event, and the
// tricky orders named in the core issue.
#include "enforcer/enforcer.h"

#include <gtest/gtest.h>

namespace dormant::enforcer {
namespace {

using namespace std::chrono_literals;
using K = Action::Kind;
using S = ProviderState;

Policy TestPolicy() {
  Policy p;
  p.idle.suspend_after = 10min;
  p.idle.kill_after = 2h;
  p.idle.kill_grace = 5s;
  p.providers = {{"codex", "codex", {"app-server"}, {}, {}}, {"claude", "claude", {}, {}, {}}};
  return p;
}

class EnforcerTest : public ::testing::Test {
 protected:
  TimePoint t0{};
  Enforcer e{TestPolicy(), t0};
  std::vector<Action> At(Duration d, const Event& ev) { return e.OnEvent(ev, t0 + d); }
  S StateOf(int pid, Duration at) {
    for (auto& p : e.GetStatus(t0 + at).providers) {
      if (p.pid == pid) return p.state;
    }
    ADD_FAILURE() << "no provider " << pid;
    return S::kKilled;
  }
  bool Known(int pid) {
    for (auto& p : e.GetStatus(t0).providers) {
      if (p.pid == pid) return true;
    }
    return false;
  }
  static std::vector<K> Kinds(const std::vector<Action>& a) {
    std::vector<K> k;
    for (auto& x : a) k.push_back(x.kind);
    return k;
  }
};

TEST_F(EnforcerTest, NothingHappensBeforeSuspendAfter) {
  EXPECT_TRUE(At(0s, Event::ProviderStarted(100, 0)).empty());
  EXPECT_TRUE(At(9min + 59s, Event::Tick()).empty());
  EXPECT_EQ(e.NextDeadline(), t0 + 10min);
}

TEST_F(EnforcerTest, IdleSuspendsThenKillsWithGrace) {
  At(0s, Event::ProviderStarted(100, 0));
  auto a = At(10min, Event::Tick());
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, K::kSuspend);
  EXPECT_EQ(a[0].pid, 100);
  EXPECT_EQ(a[0].provider, "codex");
  EXPECT_EQ(a[0].reason, "idle for 10m >= suspend_after 10m");
  EXPECT_EQ(e.NextDeadline(), t0 + 2h);
  a = At(2h, Event::Tick());
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kTerminate});
  EXPECT_EQ(a[0].reason, "idle for 2h >= kill_after 2h");
  EXPECT_EQ(e.NextDeadline(), t0 + 2h + 5s);
  EXPECT_TRUE(At(2h + 4s, Event::Tick()).empty());
  a = At(2h + 5s, Event::Tick());
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kKill});
  EXPECT_EQ(StateOf(100, 2h + 5s), S::kKilled);
  EXPECT_EQ(e.NextDeadline(), std::nullopt);
  At(2h + 6s, Event::ProviderExited(100));
  EXPECT_FALSE(Known(100));
}

TEST_F(EnforcerTest, ActivityResumesOnlyIdleSuspended) {
  At(0s, Event::ProviderStarted(100, 0));
  At(10min, Event::Tick());
  auto a = At(11min, Event::Activity());
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kResume});
  EXPECT_EQ(StateOf(100, 11min), S::kRunning);
  // Timers count from the new activity.
  EXPECT_EQ(e.NextDeadline(), t0 + 21min);
}

TEST_F(EnforcerTest, ActivityRacingSuspendAtTheSameInstant) {
  At(0s, Event::ProviderStarted(100, 0));
  // Activity arrives at the very deadline, before the tick is processed:
  // the provider must not be stopped.
  EXPECT_TRUE(At(10min, Event::Activity()).empty());
  EXPECT_TRUE(At(10min, Event::Tick()).empty());
  EXPECT_EQ(StateOf(100, 10min), S::kRunning);
}

TEST_F(EnforcerTest, ActivityJustAfterSuspendResumesAtOnce) {
  At(0s, Event::ProviderStarted(100, 0));
  ASSERT_EQ(Kinds(At(10min, Event::Tick())), std::vector<K>{K::kSuspend});
  ASSERT_EQ(Kinds(At(10min + 1ms, Event::Activity())), std::vector<K>{K::kResume});
}

TEST_F(EnforcerTest, ProviderExitingWhileSuspended) {
  At(0s, Event::ProviderStarted(100, 0));
  At(10min, Event::Tick());
  EXPECT_TRUE(At(20min, Event::ProviderExited(100)).empty());
  EXPECT_FALSE(Known(100));
  EXPECT_TRUE(At(21min, Event::Activity()).empty());  // nothing left to resume
  EXPECT_EQ(e.NextDeadline(), std::nullopt);
}

TEST_F(EnforcerTest, ProviderSpawnedWhileSuspendedIsStoppedOnSight) {
  At(0s, Event::ProviderStarted(100, 0));
  At(10min, Event::Tick());
  auto a = At(30min, Event::ProviderStarted(200, 1));
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].pid, 200);
  EXPECT_EQ(a[0].provider, "claude");
  EXPECT_EQ(StateOf(200, 30min), S::kSuspended);
  // It is killed with the others: kill_after is idle time, not its own age.
  auto k = At(2h, Event::Tick());
  EXPECT_EQ(Kinds(k), (std::vector<K>{K::kTerminate, K::kTerminate}));
}

TEST_F(EnforcerTest, ProviderSpawnedAfterKillAfterIsEndedAtOnce) {
  auto a = At(3h, Event::ProviderStarted(300, 0));
  EXPECT_EQ(Kinds(a), std::vector<K>{K::kSuspend});
  a = At(3h, Event::Tick());
  EXPECT_EQ(Kinds(a), std::vector<K>{K::kTerminate});
}

TEST_F(EnforcerTest, KillWhileSuspendedNeedsNoResumeFirst) {
  At(0s, Event::ProviderStarted(100, 0));
  At(10min, Event::Tick());
  auto a = At(2h, Event::Tick());
  // Terminate carries SIGCONT itself (the freezer sends it before SIGTERM).
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kTerminate});
  EXPECT_EQ(StateOf(100, 2h), S::kTerminating);
  // Activity during the grace does not bring it back.
  EXPECT_TRUE(At(2h + 1s, Event::Activity()).empty());
  EXPECT_EQ(Kinds(At(2h + 5s, Event::Tick())), std::vector<K>{K::kKill});
}

TEST_F(EnforcerTest, ExitDuringGraceCancelsTheKill) {
  At(0s, Event::ProviderStarted(100, 0));
  At(2h, Event::Tick());
  At(2h, Event::Tick());
  ASSERT_EQ(StateOf(100, 2h), S::kTerminating);
  At(2h + 1s, Event::ProviderExited(100));
  EXPECT_TRUE(At(2h + 5s, Event::Tick()).empty());
}

TEST_F(EnforcerTest, PauseHoldsUntilResumeNotActivity) {
  At(0s, Event::ProviderStarted(100, 0));
  auto a = At(1min, Event::Pause());
  ASSERT_EQ(Kinds(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "paused by `dormant pause`");
  EXPECT_TRUE(At(2min, Event::Activity()).empty());
  EXPECT_EQ(StateOf(100, 2min), S::kPaused);
  // Paused providers are not killed by the idle timer.
  EXPECT_TRUE(At(5h, Event::Tick()).empty());
  // A provider appearing while paused is stopped too.
  EXPECT_EQ(Kinds(At(5h, Event::ProviderStarted(200, 1))), std::vector<K>{K::kSuspend});
  a = At(5h + 1s, Event::Resume());
  EXPECT_EQ(Kinds(a), (std::vector<K>{K::kResume, K::kResume}));
  EXPECT_EQ(StateOf(100, 5h + 1s), S::kRunning);
  EXPECT_EQ(e.NextDeadline(), t0 + 5h + 1s + 10min);
}

TEST_F(EnforcerTest, PauseOfAnIdleSuspendedProviderNeedsNoSecondStop) {
  At(0s, Event::ProviderStarted(100, 0));
  At(10min, Event::Tick());
  EXPECT_TRUE(At(11min, Event::Pause()).empty());
  EXPECT_EQ(StateOf(100, 11min), S::kPaused);
  EXPECT_TRUE(At(12min, Event::Activity()).empty());
}

TEST_F(EnforcerTest, ResumeWithNothingStoppedCountsAsActivity) {
  At(0s, Event::ProviderStarted(100, 0));
  EXPECT_TRUE(At(9min, Event::Resume()).empty());
  EXPECT_EQ(e.NextDeadline(), t0 + 19min);
}

TEST_F(EnforcerTest, AppExitEndsEveryProviderWhateverItsState) {
  At(0s, Event::ProviderStarted(100, 0));
  At(0s, Event::ProviderStarted(200, 1));
  At(10min, Event::Tick());                 // both suspended
  At(10min, Event::Activity());             // both running
  At(11min, Event::Pause());                // both paused
  auto a = At(12min, Event::AppExited());
  EXPECT_EQ(Kinds(a), (std::vector<K>{K::kTerminate, K::kTerminate}));
  EXPECT_EQ(a[0].reason, "the app exited");
  EXPECT_EQ(Kinds(At(12min + 5s, Event::Tick())), (std::vector<K>{K::kKill, K::kKill}));
  // A provider that appears after the app exited is ended on sight.
  EXPECT_EQ(Kinds(At(13min, Event::ProviderStarted(300, 0))), std::vector<K>{K::kTerminate});
}

TEST_F(EnforcerTest, IdleSamplesMoveLastInputForwardOnly) {
  At(0s, Event::ProviderStarted(100, 0));
  ASSERT_EQ(Kinds(At(10min, Event::Tick())), std::vector<K>{K::kSuspend});
  // A sample saying "idle for 12m" at 11m says nothing new.
  EXPECT_TRUE(At(11min, Event::IdleSample(12min)).empty());
  // Input 2 s ago: the user is back.
  EXPECT_EQ(Kinds(At(12min, Event::IdleSample(2s))), std::vector<K>{K::kResume});
  EXPECT_EQ(e.NextDeadline(), t0 + 12min - 2s + 10min);
}

TEST_F(EnforcerTest, PerProviderOverrides) {
  Policy p = TestPolicy();
  p.providers[1].suspend_after = 1min;
  p.providers[1].kill_after = 5min;
  Enforcer f(p, t0);
  f.OnEvent(Event::ProviderStarted(100, 0), t0);
  f.OnEvent(Event::ProviderStarted(200, 1), t0);
  auto a = f.OnEvent(Event::Tick(), t0 + 1min);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].pid, 200);
  EXPECT_EQ(f.NextDeadline(), t0 + 5min);
  a = f.OnEvent(Event::Tick(), t0 + 5min);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, K::kTerminate);
}

TEST_F(EnforcerTest, WarnOncePerIdlePeriod) {
  Policy p = TestPolicy();
  p.idle.warn_after = 8min;
  Enforcer f(p, t0);
  f.OnEvent(Event::ProviderStarted(100, 0), t0);
  EXPECT_EQ(f.NextDeadline(), t0 + 8min);
  auto a = f.OnEvent(Event::Tick(), t0 + 8min);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, K::kWarn);
  EXPECT_TRUE(f.OnEvent(Event::Tick(), t0 + 9min).empty());
  f.OnEvent(Event::Activity(), t0 + 9min);
  a = f.OnEvent(Event::Tick(), t0 + 17min);
  EXPECT_EQ(Kinds(a), std::vector<K>{K::kWarn});
}

TEST_F(EnforcerTest, ReloadWithShorterTimerActsAtOnce) {
  At(0s, Event::ProviderStarted(100, 0));
  Policy p = TestPolicy();
  p.idle.suspend_after = 1min;
  auto a = e.SetPolicy(p, t0 + 2min);
  EXPECT_EQ(Kinds(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "idle for 2m >= suspend_after 1m");
}

TEST_F(EnforcerTest, ReloadDroppingAMatcherForgetsItsProviders) {
  At(0s, Event::ProviderStarted(200, 1));
  Policy p = TestPolicy();
  p.providers.pop_back();
  e.SetPolicy(p, t0 + 1s);
  EXPECT_FALSE(Known(200));
}

TEST_F(EnforcerTest, DuplicateStartAndUnknownExitAreHarmless) {
  At(0s, Event::ProviderStarted(100, 0));
  At(1min, Event::ProviderStarted(100, 0));
  EXPECT_EQ(e.GetStatus(t0).providers.size(), 1u);
  EXPECT_TRUE(At(2min, Event::ProviderExited(999)).empty());
  EXPECT_TRUE(At(2min, Event::ProviderStarted(5, 99)).empty());  // no such matcher
}

// Every state crossed with every event: the result is always a legal state,
// and no action ever targets a provider the enforcer does not know.
TEST_F(EnforcerTest, EveryStateTimesEveryEvent) {
  const std::vector<std::pair<const char*, std::function<void(Enforcer&, TimePoint)>>> into = {
      {"running", [](Enforcer&, TimePoint) {}},
      {"suspended", [](Enforcer& f, TimePoint t) { f.OnEvent(Event::Tick(), t + 10min); }},
      {"paused", [](Enforcer& f, TimePoint t) { f.OnEvent(Event::Pause(), t + 1min); }},
      {"terminating", [](Enforcer& f, TimePoint t) { f.OnEvent(Event::AppExited(), t + 1min); }},
      {"killed",
       [](Enforcer& f, TimePoint t) {
         f.OnEvent(Event::AppExited(), t + 1min);
         f.OnEvent(Event::Tick(), t + 1min + 5s);
       }},
  };
  const std::vector<Event> events = {Event::Tick(),          Event::IdleSample(0s),
                                     Event::IdleSample(1h),  Event::Activity(),
                                     Event::Pause(),         Event::Resume(),
                                     Event::ProviderStarted(101, 1), Event::ProviderExited(100),
                                     Event::AppExited()};
  for (auto& [name, go] : into) {
    for (size_t i = 0; i < events.size(); ++i) {
      Enforcer f(TestPolicy(), t0);
      f.OnEvent(Event::ProviderStarted(100, 0), t0);
      go(f, t0);
      TimePoint at = t0 + 20min;
      auto actions = f.OnEvent(events[i], at);
      auto st = f.GetStatus(at);
      for (auto& a : actions) {
        if (a.kind == K::kWarn) continue;
        EXPECT_TRUE(a.pid == 100 || a.pid == 101) << name << " event " << i;
      }
      for (auto& p : st.providers) {
        if (p.state == S::kRunning) {
          // Running while 20m idle is only possible right after activity/resume.
          bool fresh = events[i].kind == Event::Kind::kActivity ||
                       events[i].kind == Event::Kind::kResume ||
                       (events[i].kind == Event::Kind::kIdleSample && events[i].idle_for == 0s);
          EXPECT_TRUE(fresh) << name << " event " << i << " left pid " << p.pid << " running";
        }
        if (std::string(name) == "killed" && p.pid == 100) {
          EXPECT_EQ(p.state, S::kKilled) << "event " << i;
        }
      }
      if (f.NextDeadline()) {
        EXPECT_GE(*f.NextDeadline(), at - 20min);
      }
    }
  }
}

}  // namespace
}  // namespace dormant::enforcer

namespace dormant::enforcer {
namespace {

using namespace std::chrono_literals;
using K = Action::Kind;

std::vector<K> KindsOf(const std::vector<Action>& a) {
  std::vector<K> k;
  for (auto& x : a) k.push_back(x.kind);
  return k;
}

Policy PowerPolicy(AfterWake after_wake, OnLock on_lock) {
  Policy p;
  p.idle.suspend_after = 10min;
  p.idle.kill_after = 2h;
  p.power.after_wake = after_wake;
  p.power.on_lock = on_lock;
  p.providers = {{"codex", "codex", {"app-server"}, {}, {}}};
  return p;
}

TEST(EnforcerPower, SleepSuspendsAtOnceAndWakeWaitsForInput) {
  TimePoint t0{};
  Enforcer e(PowerPolicy(AfterWake::kWaitForInput, OnLock::kIgnore), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::Sleep(), t0 + 1min);
  ASSERT_EQ(KindsOf(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "the machine is going to sleep");
  // The monotonic clock does not run during sleep; the wake comes "1 min" later.
  EXPECT_TRUE(e.OnEvent(Event::Wake(), t0 + 2min).empty());
  EXPECT_TRUE(e.GetStatus(t0 + 2min).waiting_for_input);
  // Timers restart from the wake: no kill at 2h after the last input...
  EXPECT_EQ(e.NextDeadline(), t0 + 2min + 2h);
  // ...and a new provider is held too.
  EXPECT_EQ(KindsOf(e.OnEvent(Event::ProviderStarted(200, 0), t0 + 3min)), std::vector<K>{K::kSuspend});
  // A sample showing input before the wake changes nothing; input after it resumes.
  EXPECT_TRUE(e.OnEvent(Event::IdleSample(5min), t0 + 4min).empty());
  EXPECT_EQ(KindsOf(e.OnEvent(Event::IdleSample(1s), t0 + 4min)), (std::vector<K>{K::kResume, K::kResume}));
  EXPECT_FALSE(e.GetStatus(t0 + 4min).waiting_for_input);
}

TEST(EnforcerPower, WakeWithoutPrepareForSleepStopsRunningProviders) {
  TimePoint t0{};
  Enforcer e(PowerPolicy(AfterWake::kWaitForInput, OnLock::kIgnore), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::Wake(), t0 + 1min);
  ASSERT_EQ(KindsOf(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "woke from sleep; waiting for input (after_wake = wait-for-input)");
  EXPECT_EQ(KindsOf(e.OnEvent(Event::Activity(), t0 + 2min)), std::vector<K>{K::kResume});
}

TEST(EnforcerPower, AfterWakeResume) {
  TimePoint t0{};
  Enforcer e(PowerPolicy(AfterWake::kResume, OnLock::kIgnore), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  e.OnEvent(Event::Sleep(), t0 + 9min);
  auto a = e.OnEvent(Event::Wake(), t0 + 9min + 1s);
  ASSERT_EQ(KindsOf(a), std::vector<K>{K::kResume});
  // Suspension counts from the wake, not from the input before the sleep.
  EXPECT_EQ(e.NextDeadline(), t0 + 9min + 1s + 10min);
}

TEST(EnforcerPower, BatteryTimersApplyAtOnceAndOnlyWhenStricter) {
  TimePoint t0{};
  Policy p = PowerPolicy(AfterWake::kWaitForInput, OnLock::kIgnore);
  p.power.battery.suspend_after = 2min;
  p.power.battery.kill_after = 4h;  // looser than [idle]: ignored
  Enforcer e(p, t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  EXPECT_TRUE(e.OnEvent(Event::Tick(), t0 + 3min).empty());
  auto a = e.OnEvent(Event::Battery(true), t0 + 3min);
  ASSERT_EQ(KindsOf(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "idle for 3m >= suspend_after 2m (on battery)");
  EXPECT_EQ(e.NextDeadline(), t0 + 2h);
  EXPECT_TRUE(e.OnEvent(Event::Battery(false), t0 + 4min).empty());
}

TEST(EnforcerPower, LockSuspendsWhenAskedAndUnlockResumes) {
  TimePoint t0{};
  Enforcer ignore(PowerPolicy(AfterWake::kWaitForInput, OnLock::kIgnore), t0);
  ignore.OnEvent(Event::ProviderStarted(100, 0), t0);
  EXPECT_TRUE(ignore.OnEvent(Event::Lock(true), t0 + 1min).empty());

  Enforcer e(PowerPolicy(AfterWake::kWaitForInput, OnLock::kSuspend), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::Lock(true), t0 + 1min);
  ASSERT_EQ(KindsOf(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "the session locked (on_lock = suspend)");
  EXPECT_FALSE(e.NetworkAllowed(t0 + 1min));
  EXPECT_EQ(KindsOf(e.OnEvent(Event::Lock(false), t0 + 5min)), std::vector<K>{K::kResume});
  EXPECT_TRUE(e.NetworkAllowed(t0 + 5min));
}

TEST(EnforcerPower, NetworkAllowedFollowsNetworkAfter) {
  TimePoint t0{};
  Policy p = PowerPolicy(AfterWake::kWaitForInput, OnLock::kIgnore);
  p.idle.network_after = 2min;
  Enforcer e(p, t0);
  EXPECT_TRUE(e.NetworkAllowed(t0 + 1min));
  EXPECT_FALSE(e.NetworkAllowed(t0 + 2min));
  e.OnEvent(Event::Activity(), t0 + 3min);
  EXPECT_TRUE(e.NetworkAllowed(t0 + 3min));
}

}  // namespace
}  // namespace dormant::enforcer

namespace dormant::enforcer {
namespace {

using namespace std::chrono_literals;
using K = Action::Kind;

std::vector<K> BudgetKinds(const std::vector<Action>& a) {
  std::vector<K> k;
  for (auto& x : a) k.push_back(x.kind);
  return k;
}

Policy OneProvider() {
  Policy p;
  p.providers = {{"codex", "codex", {"app-server"}, {}, {}}};
  return p;
}

TEST(EnforcerBudget, ExhaustedWithKillAndLockoutEndsProvidersAndNewOnesOnSight) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::BudgetExhausted("budget daily spent: 400 of 400 credits", true, true), t0 + 1s);
  ASSERT_EQ(BudgetKinds(a), std::vector<K>{K::kTerminate});
  EXPECT_EQ(a[0].reason, "budget daily spent: 400 of 400 credits");
  EXPECT_EQ(BudgetKinds(e.OnEvent(Event::Tick(), t0 + 6s)), std::vector<K>{K::kKill});
  e.OnEvent(Event::ProviderExited(100), t0 + 7s);
  a = e.OnEvent(Event::ProviderStarted(200, 0), t0 + 8s);
  ASSERT_EQ(BudgetKinds(a), std::vector<K>{K::kTerminate});
  EXPECT_EQ(a[0].reason, "started while locked out: budget daily spent: 400 of 400 credits");
  // Activity does not lift a lockout; the next window does.
  e.OnEvent(Event::ProviderExited(200), t0 + 9s);
  e.OnEvent(Event::Activity(), t0 + 10s);
  EXPECT_FALSE(e.GetStatus(t0 + 10s).lockout.empty());
  e.OnEvent(Event::BudgetReset("budget daily: new window"), t0 + 1h);
  e.OnEvent(Event::Activity(), t0 + 1h);
  EXPECT_TRUE(e.OnEvent(Event::ProviderStarted(300, 0), t0 + 1h).empty());
}

TEST(EnforcerBudget, ExhaustedWithSuspendHoldsUntilTheWindowResets) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::BudgetExhausted("budget hourly spent", false, true), t0 + 1s);
  ASSERT_EQ(BudgetKinds(a), std::vector<K>{K::kSuspend});
  EXPECT_TRUE(e.OnEvent(Event::Activity(), t0 + 2s).empty());
  EXPECT_TRUE(e.OnEvent(Event::Resume(), t0 + 3s).empty());
  EXPECT_EQ(e.GetStatus(t0 + 3s).providers[0].state, ProviderState::kLockedOut);
  // Locked-out providers are not killed by idle timers either.
  EXPECT_TRUE(e.OnEvent(Event::Tick(), t0 + 5h).empty());
  EXPECT_EQ(BudgetKinds(e.OnEvent(Event::ProviderStarted(200, 0), t0 + 5h)), std::vector<K>{K::kSuspend});
  // The window resets after the user has been away past kill_after: the
  // ordinary idle rule applies at once.
  a = e.OnEvent(Event::BudgetReset("budget hourly: new window"), t0 + 6h);
  EXPECT_EQ(BudgetKinds(a), (std::vector<K>{K::kTerminate, K::kTerminate}));
}

TEST(EnforcerBudget, ResetWhileTheUserIsAwayKeepsThemStoppedAsIdle) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  e.OnEvent(Event::BudgetExhausted("budget hourly spent", false, true), t0 + 1s);
  EXPECT_TRUE(e.OnEvent(Event::BudgetReset("budget hourly: new window"), t0 + 50min).empty());
  EXPECT_EQ(e.GetStatus(t0 + 50min).providers[0].state, ProviderState::kSuspended);
  EXPECT_EQ(BudgetKinds(e.OnEvent(Event::Activity(), t0 + 51min)), std::vector<K>{K::kResume});
}

TEST(EnforcerBudget, ResetWhileTheUserIsHereResumes) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  e.OnEvent(Event::BudgetExhausted("budget hourly spent", false, true), t0 + 1s);
  auto a = e.OnEvent(Event::BudgetReset("budget hourly: new window"), t0 + 2min);
  EXPECT_EQ(BudgetKinds(a), std::vector<K>{K::kResume});
}

TEST(EnforcerBudget, ExhaustedWithoutLockoutLetsNewProvidersRun) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  e.OnEvent(Event::BudgetExhausted("budget x spent", true, false), t0 + 1s);
  EXPECT_TRUE(e.OnEvent(Event::ProviderStarted(200, 0), t0 + 2s).empty());
}

TEST(EnforcerBudget, IdleSpendSuspendsAtOnceUntilActivity) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  auto a = e.OnEvent(Event::IdleSpendExceeded("spent 1200 tokens while idle (budget_idle 0)"), t0 + 3min);
  ASSERT_EQ(BudgetKinds(a), std::vector<K>{K::kSuspend});
  EXPECT_EQ(a[0].reason, "spent 1200 tokens while idle (budget_idle 0)");
  EXPECT_EQ(BudgetKinds(e.OnEvent(Event::Activity(), t0 + 4min)), std::vector<K>{K::kResume});
}

TEST(EnforcerBudget, WarnBecomesAWarnAction) {
  TimePoint t0{};
  Enforcer e(OneProvider(), t0);
  auto a = e.OnEvent(Event::BudgetWarn("budget daily at 60%"), t0);
  ASSERT_EQ(BudgetKinds(a), std::vector<K>{K::kWarn});
  EXPECT_EQ(a[0].reason, "budget daily at 60%");
}

}  // namespace
}  // namespace dormant::enforcer

namespace dormant::enforcer {
namespace {

using namespace std::chrono_literals;

// Input from before a hold began (a poll that lands just after the sleep or
// lock was announced) must not lift the hold.
TEST(EnforcerPower, InputFromBeforeAHoldDoesNotLiftIt) {
  TimePoint t0{};
  Policy p;
  p.power.on_lock = OnLock::kSuspend;
  p.providers = {{"codex", "codex", {}, {}, {}}};
  Enforcer e(p, t0);
  e.OnEvent(Event::ProviderStarted(100, 0), t0);
  e.OnEvent(Event::Sleep(), t0 + 10s);
  EXPECT_TRUE(e.OnEvent(Event::IdleSample(500ms), t0 + 10s + 100ms).empty());
  EXPECT_TRUE(e.GetStatus(t0 + 11s).waiting_for_input);
  Enforcer l(p, t0);
  l.OnEvent(Event::ProviderStarted(100, 0), t0);
  l.OnEvent(Event::Lock(true), t0 + 10s);
  EXPECT_TRUE(l.OnEvent(Event::IdleSample(0s), t0 + 10s).empty());
  // Input after the hold began lifts it.
  EXPECT_EQ(l.OnEvent(Event::IdleSample(0s), t0 + 12s).size(), 1u);
}

}  // namespace
}  // namespace dormant::enforcer
