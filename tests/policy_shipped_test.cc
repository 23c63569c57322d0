// Every shipped policy file loads clean; the fleet example works as a system
// directory; docs/policy.md and the schema agree, both ways.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "launcher/policy_cli.h"
#include "launcher/policy_loader.h"
#include "launcher/policy_schema.h"

namespace dormant::launcher {
namespace {

using namespace std::chrono_literals;
using Kind = LayerSource::Kind;
using Lines = std::vector<std::string>;

const std::string kSource = DORMANT_SOURCE_DIR;

Lines Strings(const std::vector<Diagnostic>& ds) {
  Lines out;
  for (const auto& d : ds) out.push_back(d.ToString());
  return out;
}

Lines ShippedFiles() {
  Lines files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(kSource + "/policies")) {
    if (e.is_regular_file() && e.path().extension() == ".toml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A shipped file as it is used: a fleet drop-in on top of the fleet's admin file.
LoadedPolicy LoadFile(const std::string& path) {
  std::vector<LayerSource> layers;
  if (path.find("/fleet/policy.d/") != std::string::npos) {
    layers.push_back({Kind::kFile, kSource + "/policies/fleet/policy.toml", "", 2, true, false});
  }
  layers.push_back({Kind::kFile, path, "", 3, true, false});
  return LoadLayers(layers);
}

TEST(PolicyShipped, EveryFileLoadsClean) {
  Lines files = ShippedFiles();
  // default, laptop, strict-budget, and the fleet's policy.toml with two drop-ins.
  EXPECT_GE(files.size(), 6u);
  for (const auto& file : files) {
    LoadedPolicy p = LoadFile(file);
    EXPECT_EQ(Strings(p.errors), Lines{}) << file;
    EXPECT_EQ(Strings(p.notices), Lines{}) << file;
  }
}

TEST(PolicyShipped, StrictBudgetHasRealBudgets) {
  LoadedPolicy p = LoadFile(kSource + "/policies/strict-budget.toml");
  ASSERT_EQ(Strings(p.errors), Lines{});
  const auto& b = p.policy.budget;
  ASSERT_EQ(b.budgets.size(), 3u);
  EXPECT_EQ(b.budgets[0].name, "daily");
  EXPECT_EQ(b.budgets[0].window.kind, enforcer::BudgetWindow::Kind::kDay);
  EXPECT_EQ(b.budgets[0].limit_credits, 400);
  EXPECT_EQ(b.budgets[0].warn_at, (std::vector<double>{0.6, 0.8}));
  EXPECT_EQ(b.budgets[1].window.kind, enforcer::BudgetWindow::Kind::kRolling);
  EXPECT_EQ(b.budgets[1].window.rolling, 5h);
  EXPECT_EQ(b.budgets[1].scope, enforcer::BudgetScope::kSupervised);
  EXPECT_EQ(b.budgets[1].on_exhausted, enforcer::OnExhausted::kSuspend);
  EXPECT_FALSE(b.budgets[1].lockout);
  EXPECT_EQ(b.budgets[2].limit_usd, 40);
  ASSERT_TRUE(b.idle);
  EXPECT_EQ(b.idle->limit_tokens, 0);
  ASSERT_TRUE(b.plan);
  EXPECT_EQ(b.plan->max_used_percent, 90);
  // Each budget passes the budget model's own validation.
  enforcer::BudgetTracker tracker(b);
  EXPECT_EQ(tracker.Status({0, 0}).size(), 3u);
}

TEST(PolicyShipped, DefaultFileIsTheBuiltInDefaults) {
  LoadedPolicy shipped = LoadFile(kSource + "/policies/default.toml");
  LoadedPolicy builtin = LoadLayers({});
  EXPECT_EQ(FormatPolicyToml(shipped, false), FormatPolicyToml(builtin, false));
}

TEST(PolicyShipped, ShowOutputLoadsBackToTheSamePolicy) {
  for (const auto& file : ShippedFiles()) {
    LoadedPolicy p = LoadFile(file);
    std::string shown = FormatPolicyToml(p, false);
    LoadedPolicy again = LoadLayers({{Kind::kText, "shown.toml", shown, 5, false, false}});
    EXPECT_EQ(Strings(again.errors), Lines{}) << file << "\n" << shown;
    EXPECT_EQ(FormatPolicyJson(again, false), FormatPolicyJson(p, false)) << file;
  }
}

TEST(PolicyShipped, FleetDirectoryAsTheSystemDirectory) {
  const char* old = std::getenv("DORMANT_SYSTEM_DIR");
  std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  std::string fleet = kSource + "/policies/fleet";
  ::setenv("DORMANT_SYSTEM_DIR", fleet.c_str(), 1);
  PolicySources sources;
  sources.user = false;
  sources.sets = {"idle.suspend_after=30m", "idle.suspend_after=9m", "sandbox.network=always",
                  "provider.gemini.exe=other", "budget.fleet-daily.limit_credits=5000",
                  "budget.fleet-daily.limit_credits=500", "budget.fleet-daily.window=hour",
                  "budget.fleet-daily.lockout=false", "plan.max_used_percent=99",
                  "price.gpt-5.5.credits={ input = 1, output = 1 }", "prices.fast_multiplier=1"};
  LoadedPolicy p = LoadPolicy(sources);
  if (saved) {
    ::setenv("DORMANT_SYSTEM_DIR", saved->c_str(), 1);
  } else {
    ::unsetenv("DORMANT_SYSTEM_DIR");
  }
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.files, (Lines{fleet + "/policy.toml", fleet + "/policy.d/10-engineering.toml",
                            fleet + "/policy.d/20-sandbox.toml"}));
  EXPECT_EQ(p.policy.idle.suspend_after, 9min);
  EXPECT_EQ(p.policy.idle.warn_after, 8min);
  EXPECT_EQ(p.policy.sandbox.network, enforcer::SandboxNetwork::kWhenActive);
  ASSERT_EQ(p.policy.providers.size(), 3u);
  EXPECT_EQ(p.policy.providers[2].exe, "gemini");
  // The fleet's locked budget, tightened by the drop-in and by --set, never loosened.
  ASSERT_EQ(p.policy.budget.budgets.size(), 1u);
  const enforcer::Budget& daily = p.policy.budget.budgets[0];
  EXPECT_EQ(daily.name, "fleet-daily");
  EXPECT_EQ(daily.limit_credits, 500);
  EXPECT_EQ(daily.window.kind, enforcer::BudgetWindow::Kind::kDay);
  EXPECT_EQ(daily.on_exhausted, enforcer::OnExhausted::kKill);
  EXPECT_TRUE(daily.lockout);
  EXPECT_EQ(p.OriginOf("budget.fleet-daily.on_exhausted").Where(),
            fleet + "/policy.d/10-engineering.toml:18:16");
  ASSERT_TRUE(p.policy.budget.plan);
  EXPECT_EQ(p.policy.budget.plan->max_used_percent, 95);
  EXPECT_EQ(p.policy.budget.prices.models[0].credits->input, 125);
  EXPECT_EQ(p.policy.budget.prices.fast_multiplier, 2.0);
  Lines keys;
  for (const auto& n : p.notices) keys.push_back(n.key);
  EXPECT_EQ(keys, (Lines{"idle.suspend_after", "sandbox.network", "provider.gemini.exe",
                         "budget.fleet-daily.limit_credits", "budget.fleet-daily.window",
                         "budget.fleet-daily.lockout", "plan.max_used_percent", "price.gpt-5.5.credits",
                         "prices.fast_multiplier"}));
  EXPECT_NE(p.LockFor("budget.daily.limit_credits"), nullptr);
  EXPECT_NE(p.LockFor("sandbox.deny_exec"), nullptr);
  EXPECT_EQ(p.LockFor("idle.kill_grace"), nullptr);
}

// The "## Keys" table of docs/policy.md: key -> cells (backticks stripped).
std::map<std::string, Lines> DocRows() {
  std::ifstream in(kSource + "/docs/policy.md");
  std::map<std::string, Lines> rows;
  std::string line;
  bool in_keys = false;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) in_keys = line == "## Keys";
    if (!in_keys || !line.starts_with("| `")) continue;
    Lines cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) {
      size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cell = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
      if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') cell = cell.substr(1, cell.size() - 2);
      cells.push_back(cell);
    }
    if (!cells.empty()) rows[cells[0]] = cells;
  }
  return rows;
}

TEST(PolicyDocs, EverySchemaKeyIsDocumentedExactly) {
  auto rows = DocRows();
  ASSERT_FALSE(rows.empty()) << "no `## Keys` table in docs/policy.md";
  for (const auto& spec : Schema()) {
    SCOPED_TRACE(spec.key);
    auto it = rows.find(spec.key);
    ASSERT_NE(it, rows.end()) << "docs/policy.md does not list " << spec.key;
    const Lines& c = it->second;
    ASSERT_EQ(c.size(), 7u) << "| Key | Type | Unit | Default | Stricter | Example | Meaning |";
    EXPECT_EQ(c[1], TypeText(spec));
    EXPECT_EQ(c[2], spec.unit);
    EXPECT_EQ(c[3], DefaultText(spec));
    EXPECT_EQ(c[4], StrictText(spec));
    EXPECT_FALSE(c[6].empty());
  }
}

TEST(PolicyDocs, EveryDocumentedKeyExistsAndItsExampleLoads) {
  for (const auto& [key, cells] : DocRows()) {
    SCOPED_TRACE(key);
    const KeySpec* spec = FindKey(key);
    ASSERT_NE(spec, nullptr) << "docs/policy.md lists " << key << ", which the schema does not know";
    std::string example = cells.size() > 5 ? cells[5] : "";
    std::string text = key + " = " + example + "\n";
    std::string path = key;
    if (const ArrayTable* table = ArrayTableOf(spec->scope)) {
      // An entry that is complete without the key, then the key.
      std::map<std::string, std::string> fields;
      if (spec->scope == Scope::kProvider) fields = {{"name", "\"codex\""}};
      if (spec->scope == Scope::kBudget) {
        fields = {{"name", "\"daily\""}, {"window", "\"day\""}, {"limit_tokens", "1"}};
      }
      if (spec->scope == Scope::kPrice) {
        fields = {{"match", "\"gpt-5.5\""}, {"usd", "{ input = 1, output = 2 }"}};
      }
      std::string field = key.substr(table->table.size() + 1);
      fields[field] = example;
      std::string name = fields[table->name_key];
      name = name.substr(1, name.size() - 2);
      text = "[[" + table->table + "]]\n" + table->name_key + " = " + fields[table->name_key] + "\n";
      for (const auto& [k, v] : fields) {
        if (k != table->name_key) text += k + " = " + v + "\n";
      }
      path = table->table + "." + name + "." + field;
    }
    LoadedPolicy p = LoadLayers({{Kind::kText, "example.toml", text, 5, false, false}});
    EXPECT_EQ(Strings(p.errors), Lines{}) << text;
    // Naming an entry the built-in policy already has leaves its name built in.
    bool builtin_name = key == "provider.name" || key == "price.match";
    EXPECT_EQ(p.OriginOf(path).file, builtin_name ? "(built-in)" : "example.toml") << text;
  }
}

}  // namespace
}  // namespace dormant::launcher
