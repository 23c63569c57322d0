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
  EXPECT_FALSE(IsTable("idle.suspend_after"));
}

}  // namespace
}  // namespace dormant::launcher
