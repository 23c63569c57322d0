// Budget arithmetic with a fake clock: windows in local calendar time and
// rolling, warnings once per window, exhaustion, lockout, idle and plan limits.
#include "enforcer/budget.h"

#include <gtest/gtest.h>

namespace dormant::enforcer {
namespace {

// 2026-11-24T19:06:10Z is 1795547170 s (a Tuesday).
constexpr int64_t kTue = 1795547170000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

WallTime At(int64_t ms, int32_t offset_s = 0) { return {ms, offset_s}; }

SpendSample Credits(int64_t ms, double credits, bool supervised = true,
                    std::optional<bool> idle = false) {
  return {ms, {credits, 0, 0}, supervised, idle};
}

std::vector<BudgetNotice::Kind> Kinds(const std::vector<BudgetNotice>& ns) {
  std::vector<BudgetNotice::Kind> out;
  for (const auto& n : ns) out.push_back(n.kind);
  return out;
}

TEST(BudgetWindow, Parses) {
  EXPECT_EQ(ParseWindow("day")->kind, BudgetWindow::Kind::kDay);
  EXPECT_EQ(ParseWindow("month")->kind, BudgetWindow::Kind::kMonth);
  auto five = ParseWindow("5h");
  ASSERT_TRUE(five.ok());
  EXPECT_EQ(five->kind, BudgetWindow::Kind::kRolling);
  EXPECT_EQ(five->rolling, std::chrono::hours(5));
  EXPECT_EQ(ParseWindow("1h30m")->rolling, std::chrono::minutes(90));
  EXPECT_EQ(ToString(*five), "5h");
  EXPECT_FALSE(ParseWindow("fortnight").ok());
  EXPECT_FALSE(ParseWindow("0h").ok());
  EXPECT_FALSE(ParseWindow("5x").ok());
  EXPECT_FALSE(ParseWindow("").ok());
}

TEST(BudgetWindow, CalendarSpansInLocalTime) {
  // Day in UTC: 2026-11-24T00:00Z = 1795478400 s.
  WindowSpan day = WindowAt(*ParseWindow("day"), At(kTue));
  EXPECT_EQ(day.start_ms, 1795478400000);
  EXPECT_EQ(day.end_ms, 1795478400000 + kDay);
  // At UTC+9 it is already 04:06 on the 25th: the local day began 2026-11-24T15:00Z.
  WindowSpan tokyo = WindowAt(*ParseWindow("day"), At(kTue, 9 * 3600));
  EXPECT_EQ(tokyo.start_ms, 1795478400000 + 15 * kHour);
  // At UTC-8 it is 11:06 on the 24th: the day began at 08:00Z.
  WindowSpan west = WindowAt(*ParseWindow("day"), At(kTue, -8 * 3600));
  EXPECT_EQ(west.start_ms, 1795478400000 + 8 * kHour);
  // Hour: 19:00Z .. 20:00Z; at +05:30 the local hour starts at 18:30Z.
  EXPECT_EQ(WindowAt(*ParseWindow("hour"), At(kTue)).start_ms, 1795478400000 + 19 * kHour);
  EXPECT_EQ(WindowAt(*ParseWindow("hour"), At(kTue, 5 * 3600 + 1800)).start_ms,
            1795478400000 + 18 * kHour + kHour / 2);
  // Week: Monday 2026-11-23 00:00Z .. Monday 2026-11-30.
  WindowSpan week = WindowAt(*ParseWindow("week"), At(kTue));
  EXPECT_EQ(week.start_ms, 1795478400000 - kDay);
  EXPECT_EQ(week.end_ms, 1795478400000 + 6 * kDay);
  // Month: 2026-11-01 .. 2026-12-01 (30 days); December ends at January 1st.
  WindowSpan month = WindowAt(*ParseWindow("month"), At(kTue));
  EXPECT_EQ(month.start_ms, 1795478400000 - 23 * kDay);
  EXPECT_EQ(month.end_ms, 1795478400000 + 7 * kDay);
  WindowSpan dec = WindowAt(*ParseWindow("month"), At(month.end_ms + kDay));
  EXPECT_EQ(dec.start_ms, month.end_ms);
  EXPECT_EQ(dec.end_ms, month.end_ms + 31 * kDay);
  // Rolling: the last five hours.
  WindowSpan rolling = WindowAt(*ParseWindow("5h"), At(kTue));
  EXPECT_EQ(rolling.start_ms, kTue - 5 * kHour);
  EXPECT_EQ(rolling.end_ms, kTue);
}

TEST(BudgetModel, MakeBudgetValidates) {
  auto b = MakeBudget({{"name", "daily"}, {"window", "day"}, {"limit_credits", "400"},
                       {"warn_at", "[0.8, 0.6]"}, {"on_exhausted", "suspend"}, {"lockout", "false"},
                       {"scope", "supervised"}});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->name, "daily");
  EXPECT_EQ(b->limit_credits, 400);
  EXPECT_EQ(b->warn_at, (std::vector<double>{0.6, 0.8}));
  EXPECT_EQ(b->on_exhausted, OnExhausted::kSuspend);
  EXPECT_FALSE(b->lockout);
  EXPECT_EQ(b->scope, BudgetScope::kSupervised);

  EXPECT_FALSE(MakeBudget({{"name", "x"}, {"window", "day"}}).ok());  // no limit
  EXPECT_FALSE(MakeBudget({{"window", "day"}, {"limit_usd", "1"}}).ok());  // no name
  EXPECT_FALSE(MakeBudget({{"name", "x"}, {"window", "day"}, {"limit_usd", "-1"}}).ok());
  EXPECT_FALSE(MakeBudget({{"name", "x"}, {"window", "day"}, {"limit_usd", "1"}, {"warn_at", "1.5"}}).ok());
  EXPECT_FALSE(MakeBudget({{"name", "x"}, {"window", "day"}, {"limit_usd", "1"}, {"colour", "red"}}).ok());
  EXPECT_FALSE(MakeBudget({{"name", "x"}, {"window", "day"}, {"limit_tokens", "1.5"}}).ok());
  auto err = MakeBudget({{"name", "x"}, {"window", "yearly"}, {"limit_usd", "1"}});
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message.find("budget 'x'"), std::string::npos) << err.error().message;
}

TEST(BudgetModel, ParsesADescription) {
  auto p = ParseBudgetDescription(R"(
    # the issue's example
    budget name=daily window=day scope=all limit_credits=400 warn_at=0.6,0.8 on_exhausted=kill lockout=true
    budget name=burst window=5h limit_tokens=1000000
    budget_idle limit_tokens=0
    plan max_used_percent=90
  )");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->budgets.size(), 2u);
  EXPECT_EQ(p->budgets[1].window.rolling, std::chrono::hours(5));
  ASSERT_TRUE(p->idle.has_value());
  EXPECT_EQ(p->idle->limit_tokens, 0);
  ASSERT_TRUE(p->plan.has_value());
  EXPECT_EQ(p->plan->max_used_percent, 90);
  auto bad = ParseBudgetDescription("budget name=x window=day\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(ParseBudgetDescription("budgets name=x").ok());
  EXPECT_FALSE(ParseBudgetDescription("plan max_used_percent=120").ok());
}

BudgetPolicy Daily(const std::string& extra = "") {
  auto p = ParseBudgetDescription(
      "budget name=daily window=day limit_credits=400 warn_at=0.6,0.8 on_exhausted=kill " + extra);
  EXPECT_TRUE(p.ok()) << p.error().message;
  return *p;
}

TEST(BudgetTracker, WarnsOncePerFractionThenExhausts) {
  BudgetTracker t(Daily());
  EXPECT_TRUE(t.Add(Credits(kTue, 200), At(kTue)).empty());  // 50%
  auto n = t.Add(Credits(kTue + 1000, 50), At(kTue + 1000));  // 62.5%
  ASSERT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kWarn}));
  EXPECT_NE(n[0].reason.find("60%"), std::string::npos) << n[0].reason;
  EXPECT_TRUE(t.Add(Credits(kTue + 2000, 10), At(kTue + 2000)).empty());  // 65%: no repeat
  n = t.Add(Credits(kTue + 3000, 70), At(kTue + 3000));  // 82.5%
  ASSERT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kWarn}));
  EXPECT_FALSE(t.AnyExhausted());
  n = t.Add(Credits(kTue + 4000, 70), At(kTue + 4000));  // 100%
  ASSERT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kExhausted}));
  EXPECT_EQ(n[0].on_exhausted, OnExhausted::kKill);
  EXPECT_TRUE(n[0].lockout);
  EXPECT_TRUE(t.LockedOut());
  EXPECT_TRUE(t.Add(Credits(kTue + 5000, 1), At(kTue + 5000)).empty());  // once
  auto status = t.Status(At(kTue + 5000));
  ASSERT_EQ(status.size(), 1u);
  EXPECT_DOUBLE_EQ(status[0].spend.credits, 401);
  EXPECT_TRUE(status[0].exhausted);
  EXPECT_EQ(status[0].resets_at_ms, 1795478400000 + kDay);
}

TEST(BudgetTracker, OneBigEventCrossesEverything) {
  BudgetTracker t(Daily());
  auto n = t.Add(Credits(kTue, 1000), At(kTue));
  // Both warnings are passed at once; exhaustion says it all.
  EXPECT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kExhausted}));
}

TEST(BudgetTracker, NextDayLiftsTheLockoutAndWarnsAgain) {
  BudgetTracker t(Daily());
  t.Add(Credits(kTue, 400), At(kTue));
  ASSERT_TRUE(t.LockedOut());
  int64_t midnight = 1795478400000 + kDay;
  EXPECT_EQ(t.NextBoundary(At(kTue)), midnight);
  EXPECT_TRUE(t.Advance(At(midnight - 1)).empty());
  EXPECT_TRUE(t.LockedOut());
  auto n = t.Advance(At(midnight));
  EXPECT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kReset}));
  EXPECT_FALSE(t.LockedOut());
  // The new day's warnings are new warnings.
  EXPECT_EQ(Kinds(t.Add(Credits(midnight + 10, 250), At(midnight + 10))),
            (std::vector{BudgetNotice::Kind::kWarn}));
  // An old event (yesterday's, seen late) does not count in today's window.
  EXPECT_TRUE(t.Add(Credits(kTue, 1000), At(midnight + 20)).empty());
  EXPECT_DOUBLE_EQ(t.Status(At(midnight + 20))[0].spend.credits, 250);
}

TEST(BudgetTracker, LocalMidnightDependsOnTheOffset) {
  BudgetTracker t(Daily());
  const int32_t kTokyo = 9 * 3600;
  // 19:06Z is 04:06 on the 25th in Tokyo; the next local midnight is 15:00Z on the 25th.
  t.Add(Credits(kTue, 400), At(kTue, kTokyo));
  EXPECT_EQ(t.NextBoundary(At(kTue, kTokyo)), 1795478400000 + kDay + 15 * kHour);
}

TEST(BudgetTracker, SupervisedScopeIgnoresOtherClients) {
  BudgetTracker t(Daily("scope=supervised"));
  EXPECT_TRUE(t.Add(Credits(kTue, 500, /*supervised=*/false), At(kTue)).empty());
  EXPECT_FALSE(t.AnyExhausted());
  EXPECT_EQ(Kinds(t.Add(Credits(kTue, 500, true), At(kTue))),
            (std::vector{BudgetNotice::Kind::kExhausted}));
}

TEST(BudgetTracker, RollingWindowForgetsOldSpend) {
  auto p = ParseBudgetDescription("budget name=burst window=5h limit_tokens=1000 lockout=false");
  ASSERT_TRUE(p.ok());
  BudgetTracker t(*p);
  auto tokens = [](int64_t ms, int64_t n) { return SpendSample{ms, {0, 0, n}, true, false}; };
  t.Add(tokens(kTue, 600), At(kTue));
  t.Add(tokens(kTue + kHour, 300), At(kTue + kHour));
  auto n = t.Add(tokens(kTue + 2 * kHour, 100), At(kTue + 2 * kHour));
  EXPECT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kExhausted}));
  EXPECT_FALSE(t.LockedOut());  // lockout = false
  EXPECT_TRUE(t.AnyExhausted());
  // The first 600 leave the window at kTue + 5h: that is the next boundary.
  EXPECT_EQ(t.NextBoundary(At(kTue + 2 * kHour)), kTue + 5 * kHour);
  EXPECT_TRUE(t.Advance(At(kTue + 5 * kHour - 1)).empty());
  n = t.Advance(At(kTue + 5 * kHour));
  EXPECT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kReset}));
  auto status = t.Status(At(kTue + 5 * kHour));
  EXPECT_EQ(status[0].spend.tokens, 400);
  EXPECT_EQ(status[0].resets_at_ms, kTue + 6 * kHour);
}

TEST(BudgetTracker, IdleBudgetOfZeroTokens) {
  auto p = ParseBudgetDescription("budget_idle limit_tokens=0");
  ASSERT_TRUE(p.ok());
  BudgetTracker t(*p);
  SpendSample active{kTue, {0, 0, 500}, true, false};
  SpendSample unknown{kTue, {0, 0, 500}, true, std::nullopt};
  SpendSample idle{kTue, {0, 0, 1}, true, true};
  EXPECT_TRUE(t.Add(active, At(kTue)).empty());
  EXPECT_TRUE(t.Add(unknown, At(kTue)).empty());
  auto n = t.Add(idle, At(kTue));
  ASSERT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kIdleExceeded}));
  EXPECT_EQ(n[0].on_exhausted, OnExhausted::kSuspend);
  EXPECT_TRUE(t.Add(idle, At(kTue)).empty());  // once per idle stretch
  t.OnActivity();
  EXPECT_EQ(Kinds(t.Add(idle, At(kTue))), (std::vector{BudgetNotice::Kind::kIdleExceeded}));
}

TEST(BudgetTracker, PlanLimitFromRateLimits) {
  auto p = ParseBudgetDescription("plan max_used_percent=90");
  ASSERT_TRUE(p.ok());
  BudgetTracker t(*p);
  EXPECT_TRUE(t.SetPlanUsedPercent(42.5).empty());
  auto n = t.SetPlanUsedPercent(91);
  ASSERT_EQ(Kinds(n), (std::vector{BudgetNotice::Kind::kPlanExceeded}));
  EXPECT_EQ(n[0].reason, "plan usage 91% >= max_used_percent 90");
  EXPECT_TRUE(t.LockedOut());
  EXPECT_TRUE(t.SetPlanUsedPercent(95).empty());
  EXPECT_EQ(Kinds(t.SetPlanUsedPercent(10)), (std::vector{BudgetNotice::Kind::kPlanCleared}));
  EXPECT_FALSE(t.LockedOut());
}

TEST(BudgetTracker, SeveralBudgetsAndCurrencies) {
  auto p = ParseBudgetDescription(
      "budget name=usd window=day limit_usd=1\n"
      "budget name=weekly window=week limit_credits=10 warn_at=0.5\n");
  ASSERT_TRUE(p.ok());
  BudgetTracker t(*p);
  auto n = t.Add({kTue, {6, 0.5, 0}, true, false}, At(kTue));
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].budget, "weekly");
  EXPECT_EQ(n[0].kind, BudgetNotice::Kind::kWarn);
  n = t.Add({kTue, {0, 0.5, 0}, true, false}, At(kTue));
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].budget, "usd");
  EXPECT_EQ(n[0].kind, BudgetNotice::Kind::kExhausted);
  // The day ends before the week: the day's boundary comes first.
  EXPECT_EQ(t.NextBoundary(At(kTue)), 1795478400000 + kDay);
}

}  // namespace
}  // namespace dormant::enforcer
