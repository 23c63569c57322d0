// Budget arithmetic with a fake clock: windows in local calendar time and
// rolling, warnings once per window, exhaustion, lockout, idle and plan limits.
#include "enforcer/budget.h"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <time.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "meter/usage.h"

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

// ---------------------------------------------------------------- DST

// Unix ms of a UTC date and time.
int64_t Utc(std::chrono::year_month_day d, int h, int m = 0) {
  auto days = std::chrono::sys_days{d}.time_since_epoch().count();
  return (static_cast<int64_t>(days) * 24 + h) * kHour + m * 60'000;
}

using namespace std::chrono_literals;

// A zone that starts at `initial` (seconds east) and changes at fixed instants.
struct Change {
  int64_t at_ms;
  int32_t offset_s;
};
TimeZone Zone(int32_t initial, std::vector<Change> changes) {
  return [initial, changes](int64_t ms) {
    int32_t o = initial;
    for (const Change& c : changes)
      if (ms >= c.at_ms) o = c.offset_s;
    return o;
  };
}

// Central Europe in 2026: CEST from 29 March 01:00Z to 25 October 01:00Z.
const int64_t kSpring = Utc(2026y / 3 / 29, 1);
const int64_t kFall = Utc(2026y / 10 / 25, 1);
TimeZone Cet() { return Zone(3600, {{kSpring, 7200}, {kFall, 3600}}); }

const BudgetWindow kHourW{BudgetWindow::Kind::kHour};
const BudgetWindow kDayW{BudgetWindow::Kind::kDay};
const BudgetWindow kWeekW{BudgetWindow::Kind::kWeek};
const BudgetWindow kMonthW{BudgetWindow::Kind::kMonth};

TEST(BudgetZone, LocalToUnixGapAndRepeat) {
  TimeZone z = Cet();
  // 02:30 local on 29 March does not exist: the first instant after it is the change.
  EXPECT_EQ(LocalToUnix(Utc(2026y / 3 / 29, 2, 30), z), kSpring);
  EXPECT_EQ(LocalToUnix(Utc(2026y / 3 / 29, 3), z), kSpring);
  EXPECT_EQ(LocalToUnix(Utc(2026y / 3 / 29, 1, 59), z), kSpring - 60'000);
  // 02:30 local on 25 October happens twice (00:30Z, 01:30Z): the first.
  EXPECT_EQ(LocalToUnix(Utc(2026y / 10 / 25, 2, 30), z), Utc(2026y / 10 / 25, 0, 30));
  // 03:00 local is read once, in winter time.
  EXPECT_EQ(LocalToUnix(Utc(2026y / 10 / 25, 3), z), Utc(2026y / 10 / 25, 2));
}

TEST(BudgetZone, DayAcrossSpringForwardIs23Hours) {
  TimeZone z = Cet();
  WindowSpan d = WindowAt(kDayW, Utc(2026y / 3 / 29, 12), z);
  EXPECT_EQ(d.start_ms, Utc(2026y / 3 / 28, 23));  // 00:00 CET
  EXPECT_EQ(d.end_ms, Utc(2026y / 3 / 29, 22));    // 00:00 CEST
  EXPECT_EQ(d.end_ms - d.start_ms, 23 * kHour);
  // The same window from either side of the change and at its edges.
  EXPECT_EQ(WindowAt(kDayW, kSpring - 1, z), d);
  EXPECT_EQ(WindowAt(kDayW, d.start_ms, z), d);
  EXPECT_EQ(WindowAt(kDayW, d.end_ms - 1, z), d);
  // Its neighbours are 24 h and meet it exactly.
  WindowSpan before = WindowAt(kDayW, d.start_ms - 1, z);
  WindowSpan after = WindowAt(kDayW, d.end_ms, z);
  EXPECT_EQ(before, (WindowSpan{Utc(2026y / 3 / 27, 23), d.start_ms}));
  EXPECT_EQ(after, (WindowSpan{d.end_ms, Utc(2026y / 3 / 30, 22)}));
}

TEST(BudgetZone, DayAcrossFallBackIs25Hours) {
  TimeZone z = Cet();
  WindowSpan d = WindowAt(kDayW, Utc(2026y / 10 / 25, 12), z);
  EXPECT_EQ(d, (WindowSpan{Utc(2026y / 10 / 24, 22), Utc(2026y / 10 / 25, 23)}));
  EXPECT_EQ(d.end_ms - d.start_ms, 25 * kHour);
  // Both passes of the repeated hour are in it.
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 10 / 25, 0, 30), z), d);
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 10 / 25, 1, 30), z), d);
  EXPECT_EQ(WindowAt(kDayW, d.end_ms, z).start_ms, d.end_ms);
}

TEST(BudgetZone, HourAcrossTheRepeatedHour) {
  TimeZone z = Cet();
  // 02:00-03:00 local runs twice; the hour that began first holds both passes.
  WindowSpan two{Utc(2026y / 10 / 25, 0), Utc(2026y / 10 / 25, 2)};
  EXPECT_EQ(WindowAt(kHourW, Utc(2026y / 10 / 25, 0, 30), z), two);
  EXPECT_EQ(WindowAt(kHourW, kFall, z), two);
  EXPECT_EQ(WindowAt(kHourW, Utc(2026y / 10 / 25, 1, 59), z), two);
  EXPECT_EQ(WindowAt(kHourW, two.end_ms, z), (WindowSpan{two.end_ms, two.end_ms + kHour}));
  EXPECT_EQ(WindowAt(kHourW, two.start_ms - 1, z), (WindowSpan{two.start_ms - kHour, two.start_ms}));
  // Spring: 01:00-02:00 CET is followed directly by 03:00 CEST.
  EXPECT_EQ(WindowAt(kHourW, kSpring - 1, z), (WindowSpan{kSpring - kHour, kSpring}));
  EXPECT_EQ(WindowAt(kHourW, kSpring, z), (WindowSpan{kSpring, kSpring + kHour}));
}

TEST(BudgetZone, HourWhoseStartIsReadBeforeAFallBack) {
  // A half-hour-offset clock set back from 03:30 to 02:30: it read 03:00
  // already, so 02:30-03:00 the second time belongs to the hour of 03:00.
  const int64_t change = Utc(2026y / 10 / 25, 1, 30);
  TimeZone z = Zone(7200, {{change, 3600}});
  EXPECT_EQ(WindowAt(kHourW, Utc(2026y / 10 / 25, 0, 45), z),
            (WindowSpan{Utc(2026y / 10 / 25, 0), Utc(2026y / 10 / 25, 1)}));
  WindowSpan three{Utc(2026y / 10 / 25, 1), Utc(2026y / 10 / 25, 3)};
  EXPECT_EQ(WindowAt(kHourW, change - 1, z), three);
  EXPECT_EQ(WindowAt(kHourW, change + 15 * 60'000, z), three);  // 02:45 local, again
  EXPECT_EQ(WindowAt(kHourW, three.end_ms, z).start_ms, three.end_ms);
}

TEST(BudgetZone, WeekAndMonthContainingAChange) {
  TimeZone z = Cet();
  // Monday 23 March 00:00 CET .. Monday 30 March 00:00 CEST.
  WindowSpan w = WindowAt(kWeekW, Utc(2026y / 3 / 25, 12), z);
  EXPECT_EQ(w, (WindowSpan{Utc(2026y / 3 / 22, 23), Utc(2026y / 3 / 29, 22)}));
  EXPECT_EQ(w.end_ms - w.start_ms, 7 * kDay - kHour);
  EXPECT_EQ(WindowAt(kWeekW, w.end_ms, z).start_ms, w.end_ms);
  WindowSpan fall = WindowAt(kWeekW, kFall, z);
  EXPECT_EQ(fall, (WindowSpan{Utc(2026y / 10 / 18, 22), Utc(2026y / 10 / 25, 23)}));
  // March: 1 March 00:00 CET .. 1 April 00:00 CEST; October the other way.
  WindowSpan mar = WindowAt(kMonthW, Utc(2026y / 3 / 31, 21, 59), z);
  EXPECT_EQ(mar, (WindowSpan{Utc(2026y / 2 / 28, 23), Utc(2026y / 3 / 31, 22)}));
  EXPECT_EQ(WindowAt(kMonthW, mar.end_ms, z).start_ms, mar.end_ms);
  WindowSpan oct = WindowAt(kMonthW, Utc(2026y / 10 / 10, 0), z);
  EXPECT_EQ(oct, (WindowSpan{Utc(2026y / 9 / 30, 22), Utc(2026y / 10 / 31, 23)}));
  EXPECT_EQ(oct.end_ms - oct.start_ms, 31 * kDay + kHour);
}

TEST(BudgetZone, ChangesAtMidnight) {
  // DST starting at 00:00 (clock to 01:00): that day starts at 01:00 local.
  const int64_t spring = Utc(2026y / 9 / 6, 4);  // 00:00 at UTC-4
  TimeZone z = Zone(-4 * 3600, {{spring, -3 * 3600}});
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 9 / 6, 12), z), (WindowSpan{spring, Utc(2026y / 9 / 7, 3)}));
  EXPECT_EQ(WindowAt(kDayW, spring - 1, z), (WindowSpan{spring - kDay, spring}));
  EXPECT_EQ(WindowAt(kHourW, spring, z), (WindowSpan{spring, spring + kHour}));  // 01:00-02:00
  // DST ending at 24:00 (clock back to 23:00): the local clock never reads
  // 00:00 at UTC-3, so Saturday lasts until 00:00 at UTC-4, 25 h.
  const int64_t fall = Utc(2026y / 4 / 5, 3);
  TimeZone y = Zone(-3 * 3600, {{fall, -4 * 3600}});
  WindowSpan sat{Utc(2026y / 4 / 4, 3), Utc(2026y / 4 / 5, 4)};
  EXPECT_EQ(WindowAt(kDayW, fall - 1, y), sat);
  EXPECT_EQ(WindowAt(kDayW, fall + kHour / 2, y), sat);  // 23:30 again
  EXPECT_EQ(WindowAt(kDayW, sat.end_ms, y).start_ms, sat.end_ms);
  EXPECT_EQ(WindowAt(kWeekW, fall, y).end_ms, Utc(2026y / 4 / 6, 4));
}

TEST(BudgetZone, NextBoundaryIsExact) {
  auto p = ParseBudgetDescription(
      "budget name=daily window=day limit_credits=400\n"
      "budget name=hourly window=hour limit_credits=100\n");
  ASSERT_TRUE(p.ok());
  BudgetTracker t(*p, Cet());
  // A zoned tracker ignores WallTime's offset.
  EXPECT_EQ(t.NextBoundary(At(Utc(2026y / 10 / 25, 0, 10), 9 * 3600)), Utc(2026y / 10 / 25, 2));
  EXPECT_EQ(t.NextBoundary(At(Utc(2026y / 10 / 25, 2))), Utc(2026y / 10 / 25, 3));
  auto daily = ParseBudgetDescription("budget name=daily window=day limit_credits=400");
  BudgetTracker d(*daily, Cet());
  EXPECT_EQ(d.NextBoundary(At(Utc(2026y / 3 / 29, 12))), Utc(2026y / 3 / 29, 22));
  EXPECT_EQ(d.NextBoundary(At(Utc(2026y / 3 / 29, 22))), Utc(2026y / 3 / 30, 22));
  EXPECT_EQ(d.NextBoundary(At(Utc(2026y / 10 / 25, 12))), Utc(2026y / 10 / 25, 23));
  auto s = d.Status(At(Utc(2026y / 10 / 25, 12)));
  EXPECT_EQ(s[0].resets_at_ms, Utc(2026y / 10 / 25, 23));
}

TEST(BudgetZone, EventsAtTheEdgesOfA23HourDay) {
  BudgetTracker t(Daily(), Cet());
  const int64_t start = Utc(2026y / 3 / 28, 23), end = Utc(2026y / 3 / 29, 22);
  // The change inside the day neither resets it nor moves it.
  EXPECT_TRUE(t.Add(Credits(start, 100), At(start)).empty());
  EXPECT_TRUE(t.Add(Credits(start - 1, 1000), At(start)).empty());  // the day before
  EXPECT_TRUE(t.Advance(At(kSpring)).empty());
  EXPECT_EQ(Kinds(t.Add(Credits(end - 1, 300), At(end - 1))),
            (std::vector{BudgetNotice::Kind::kExhausted}));
  auto s = t.Status(At(end - 1));
  EXPECT_DOUBLE_EQ(s[0].spend.credits, 400);
  EXPECT_EQ(s[0].window, (WindowSpan{start, end}));
  EXPECT_TRUE(t.Advance(At(end - 1)).empty());
  EXPECT_EQ(Kinds(t.Advance(At(end))), (std::vector{BudgetNotice::Kind::kReset}));
  EXPECT_TRUE(t.Add(Credits(end, 50), At(end)).empty());
  EXPECT_DOUBLE_EQ(t.Status(At(end))[0].spend.credits, 50);
}

TEST(BudgetZone, EventsInTheRepeatedHourCountOnce) {
  auto p = ParseBudgetDescription("budget name=hourly window=hour limit_credits=100");
  BudgetTracker t(*p, Cet());
  const int64_t first = Utc(2026y / 10 / 25, 0, 30), again = Utc(2026y / 10 / 25, 1, 30);
  EXPECT_TRUE(t.Add(Credits(first, 60), At(first)).empty());
  EXPECT_TRUE(t.Advance(At(kFall)).empty());  // the clock goes back: same hour
  EXPECT_EQ(Kinds(t.Add(Credits(again, 40), At(again))), (std::vector{BudgetNotice::Kind::kExhausted}));
  EXPECT_EQ(Kinds(t.Advance(At(Utc(2026y / 10 / 25, 2)))), (std::vector{BudgetNotice::Kind::kReset}));
}

TEST(BudgetZone, WindowsMovedWhenTheZoneChanges) {
  auto offset = std::make_shared<int32_t>(3600);
  TimeZone z = [offset](int64_t) { return *offset; };
  BudgetTracker t(Daily(), z);
  const int64_t noon = Utc(2026y / 11 / 24, 12);
  EXPECT_FALSE(t.WindowsMoved(At(noon)));  // nothing counted yet
  t.Add(Credits(noon, 10), At(noon));
  EXPECT_FALSE(t.WindowsMoved(At(noon + kHour)));
  // The window ending is no move: the next starts where it ended.
  EXPECT_FALSE(t.WindowsMoved(At(Utc(2026y / 11 / 24, 23))));
  EXPECT_FALSE(t.WindowsMoved(At(Utc(2026y / 11 / 27, 1))));
  *offset = 9 * 3600;  // the machine moved to UTC+9: its day began at 15:00Z the 23rd
  EXPECT_TRUE(t.WindowsMoved(At(noon + kHour)));
  *offset = -8 * 3600;  // ... or to UTC-8: a day beginning 08:00Z the 24th
  EXPECT_TRUE(t.WindowsMoved(At(noon + kHour)));
}

// The C library's zone, as the launcher reads it, with TZ set for the test.
class RealZone : public ::testing::Test {
 protected:
  void Use(const char* tz) {
    if (const char* old = getenv("TZ")) old_ = old;
    had_ = getenv("TZ") != nullptr;
    setenv("TZ", tz, 1);
    tzset();
  }
  void TearDown() override {
    if (had_) setenv("TZ", old_.c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }
  static TimeZone Local() { return [](int64_t ms) { return meter::LocalUtcOffset(ms); }; }
  std::string old_;
  bool had_ = false;
};

TEST_F(RealZone, BudgetWindowsInEuropeBerlin) {
  if (!std::filesystem::exists("/usr/share/zoneinfo/Europe/Berlin"))
    GTEST_SKIP() << "tzdata is not installed (/usr/share/zoneinfo/Europe/Berlin missing)";
  Use("Europe/Berlin");
  TimeZone z = Local();
  ASSERT_EQ(z(kSpring - 1), 3600);
  ASSERT_EQ(z(kSpring), 7200);
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 3 / 29, 12), z),
            (WindowSpan{Utc(2026y / 3 / 28, 23), Utc(2026y / 3 / 29, 22)}));
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 10 / 25, 12), z),
            (WindowSpan{Utc(2026y / 10 / 24, 22), Utc(2026y / 10 / 25, 23)}));
  EXPECT_EQ(WindowAt(kHourW, Utc(2026y / 10 / 25, 1, 30), z),
            (WindowSpan{Utc(2026y / 10 / 25, 0), Utc(2026y / 10 / 25, 2)}));
  BudgetTracker t(Daily(), z);
  EXPECT_EQ(t.NextBoundary(At(Utc(2026y / 3 / 29, 0, 30))), Utc(2026y / 3 / 29, 22));
  EXPECT_EQ(t.NextBoundary(At(Utc(2026y / 10 / 25, 0, 30))), Utc(2026y / 10 / 25, 23));
}

TEST_F(RealZone, BudgetDayStartsAtOneInAmericaSantiago) {
  if (!std::filesystem::exists("/usr/share/zoneinfo/America/Santiago"))
    GTEST_SKIP() << "tzdata is not installed (/usr/share/zoneinfo/America/Santiago missing)";
  Use("America/Santiago");
  TimeZone z = Local();
  // DST begins on 6 September 2026 at 00:00 -04 (04:00Z): the day starts at 01:00 local.
  if (z(Utc(2026y / 9 / 6, 3)) != -4 * 3600 || z(Utc(2026y / 9 / 6, 4)) != -3 * 3600)
    GTEST_SKIP() << "this tzdata has other rules for Chile in 2026";
  EXPECT_EQ(WindowAt(kDayW, Utc(2026y / 9 / 6, 12), z),
            (WindowSpan{Utc(2026y / 9 / 6, 4), Utc(2026y / 9 / 7, 3)}));
}

}  // namespace
}  // namespace dormant::enforcer
