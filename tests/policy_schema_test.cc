// The schema's building blocks: durations, strictness, suggestions, globs.
#include <gtest/gtest.h>

#include "launcher/policy_schema.h"

namespace dormant::launcher {
namespace {

using enforcer::Duration;
using namespace std::chrono_literals;

Duration Parse(std::string_view text) {
  Duration d{-1};
  std::string error;
  EXPECT_TRUE(ParseDuration(text, &d, &error)) << text << ": " << error;
  return d;
}

std::string ParseError(std::string_view text) {
  Duration d;
  std::string error;
  EXPECT_FALSE(ParseDuration(text, &d, &error)) << text;
  return error;
}

TEST(PolicyDuration, AcceptsUnitsAndCompounds) {
  EXPECT_EQ(Parse("90s"), 90s);
  EXPECT_EQ(Parse("10m"), 10min);
  EXPECT_EQ(Parse("2h"), 2h);
  EXPECT_EQ(Parse("250ms"), 250ms);
  EXPECT_EQ(Parse("1h30m"), 90min);
  EXPECT_EQ(Parse("1d"), 24h);
  EXPECT_EQ(Parse("1m500ms"), 60500ms);
  EXPECT_EQ(Parse("365d"), 365 * 24h);
}

TEST(PolicyDuration, RefusesZeroNegativeAndMalformed) {
  EXPECT_EQ(ParseError("0s"), "duration must be longer than zero");
  EXPECT_EQ(ParseError("0h0m"), "duration must be longer than zero");
  EXPECT_EQ(ParseError("-5m"), "duration must be positive");
  EXPECT_EQ(ParseError("366d"), "duration is longer than 365d");
  EXPECT_EQ(ParseError("99999999999999999999h"), "duration is longer than 365d");
  const std::string hint =
      " (write a whole number and a unit: ms, s, m, h or d, e.g. \"90s\", \"1h30m\")";
  EXPECT_EQ(ParseError(""), "empty duration" + hint);
  EXPECT_EQ(ParseError("10"), "bad duration \"10\": missing unit" + hint);
  EXPECT_EQ(ParseError("10x"), "bad duration \"10x\": unknown unit at \"x\"" + hint);
  EXPECT_EQ(ParseError("1.5h"), "bad duration \"1.5h\": unknown unit at \".5h\"" + hint);
  EXPECT_EQ(ParseError("m"), "bad duration \"m\"" + hint);
  EXPECT_EQ(ParseError("10 m"), "bad duration \"10 m\": unknown unit at \" m\"" + hint);
}

TEST(PolicyDuration, FormatRoundTrips) {
  for (const char* text : {"90s", "10m", "2h", "250ms", "1h30m", "1m500ms"}) {
    Duration d = Parse(text);
    EXPECT_EQ(Parse(enforcer::FormatDuration(d)), d) << text;
  }
  EXPECT_EQ(FormatValue(Value(Duration(90min))), "\"1h30m\"");
}

TEST(PolicyStrictness, LowerDurationsAndUnsetAsInfinite) {
  const KeySpec& suspend = *FindKey("idle.suspend_after");
  EXPECT_TRUE(IsAtLeastAsStrict(suspend, Value(Duration(5min)), Value(Duration(10min))));
  EXPECT_TRUE(IsAtLeastAsStrict(suspend, Value(Duration(10min)), Value(Duration(10min))));
  EXPECT_FALSE(IsAtLeastAsStrict(suspend, Value(Duration(11min)), Value(Duration(10min))));
  const KeySpec& battery = *FindKey("power.battery.suspend_after");
  EXPECT_TRUE(IsAtLeastAsStrict(battery, Value(Duration(1h)), Value()));
  EXPECT_FALSE(IsAtLeastAsStrict(battery, Value(), Value(Duration(1h))));
}

TEST(PolicyStrictness, OrderedEnumsSupersetsAndFixed) {
  const KeySpec& gate = *FindKey("sandbox.gate");
  EXPECT_TRUE(IsAtLeastAsStrict(gate, Value(std::string("on")), Value(std::string("auto"))));
  EXPECT_FALSE(IsAtLeastAsStrict(gate, Value(std::string("off")), Value(std::string("auto"))));
  const KeySpec& wake = *FindKey("power.after_wake");
  EXPECT_FALSE(
      IsAtLeastAsStrict(wake, Value(std::string("resume")), Value(std::string("wait-for-input"))));

  const KeySpec& deny = *FindKey("sandbox.deny_exec");
  enforcer::ProviderMatcher aider{"aider", "aider", {}, {}, {}};
  enforcer::ProviderMatcher curl{"curl", "curl", {}, {}, {}};
  using Matchers = std::vector<enforcer::ProviderMatcher>;
  EXPECT_TRUE(IsAtLeastAsStrict(deny, Value(Matchers{curl, aider}), Value(Matchers{aider})));
  EXPECT_FALSE(IsAtLeastAsStrict(deny, Value(Matchers{curl}), Value(Matchers{aider})));

  const KeySpec& source = *FindKey("idle.source");
  EXPECT_TRUE(IsAtLeastAsStrict(source, Value(std::string("x11")), Value(std::string("x11"))));
  EXPECT_FALSE(IsAtLeastAsStrict(source, Value(std::string("manual")), Value(std::string("x11"))));
}

TEST(PolicyStrictness, NotificationsOnIsStricter) {
  const KeySpec& desktop = *FindKey("notify.desktop");
  EXPECT_TRUE(IsAtLeastAsStrict(desktop, Value(true), Value(true)));
  EXPECT_TRUE(IsAtLeastAsStrict(desktop, Value(true), Value(false)));
  EXPECT_FALSE(IsAtLeastAsStrict(desktop, Value(false), Value(true)));
  EXPECT_EQ(enforcer::Policy().notify.desktop, true);
}

TEST(PolicyStrictness, WiderBudgetWindows) {
  auto w = [](std::string_view text) {
    enforcer::BudgetWindow out;
    std::string error;
    EXPECT_TRUE(ParseBudgetWindow(text, &out, &error)) << text << ": " << error;
    return out;
  };
  // Calendar periods nest: hour in day in week, day in month; week and month do not.
  EXPECT_TRUE(WindowContains(w("day"), w("hour")));
  EXPECT_TRUE(WindowContains(w("week"), w("day")));
  EXPECT_TRUE(WindowContains(w("month"), w("day")));
  EXPECT_TRUE(WindowContains(w("month"), w("hour")));
  EXPECT_FALSE(WindowContains(w("month"), w("week")));
  EXPECT_FALSE(WindowContains(w("week"), w("month")));
  EXPECT_FALSE(WindowContains(w("hour"), w("day")));
  EXPECT_TRUE(WindowContains(w("day"), w("day")));
  // A rolling window holds any interval no longer than itself.
  EXPECT_TRUE(WindowContains(w("5h"), w("2h")));
  EXPECT_FALSE(WindowContains(w("2h"), w("5h")));
  EXPECT_TRUE(WindowContains(w("1h"), w("hour")));
  EXPECT_FALSE(WindowContains(w("24h"), w("day")));  // a DST day lasts 25h
  EXPECT_TRUE(WindowContains(w("25h"), w("day")));
  EXPECT_FALSE(WindowContains(w("7d"), w("week")));
  EXPECT_TRUE(WindowContains(w("7d1h"), w("week")));
  EXPECT_TRUE(WindowContains(w("31d1h"), w("month")));
  EXPECT_FALSE(WindowContains(w("31d"), w("month")));
  EXPECT_FALSE(WindowContains(w("month"), w("1h")));  // a rolling hour straddles months
  const KeySpec& window = *FindKey("budget.window");
  EXPECT_TRUE(IsAtLeastAsStrict(window, Value(std::string("week")), Value(std::string("day"))));
  EXPECT_FALSE(IsAtLeastAsStrict(window, Value(std::string("5h")), Value(std::string("day"))));
}

TEST(PolicyStrictness, RatesFractionsAndLimits) {
  enforcer::Rates locked{125.0, 12.5, 750.0, std::nullopt, std::nullopt, std::nullopt};
  enforcer::Rates all_higher{130.0, 13.0, 800.0, std::nullopt, std::nullopt, std::nullopt};
  enforcer::Rates cheaper_cache{130.0, 10.0, 800.0, std::nullopt, std::nullopt, std::nullopt};
  enforcer::Rates cache_unset{130.0, std::nullopt, 800.0, std::nullopt, std::nullopt, std::nullopt};
  EXPECT_TRUE(RatesAtLeast(all_higher, locked));
  EXPECT_FALSE(RatesAtLeast(cheaper_cache, locked));
  EXPECT_TRUE(RatesAtLeast(cache_unset, locked));  // unset cached input costs the input rate
  EXPECT_FALSE(RatesAtLeast(locked, cache_unset));
  const KeySpec& credits = *FindKey("price.credits");
  EXPECT_TRUE(IsAtLeastAsStrict(credits, Value(all_higher), Value(locked)));
  EXPECT_FALSE(IsAtLeastAsStrict(credits, Value(cheaper_cache), Value(locked)));
  EXPECT_FALSE(IsAtLeastAsStrict(credits, Value(), Value(locked)));

  const KeySpec& warn = *FindKey("budget.warn_at");
  using Fractions = std::vector<double>;
  EXPECT_TRUE(IsAtLeastAsStrict(warn, Value(Fractions{0.5, 0.6, 0.8}), Value(Fractions{0.6, 0.8})));
  EXPECT_FALSE(IsAtLeastAsStrict(warn, Value(Fractions{0.5, 0.8}), Value(Fractions{0.6, 0.8})));

  const KeySpec& limit = *FindKey("budget.limit_credits");
  EXPECT_TRUE(IsAtLeastAsStrict(limit, Value(300.0), Value(400.0)));
  EXPECT_FALSE(IsAtLeastAsStrict(limit, Value(500.0), Value(400.0)));
  EXPECT_TRUE(IsAtLeastAsStrict(limit, Value(1e9), Value()));  // unset: no limit at all
  const KeySpec& tokens = *FindKey("budget.limit_tokens");
  EXPECT_FALSE(IsAtLeastAsStrict(tokens, Value(int64_t{11}), Value(int64_t{10})));
  const KeySpec& on = *FindKey("budget.on_exhausted");
  EXPECT_TRUE(IsAtLeastAsStrict(on, Value(std::string("kill")), Value(std::string("suspend"))));
  EXPECT_FALSE(IsAtLeastAsStrict(on, Value(std::string("suspend")), Value(std::string("kill"))));
}

TEST(PolicySchema, BudgetWindowTexts) {
  enforcer::BudgetWindow w;
  std::string error;
  EXPECT_TRUE(ParseBudgetWindow("month", &w, &error));
  EXPECT_EQ(w.kind, enforcer::BudgetWindow::Kind::kMonth);
  EXPECT_TRUE(ParseBudgetWindow("2d", &w, &error));
  EXPECT_EQ(enforcer::ToString(w), "48h");
  auto same = enforcer::ParseWindow(enforcer::ToString(w));  // the budget model reads it back
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, w);
  EXPECT_FALSE(ParseBudgetWindow("Day", &w, &error));
  EXPECT_EQ(error, "\"Day\" is not hour, day, week, month or a rolling duration such as \"5h\"; did you "
                   "mean `day`?");
  EXPECT_FALSE(ParseBudgetWindow("366d", &w, &error));
  EXPECT_EQ(error, "duration is longer than 365d");
  EXPECT_FALSE(ParseBudgetWindow("", &w, &error));
}

TEST(PolicySuggestions, NearestKnownName) {
  EXPECT_EQ(Nearest("suspend_afer", ChildNames("idle")), "suspend_after");
  EXPECT_EQ(Nearest("idel", ChildNames("")), "idle");
  EXPECT_EQ(Nearest("kill_atfer", ChildNames("idle")), "kill_after");
  EXPECT_EQ(Nearest("zzzzzzzz", ChildNames("idle")), std::nullopt);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(PolicyLocks, GlobPatterns) {
  EXPECT_TRUE(GlobMatch("budget.*", "budget.daily.limit_credits"));
  EXPECT_TRUE(GlobMatch("idle.suspend_after", "idle.suspend_after"));
  EXPECT_FALSE(GlobMatch("idle.suspend_after", "idle.suspend_afterx"));
  EXPECT_TRUE(GlobMatch("provider.*.suspend_after", "provider.codex.suspend_after"));
  EXPECT_FALSE(GlobMatch("provider.*.suspend_after", "provider.codex.kill_after"));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_FALSE(GlobMatch("sandbox.*", "idle.network_after"));
}

TEST(PolicySchema, EveryKeyHasDocsAndAWorkingAccessor) {
  for (const auto& spec : Schema()) {
    SCOPED_TRACE(spec.key);
    EXPECT_FALSE(spec.doc.empty());
    EXPECT_FALSE(spec.example.empty());
    EXPECT_FALSE(spec.unit.empty());
    EXPECT_TRUE(spec.get && spec.set);
    if (spec.type == KeyType::kEnum) {
      EXPECT_GE(spec.choices.size(), 2u);
    }
    if (!spec.fallback.empty()) {
      EXPECT_NE(FindKey(spec.fallback), nullptr);
    }
  }
  EXPECT_TRUE(IsTable("power.battery"));
  EXPECT_TRUE(IsArrayTable("provider"));
  EXPECT_TRUE(IsArrayTable("budget"));
  EXPECT_TRUE(IsArrayTable("price"));
  EXPECT_FALSE(IsArrayTable("budget_idle"));
  EXPECT_TRUE(IsTable("prices.unknown_codex"));
  EXPECT_FALSE(IsTable("idle.suspend_after"));
  for (const ArrayTable& table : ArrayTables()) {
    SCOPED_TRACE(table.table);
    const KeySpec* name = FindField(table, table.name_key);
    ASSERT_NE(name, nullptr);
    EXPECT_TRUE(name->required);
    EXPECT_EQ(name->strict, Strict::kFixed);
    EXPECT_EQ(ArrayTableOf(table.scope), &table);
  }
}

}  // namespace
}  // namespace dormant::launcher
