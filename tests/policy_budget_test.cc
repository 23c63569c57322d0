// Budgets, the idle budget, the plan limit and prices in the policy: loading,
// every bad value's message, merging by name across layers, locks that only
// tighten, and `policy show` printing them so that they load back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "launcher/policy_cli.h"
#include "launcher/policy_loader.h"
#include "launcher/policy_schema.h"

namespace dormant::launcher {
namespace {

using namespace std::chrono_literals;
using enforcer::BudgetWindow;
using Kind = LayerSource::Kind;
using Lines = std::vector<std::string>;

Lines Strings(const std::vector<Diagnostic>& ds) {
  Lines out;
  for (const auto& d : ds) out.push_back(d.ToString());
  return out;
}

LoadedPolicy LoadText(const std::string& text, const Lines& sets = {}) {
  std::vector<LayerSource> layers = {{Kind::kText, "p.toml", text, 5, false, false}};
  for (const auto& s : sets) layers.push_back({Kind::kSet, "--set", s, 6, false, false});
  return LoadLayers(layers);
}

Lines Errors(const std::string& text, const Lines& sets = {}) { return Strings(LoadText(text, sets).errors); }

// An admin file (which may lock) and a user file on top of it.
LoadedPolicy Stack(const std::string& admin, const std::string& user, const Lines& sets = {}) {
  std::vector<LayerSource> layers = {{Kind::kText, "admin.toml", admin, 2, true, false},
                                     {Kind::kText, "user.toml", user, 4, false, false}};
  for (const auto& s : sets) layers.push_back({Kind::kSet, "--set", s, 6, false, false});
  return LoadLayers(layers);
}

const enforcer::Budget* FindBudget(const LoadedPolicy& p, const std::string& name) {
  for (const auto& b : p.policy.budget.budgets) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

const enforcer::ModelPrice* FindPrice(const LoadedPolicy& p, const std::string& match) {
  for (const auto& m : p.policy.budget.prices.models) {
    if (m.match == match) return &m;
  }
  return nullptr;
}

Lines Matches(const LoadedPolicy& p) {
  Lines out;
  for (const auto& m : p.policy.budget.prices.models) out.push_back(m.match);
  return out;
}

const char kIssueExample[] = R"([[budget]]
name = "daily"
window = "day"
scope = "all"
limit_credits = 400
warn_at = [0.6, 0.8]
on_exhausted = "kill"
lockout = true
[budget_idle]
limit_tokens = 0
[plan]
max_used_percent = 90
)";

TEST(PolicyBudget, TheIssueExampleReachesTheModel) {
  LoadedPolicy p = LoadText(kIssueExample);
  ASSERT_EQ(Strings(p.errors), Lines{});
  const auto& b = p.policy.budget;
  ASSERT_EQ(b.budgets.size(), 1u);
  EXPECT_EQ(b.budgets[0].name, "daily");
  EXPECT_EQ(b.budgets[0].window, (BudgetWindow{BudgetWindow::Kind::kDay, {}}));
  EXPECT_EQ(b.budgets[0].scope, enforcer::BudgetScope::kAll);
  EXPECT_EQ(b.budgets[0].limit_credits, 400.0);
  EXPECT_FALSE(b.budgets[0].limit_usd);
  EXPECT_FALSE(b.budgets[0].limit_tokens);
  EXPECT_EQ(b.budgets[0].warn_at, (std::vector<double>{0.6, 0.8}));
  EXPECT_EQ(b.budgets[0].on_exhausted, enforcer::OnExhausted::kKill);
  EXPECT_TRUE(b.budgets[0].lockout);
  ASSERT_TRUE(b.idle);
  EXPECT_EQ(b.idle->limit_tokens, 0);
  EXPECT_FALSE(b.idle->limit_credits);
  ASSERT_TRUE(b.plan);
  EXPECT_EQ(b.plan->max_used_percent, 90.0);
  EXPECT_EQ(p.OriginOf("budget.daily.limit_credits").Where(), "p.toml:5:17");
  EXPECT_EQ(p.OriginOf("budget_idle.limit_tokens").Where(), "p.toml:10:16");

  // What the budget model itself makes of the same description.
  auto same = enforcer::MakeBudget({{"name", "daily"}, {"window", "day"}, {"limit_credits", "400"},
                                    {"warn_at", "0.6,0.8"}, {"on_exhausted", "kill"}});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->warn_at, b.budgets[0].warn_at);
  EXPECT_EQ(same->window, b.budgets[0].window);
}

TEST(PolicyBudget, DefaultsHaveNoBudgetsAndTheShippedPrices) {
  LoadedPolicy p = LoadLayers({});
  EXPECT_TRUE(p.policy.budget.budgets.empty());
  EXPECT_FALSE(p.policy.budget.idle);
  EXPECT_FALSE(p.policy.budget.plan);
  enforcer::PriceTable shipped = enforcer::DefaultPriceTable();
  ASSERT_EQ(p.policy.budget.prices.models.size(), shipped.models.size());
  Lines matches;
  for (const auto& m : shipped.models) matches.push_back(m.match);
  EXPECT_EQ(Matches(p), matches);
}

TEST(PolicyBudget, WindowsCalendarAndRolling) {
  LoadedPolicy p = LoadText(
      "[[budget]]\nname = \"a\"\nwindow = \"hour\"\nlimit_usd = 1\n"
      "[[budget]]\nname = \"b\"\nwindow = \"5h\"\nlimit_usd = 1.5\n"
      "[[budget]]\nname = \"c\"\nwindow = \"1h30m\"\nlimit_tokens = 1000\n"
      "[[budget]]\nname = \"d\"\nwindow = \"month\"\nlimit_credits = 0\n");
  ASSERT_EQ(Strings(p.errors), Lines{});
  ASSERT_EQ(p.policy.budget.budgets.size(), 4u);
  EXPECT_EQ(p.policy.budget.budgets[0].window.kind, BudgetWindow::Kind::kHour);
  EXPECT_EQ(p.policy.budget.budgets[1].window, (BudgetWindow{BudgetWindow::Kind::kRolling, 5h}));
  EXPECT_EQ(p.policy.budget.budgets[2].window.rolling, 90min);
  EXPECT_EQ(p.policy.budget.budgets[3].window.kind, BudgetWindow::Kind::kMonth);
  EXPECT_EQ(p.policy.budget.budgets[3].limit_credits, 0.0);  // nothing at all may be spent
}

TEST(PolicyBudget, EveryBadBudgetValueIsNamed) {
  const std::string head = "[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_credits = 5\n";
  const std::string hint = " (write a whole number and a unit: ms, s, m, h or d, e.g. \"90s\", \"1h30m\")";
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_credits = -5\n"),
            Lines{"p.toml:4:17: budget.d.limit_credits: must be at least 0.0"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_usd = -0.5\n"),
            Lines{"p.toml:4:13: budget.d.limit_usd: must be at least 0.0"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_tokens = -1\n"),
            Lines{"p.toml:4:16: budget.d.limit_tokens: must be at least 0.0"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_tokens = 1.5\n"),
            Lines{"p.toml:4:16: budget.d.limit_tokens: expected an integer, got a number"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_credits = inf\n"),
            Lines{"p.toml:4:17: budget.d.limit_credits: must be a finite number"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_usd = nan\n"),
            Lines{"p.toml:4:13: budget.d.limit_usd: must be a finite number"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_credits = \"400\"\n"),
            Lines{"p.toml:4:17: budget.d.limit_credits: expected a number, got a string"});
  EXPECT_EQ(Errors(head + "warn_at = [0.5, 1.2]\n"),
            Lines{"p.toml:5:17: budget.d.warn_at: a warning is a fraction of the limit, between 0 and 1 "
                  "(exclusive); got 1.2"});
  EXPECT_EQ(Errors(head + "warn_at = [0]\n"),
            Lines{"p.toml:5:12: budget.d.warn_at: a warning is a fraction of the limit, between 0 and 1 "
                  "(exclusive); got 0"});
  EXPECT_EQ(Errors(head + "warn_at = [1]\n"),
            Lines{"p.toml:5:12: budget.d.warn_at: a warning is a fraction of the limit, between 0 and 1 "
                  "(exclusive); got 1"});
  EXPECT_EQ(Errors(head + "warn_at = 0.8\n"),
            Lines{"p.toml:5:11: budget.d.warn_at: expected an array of fractions such as [0.6, 0.8], got "
                  "a number"});
  EXPECT_EQ(Errors(head + "warn_at = [\"80%\"]\n"),
            Lines{"p.toml:5:12: budget.d.warn_at: expected a number in the array, got a string"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"fortnight\"\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: \"fortnight\" is not hour, day, week, month or a rolling "
                  "duration such as \"5h\""});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"dya\"\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: \"dya\" is not hour, day, week, month or a rolling "
                  "duration such as \"5h\"; did you mean `day`?"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"5x\"\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: bad duration \"5x\": unknown unit at \"x\"" + hint});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"0h\"\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: duration must be longer than zero"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"1500ms\"\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: a rolling window is a whole number of seconds, got "
                  "\"1500ms\""});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = 24\nlimit_credits = 5\n"),
            Lines{"p.toml:3:10: budget.d.window: expected a string: hour, day, week, month or a duration "
                  "such as \"5h\", got an integer"});
  EXPECT_EQ(Errors(head + "scope = \"everything\"\n"),
            Lines{"p.toml:5:9: budget.d.scope: \"everything\" is not one of supervised, all"});
  EXPECT_EQ(Errors(head + "on_exhausted = \"kil\"\n"),
            Lines{"p.toml:5:16: budget.d.on_exhausted: \"kil\" is not one of suspend, kill; did you mean "
                  "`kill`?"});
  EXPECT_EQ(Errors(head + "lockout = \"yes\"\n"),
            Lines{"p.toml:5:11: budget.d.lockout: expected true or false, got a string"});
  EXPECT_EQ(Errors(head + "limit_credit = 5\n"),
            Lines{"p.toml:5:1: budget.d.limit_credit: unknown key `limit_credit` in [[budget]]; did you "
                  "mean `limit_credits`?"});
  EXPECT_EQ(Errors(head + "limit = 5\n"),
            Lines{"p.toml:5:1: budget.d.limit: unknown key `limit` in [[budget]]"});
}

TEST(PolicyBudget, BudgetsNeedANameAWindowAndALimit) {
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\n"),
            Lines{"p.toml:2:8: budget.d.name: budget \"d\" needs a limit: one of limit_credits, limit_usd, "
                  "limit_tokens"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nlimit_credits = 5\n"),
            Lines{"p.toml:2:8: budget.d.name: budget \"d\" needs a `window`"});
  EXPECT_EQ(Errors("[[budget]]\nwindow = \"day\"\nlimit_credits = 5\n"),
            Lines{"p.toml:1:1: budget: a [[budget]] needs a `name`"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"my budget\"\n"),
            Lines{"p.toml:2:8: budget.name: \"my budget\" is not a name (use letters, digits, '_' and "
                  "'-')"});
  EXPECT_EQ(Errors("[[budget]]\nname = \"d\"\nwindow = \"day\"\nlimit_usd = 1\n"
                   "[[budget]]\nname = \"d\"\nwindow = \"week\"\nlimit_usd = 2\n"),
            Lines{"p.toml:6:8: budget.d: budget \"d\" is defined twice in this file (first at line 2)"});
  EXPECT_EQ(Errors("[budget]\nname = \"d\"\n"),
            Lines{"p.toml:1:2: budget: `budget` is an array of tables: write [[budget]]"});
  EXPECT_EQ(Errors("[[budgets]]\nname = \"d\"\n"),
            Lines{"p.toml:1:3: budgets: unknown key `budgets`; did you mean `budget`?"});
}

TEST(PolicyBudget, BadIdleBudgetAndPlanValues) {
  EXPECT_EQ(Errors("[budget_idle]\nlimit_tokens = -3\n"),
            Lines{"p.toml:2:16: budget_idle.limit_tokens: must be at least 0.0"});
  EXPECT_EQ(Errors("[budget_idle]\nlimit_credit = 0\n"),
            Lines{"p.toml:2:1: budget_idle.limit_credit: unknown key `limit_credit` in [budget_idle]; did "
                  "you mean `limit_credits`?"});
  EXPECT_EQ(Errors("[plan]\nmax_used_percent = 120\n"),
            Lines{"p.toml:2:20: plan.max_used_percent: must be at least 0.0 and at most 100.0"});
  EXPECT_EQ(Errors("[plan]\nmax_used_percent = -1\n"),
            Lines{"p.toml:2:20: plan.max_used_percent: must be at least 0.0 and at most 100.0"});
  EXPECT_EQ(Errors("[plan]\nmax_used_percent = \"90%\"\n"),
            Lines{"p.toml:2:20: plan.max_used_percent: expected a number, got a string"});
  // An empty table sets nothing: no idle budget, no plan limit.
  LoadedPolicy p = LoadText("[budget_idle]\n[plan]\n");
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_FALSE(p.policy.budget.idle);
  EXPECT_FALSE(p.policy.budget.plan);
}

TEST(PolicyBudget, PricesOverrideAndExtendTheShippedTable) {
  LoadedPolicy p = LoadText(R"([[price]]
match = "gpt-5.5"
credits = { input = 100, output = 600 }
usd = { input = 1.25, cached_input = 0.125, output = 10 }

[[price]]
match = "gpt-5.5-mini"
credits = { input = 25, cached_input = 2.5, output = 150 }

[[price]]
match = "my-local-model"
usd = { input = 0, output = 0 }

[prices]
fast_multiplier = 2.5
[prices.unknown_codex]
credits = { input = 200, output = 1000 }
)");
  ASSERT_EQ(Strings(p.errors), Lines{});
  const auto& prices = p.policy.budget.prices;
  const enforcer::ModelPrice* gpt = FindPrice(p, "gpt-5.5");
  ASSERT_NE(gpt, nullptr);
  EXPECT_EQ(gpt->credits->input, 100);
  EXPECT_FALSE(gpt->credits->cached_input);  // a rate table is replaced whole
  EXPECT_EQ(gpt->usd->output, 10);
  // The more specific match goes before the general one, a new one at the end.
  Lines matches = Matches(p);
  ASSERT_GE(matches.size(), 3u);
  EXPECT_EQ(matches[0], "gpt-5.5-mini");
  EXPECT_EQ(matches[1], "gpt-5.5");
  EXPECT_EQ(matches.back(), "my-local-model");
  EXPECT_EQ(prices.fast_multiplier, 2.5);
  EXPECT_EQ(prices.fallback_codex.credits->input, 200);
  EXPECT_TRUE(prices.fallback_claude.usd);  // untouched

  // And the prices price: 1M input, 1M output of each.
  enforcer::TokenCounts t;
  t.input = 1'000'000;
  t.output = 1'000'000;
  t.total = 2'000'000;
  EXPECT_DOUBLE_EQ(enforcer::PriceUsage(prices, "gpt-5.5-mini-2026", t, true, false).credits, 175);
  EXPECT_DOUBLE_EQ(enforcer::PriceUsage(prices, "GPT-5.5", t, true, false).credits, 700);
  EXPECT_DOUBLE_EQ(enforcer::PriceUsage(prices, "gpt-5.5", t, true, true).credits, 1750);
  auto unknown = enforcer::PriceUsage(prices, "o9", t, true, false);
  EXPECT_TRUE(unknown.unknown_model);
  EXPECT_DOUBLE_EQ(unknown.credits, 1200);
}

TEST(PolicyBudget, EveryBadPriceValueIsNamed) {
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\ncredits = { input = 1 }\n"),
            Lines{"p.toml:3:11: price.x.credits: a table of rates needs `input` and `output` (other kinds "
                  "fall back to them)"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\ncredits = { input = -1, output = 2 }\n"),
            Lines{"p.toml:3:21: price.x.credits.input: a price must be a finite number at least 0.0"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\ncredits = { input = 1, output = 2, cached = 1 }\n"),
            Lines{"p.toml:3:36: price.x.credits.cached: unknown token kind `cached` (one of input, "
                  "cached_input, output, cache_write, cache_read, cache_write_1h)"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\ncredits = { input = 1, outptu = 2 }\n"),
            Lines{"p.toml:3:24: price.x.credits.outptu: unknown token kind `outptu` (one of input, "
                  "cached_input, output, cache_write, cache_read, cache_write_1h); did you mean `output`?"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\ncredits = { input = \"1\", output = 2 }\n"),
            Lines{"p.toml:3:21: price.x.credits.input: expected a number, got a string"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\nusd = 3\n"),
            Lines{"p.toml:3:7: price.x.usd: expected a table of prices per million tokens such as "
                  "{ input = 1.25, output = 10 }, got an integer"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\n"),
            Lines{"p.toml:2:9: price.x.match: [[price]] \"x\" needs `credits` or `usd`"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"gpt 5\"\n"),
            Lines{"p.toml:2:9: price.match: \"gpt 5\" is not part of a model name (use letters, digits, "
                  "'.', '_' and '-')"});
  EXPECT_EQ(Errors("[[price]]\nname = \"x\"\n"), Lines{"p.toml:1:1: price: a [[price]] needs a `match`"});
  EXPECT_EQ(Errors("[[price]]\nmatch = \"x\"\nusd = { input = 1, output = 1 }\ncredit = {}\n"),
            Lines{"p.toml:4:1: price.x.credit: unknown key `credit` in [[price]]; did you mean `credits`?"});
  EXPECT_EQ(Errors("[prices]\nfast_multiplier = 0.5\n"),
            Lines{"p.toml:2:19: prices.fast_multiplier: must be at least 1.0 and at most 1000.0"});
  EXPECT_EQ(Errors("[prices.unknown_claude]\nusd = { output = 1 }\n"),
            Lines{"p.toml:2:7: prices.unknown_claude.usd: a table of rates needs `input` and `output` "
                  "(other kinds fall back to them)"});
}

TEST(PolicyBudget, SetOverridesForBudgetsAndPrices) {
  LoadedPolicy p = LoadText(kIssueExample, {"budget.daily.limit_credits=250", "budget.daily.window=5h",
                                            "budget.weekly.window=week", "budget.weekly.limit_usd=20",
                                            "budget_idle.limit_usd=0.25", "plan.max_used_percent=75",
                                            "price.gpt-5.5.credits={input=100, output=500}",
                                            "budget.daily.warn_at=[0.9, 0.5]"});
  ASSERT_EQ(Strings(p.errors), Lines{});
  const enforcer::Budget* daily = FindBudget(p, "daily");
  ASSERT_NE(daily, nullptr);
  EXPECT_EQ(daily->limit_credits, 250.0);
  EXPECT_EQ(daily->window.rolling, 5h);
  EXPECT_EQ(daily->warn_at, (std::vector<double>{0.5, 0.9}));
  const enforcer::Budget* weekly = FindBudget(p, "weekly");
  ASSERT_NE(weekly, nullptr);
  EXPECT_EQ(weekly->limit_usd, 20.0);
  EXPECT_EQ(p.policy.budget.idle->limit_usd, 0.25);
  EXPECT_EQ(p.policy.budget.idle->limit_tokens, 0);
  EXPECT_EQ(p.policy.budget.plan->max_used_percent, 75.0);
  EXPECT_EQ(FindPrice(p, "gpt-5.5")->credits->output, 500);
  EXPECT_EQ(p.OriginOf("price.gpt-5.5.credits").Where(), "--set:7:23");

  EXPECT_EQ(Errors("", {"budget.x.limit_credits=5"}),
            Lines{"--set:1:24: budget.x.name: budget \"x\" needs a `window`"});
  EXPECT_EQ(Errors("", {"budget.daily=5"}),
            Lines{"--set:1:1: budget.daily: a budget key is budget.NAME.FIELD, e.g. "
                  "budget.daily.limit_credits"});
  EXPECT_EQ(Errors("", {"budget.d.name=x"}),
            Lines{"--set:1:1: budget.d.name: a budget's name is part of its key (budget.NAME.FIELD) and "
                  "cannot be set"});
  EXPECT_EQ(Errors("", {"budget.d.limt_usd=5"}),
            Lines{"--set:1:1: budget.d.limt_usd: unknown key `limt_usd` in [[budget]]; did you mean "
                  "`limit_usd`?"});
  EXPECT_EQ(Errors(kIssueExample, {"budget.daily.limit_credits=-1"}),
            Lines{"--set:1:28: budget.daily.limit_credits: must be at least 0.0"});
  EXPECT_EQ(Errors("", {"price.gpt 5.usd={input=1,output=1}"}),
            Lines{"--set:1:17: price.gpt 5.usd: \"gpt 5\" is not part of a model name (use letters, "
                  "digits, '.', '_' and '-')"});
}

TEST(PolicyBudget, LayersMergeBudgetsByName) {
  LoadedPolicy p = Stack(kIssueExample,
                         "[[budget]]\nname = \"daily\"\nlimit_usd = 30\nwarn_at = [0.9]\n"
                         "[[budget]]\nname = \"mine\"\nwindow = \"week\"\nlimit_tokens = 5000000\n");
  ASSERT_EQ(Strings(p.errors), Lines{});
  ASSERT_EQ(p.policy.budget.budgets.size(), 2u);
  const enforcer::Budget& daily = p.policy.budget.budgets[0];
  EXPECT_EQ(daily.limit_credits, 400.0);  // kept from the admin file
  EXPECT_EQ(daily.limit_usd, 30.0);       // added by the user
  EXPECT_EQ(daily.warn_at, std::vector<double>{0.9});  // replaced whole (no lock)
  EXPECT_EQ(p.OriginOf("budget.daily.window").Where(), "admin.toml:3:10");
  EXPECT_EQ(p.OriginOf("budget.daily.limit_usd").Where(), "user.toml:3:13");
  EXPECT_EQ(p.policy.budget.budgets[1].name, "mine");
}

const char kLockedAdmin[] = R"([[budget]]
name = "daily"
window = "day"
scope = "all"
limit_credits = 400
warn_at = [0.6, 0.8]
on_exhausted = "kill"
lockout = true
[budget_idle]
limit_tokens = 0
[plan]
max_used_percent = 90
[lock]
keys = ["budget.*", "budget_idle.*", "plan.*", "price*"]
)";

TEST(PolicyBudget, ALockedBudgetOnlyTightens) {
  LoadedPolicy p = Stack(kLockedAdmin, R"([[budget]]
name = "daily"
limit_credits = 4000
window = "hour"
scope = "supervised"
warn_at = [0.9]
on_exhausted = "suspend"
lockout = false
[budget_idle]
limit_tokens = 100000
[plan]
max_used_percent = 100
)");
  ASSERT_EQ(Strings(p.errors), Lines{});
  const enforcer::Budget& daily = p.policy.budget.budgets.at(0);
  EXPECT_EQ(daily.limit_credits, 400.0);
  EXPECT_EQ(daily.window.kind, BudgetWindow::Kind::kDay);
  EXPECT_EQ(daily.scope, enforcer::BudgetScope::kAll);
  EXPECT_EQ(daily.warn_at, (std::vector<double>{0.6, 0.8}));
  EXPECT_EQ(daily.on_exhausted, enforcer::OnExhausted::kKill);
  EXPECT_TRUE(daily.lockout);
  EXPECT_EQ(p.policy.budget.idle->limit_tokens, 0);
  EXPECT_EQ(p.policy.budget.plan->max_used_percent, 90.0);
  // toml++ hands a table's keys over sorted by name: notices come in that order.
  EXPECT_EQ(Strings(p.notices),
            (Lines{"user.toml:3:17: budget.daily.limit_credits: not applied: 4000.0 is looser than 400.0, "
                   "and budget.daily.limit_credits is locked by admin.toml:14:9",
                   "user.toml:8:11: budget.daily.lockout: not applied: false is looser than true, and "
                   "budget.daily.lockout is locked by admin.toml:14:9",
                   "user.toml:7:16: budget.daily.on_exhausted: not applied: \"suspend\" is looser than "
                   "\"kill\", and budget.daily.on_exhausted is locked by admin.toml:14:9",
                   "user.toml:5:9: budget.daily.scope: not applied: \"supervised\" is looser than \"all\", "
                   "and budget.daily.scope is locked by admin.toml:14:9",
                   "user.toml:6:11: budget.daily.warn_at: not applied: [0.9] is looser than [0.6, 0.8], and "
                   "budget.daily.warn_at is locked by admin.toml:14:9",
                   "user.toml:4:10: budget.daily.window: not applied: \"hour\" is looser than \"day\", and "
                   "budget.daily.window is locked by admin.toml:14:9",
                   "user.toml:10:16: budget_idle.limit_tokens: not applied: 100000 is looser than 0, and "
                   "budget_idle.limit_tokens is locked by admin.toml:14:21",
                   "user.toml:12:20: plan.max_used_percent: not applied: 100.0 is looser than 90.0, and "
                   "plan.max_used_percent is locked by admin.toml:14:38"}));
}

TEST(PolicyBudget, StricterChangesToALockedBudgetApply) {
  LoadedPolicy p = Stack(kLockedAdmin, R"([[budget]]
name = "daily"
limit_credits = 300
limit_usd = 20
window = "week"
warn_at = [0.5, 0.6, 0.8]
[budget_idle]
limit_credits = 1
[plan]
max_used_percent = 80
[[budget]]
name = "own"
window = "1h"
limit_credits = 1000
lockout = false
)",
                         {"budget.own.limit_credits=2000"});
  ASSERT_EQ(Strings(p.errors), Lines{});
  const enforcer::Budget& daily = p.policy.budget.budgets.at(0);
  EXPECT_EQ(daily.limit_credits, 300.0);
  EXPECT_EQ(daily.limit_usd, 20.0);  // unset was "no limit": any limit is stricter
  EXPECT_EQ(daily.window.kind, BudgetWindow::Kind::kWeek);
  EXPECT_EQ(daily.warn_at, (std::vector<double>{0.5, 0.6, 0.8}));
  EXPECT_EQ(p.policy.budget.idle->limit_credits, 1.0);
  EXPECT_EQ(p.policy.budget.plan->max_used_percent, 80.0);
  // A budget the user adds is theirs (no locked value to keep)... until the next layer.
  const enforcer::Budget* own = FindBudget(p, "own");
  ASSERT_NE(own, nullptr);
  EXPECT_FALSE(own->lockout);
  EXPECT_EQ(own->limit_credits, 1000.0);
  EXPECT_EQ(Strings(p.notices),
            Lines{"--set:1:26: budget.own.limit_credits: not applied: 2000.0 is looser than 1000.0, and "
                  "budget.own.limit_credits is locked by admin.toml:14:9"});
}

TEST(PolicyBudget, LockedPricesOnlyGoUp) {
  LoadedPolicy p = Stack(kLockedAdmin, R"([[price]]
match = "gpt-5.5"
credits = { input = 1, output = 1 }
[[price]]
match = "sonnet"
usd = { input = 4, output = 20, cache_write = 5, cache_read = 0.4, cache_write_1h = 8 }
[prices]
fast_multiplier = 1.5
[prices.unknown_codex]
credits = { input = 125, output = 750 }
)");
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(FindPrice(p, "gpt-5.5")->credits->input, 125);  // lower: kept
  EXPECT_EQ(FindPrice(p, "sonnet")->usd->input, 4);         // every kind higher: applied
  EXPECT_EQ(p.policy.budget.prices.fast_multiplier, 2.0);
  // cached_input unset means "at the input rate", 125 > 12.5: stricter.
  EXPECT_FALSE(p.policy.budget.prices.fallback_codex.credits->cached_input);
  Lines keys;
  for (const auto& n : p.notices) keys.push_back(n.key);
  EXPECT_EQ(keys, (Lines{"price.gpt-5.5.credits", "prices.fast_multiplier"}));
}

TEST(PolicyBudget, ANewPriceCannotUndercutLockedOnes) {
  // Cheaper than what it would take models from: dropped, with a notice.
  LoadedPolicy p = Stack(kLockedAdmin, "[[price]]\nmatch = \"gpt-5.5-mini\"\n"
                                       "credits = { input = 1, output = 1 }\n"
                                       "[[price]]\nmatch = \"gpt\"\ncredits = { input = 1, output = 1 }\n");
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(FindPrice(p, "gpt-5.5-mini"), nullptr);
  EXPECT_EQ(FindPrice(p, "gpt"), nullptr);
  EXPECT_EQ(Matches(p).size(), enforcer::DefaultPriceTable().models.size());
  EXPECT_EQ(p.OriginOf("price.gpt.credits").Where(), "(built-in)");
  EXPECT_EQ(Strings(p.notices),
            (Lines{"user.toml:5:9: price.gpt: not applied: [[price]] \"gpt\" would price models below "
                   "prices.unknown_codex.credits, and price.gpt.match is locked by admin.toml:14:48",
                   "user.toml:2:9: price.gpt-5.5-mini: not applied: [[price]] \"gpt-5.5-mini\" would price "
                   "models below [[price]] \"gpt-5.5\" (credits), and price.gpt-5.5-mini.match is locked by "
                   "admin.toml:14:48"}));

  // Dearer than everything after it, in both currencies: applied.
  p = Stack(kLockedAdmin, "[[price]]\nmatch = \"gpt\"\ncredits = { input = 200, output = 1000 }\n"
                          "usd = { input = 10, output = 50 }\n");
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_TRUE(p.notices.empty()) << Strings(p.notices)[0];
  ASSERT_NE(FindPrice(p, "gpt"), nullptr);
  EXPECT_EQ(Matches(p).back(), "gpt");
}

TEST(PolicyBudget, ShowPrintsBudgetsAndPricesThatLoadBack) {
  LoadedPolicy p = Stack(kLockedAdmin, "[[budget]]\nname = \"own\"\nwindow = \"90m\"\nlimit_usd = 2.5\n"
                                       "[[price]]\nmatch = \"gpt-5.5-mini\"\n"
                                       "credits = { input = 300, cached_input = 30, output = 1500 }\n"
                                       "usd = { input = 40, output = 100 }\n",
                         {"budget.daily.limit_credits=1e9"});
  ASSERT_EQ(Strings(p.errors), Lines{});
  ASSERT_EQ(p.notices.size(), 1u);
  std::string toml = FormatPolicyToml(p, false);
  EXPECT_NE(toml.find("[[budget]]\nname = \"daily\"  # locked by admin.toml:14:9\nwindow = \"day\"  # locked "
                      "by admin.toml:14:9\nscope = \"all\"  # locked by admin.toml:14:9\n"
                      "limit_credits = 400.0  # locked by admin.toml:14:9\n"),
            std::string::npos)
      << toml;
  EXPECT_NE(toml.find("[[budget]]\nname = \"own\"  # locked by admin.toml:14:9\nwindow = \"1h30m\""),
            std::string::npos)
      << toml;
  EXPECT_NE(toml.find("warn_at = [0.6, 0.8]"), std::string::npos) << toml;
  EXPECT_NE(toml.find("[budget_idle]\n# limit_credits is not set\n# limit_usd is not set\nlimit_tokens = 0"),
            std::string::npos)
      << toml;
  EXPECT_NE(toml.find("[[price]]\nmatch = \"gpt-5.5-mini\"  # locked by admin.toml:14:48\ncredits = { input = "
                      "300.0, cached_input = 30.0, output = 1500.0 }"),
            std::string::npos)
      << toml;
  EXPECT_NE(toml.find("[prices.unknown_codex]\ncredits = { input = 125.0, cached_input = 12.5, output = "
                      "750.0 }"),
            std::string::npos)
      << toml;
  EXPECT_LT(toml.find("match = \"gpt-5.5-mini\""), toml.find("match = \"gpt-5.5\""));

  // Loaded back as a plain file, the same policy.
  LoadedPolicy again = LoadLayers({{Kind::kText, "shown.toml", toml, 5, false, false}});
  ASSERT_EQ(Strings(again.errors), Lines{}) << toml;
  EXPECT_EQ(FormatPolicyJson(again, false), FormatPolicyJson(p, false));

  auto j = nlohmann::json::parse(FormatPolicyJson(p, false));
  EXPECT_EQ(j["budget"][0]["name"], "daily");
  EXPECT_EQ(j["budget"][0]["limit_credits"], 400.0);
  EXPECT_EQ(j["budget"][0]["limit_usd"], nullptr);
  EXPECT_EQ(j["budget"][0]["warn_at"], nlohmann::json::parse("[0.6, 0.8]"));
  EXPECT_EQ(j["budget"][1]["window"], "1h30m");
  EXPECT_EQ(j["budget_idle"]["limit_tokens"], 0);
  EXPECT_EQ(j["plan"]["max_used_percent"], 90.0);
  EXPECT_EQ(j["price"][0]["match"], "gpt-5.5-mini");
  EXPECT_EQ(j["price"][0]["credits"]["cached_input"], 30.0);
  EXPECT_EQ(j["prices"]["fast_multiplier"], 2.0);
  EXPECT_EQ(j["prices"]["unknown_claude"]["usd"]["cache_write_1h"], 10.0);

  auto o = nlohmann::json::parse(FormatPolicyJson(p, true));
  EXPECT_EQ(o["origin"]["budget.own.window"]["file"], "user.toml");
  EXPECT_EQ(o["origin"]["budget.daily.limit_credits"]["locked_by"]["line"], 14);
  EXPECT_EQ(o["origin"]["price.gpt-5.5-mini.usd"]["line"], 8);

  std::string origin = FormatPolicyToml(p, true);
  EXPECT_NE(origin.find("admin.toml:5:17\tbudget.daily.limit_credits = 400.0\t[locked by admin.toml:14:9]\n"),
            std::string::npos)
      << origin;
  EXPECT_NE(origin.find("user.toml:3:10\tbudget.own.window = \"1h30m\""), std::string::npos) << origin;
  EXPECT_NE(origin.find("(built-in)\tprice.sonnet.usd = { input = 3.0"), std::string::npos) << origin;
}

}  // namespace
}  // namespace dormant::launcher
