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

LoadedPolicy LoadFile(const std::string& path) {
  return LoadLayers({{Kind::kFile, path, "", 5, true, false}});
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
                  "provider.gemini.exe=other"};
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
  Lines keys;
  for (const auto& n : p.notices) keys.push_back(n.key);
  EXPECT_EQ(keys, (Lines{"idle.suspend_after", "sandbox.network", "provider.gemini.exe"}));
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
    std::string text = spec->scope == Scope::kProvider
                           ? "[[provider]]\nname = \"codex\"\n" + key.substr(9) + " = " + example + "\n"
                           : key + " = " + example + "\n";
    if (key == "provider.name") text = "[[provider]]\nname = " + example + "\n";
    LoadedPolicy p = LoadLayers({{Kind::kText, "example.toml", text, 5, false, false}});
    EXPECT_EQ(Strings(p.errors), Lines{}) << text;
    EXPECT_EQ(p.OriginOf(spec->scope == Scope::kProvider && key != "provider.name"
                             ? "provider.codex." + key.substr(9)
                             : key)
                  .file,
              key == "provider.name" ? "(built-in)" : "example.toml");
  }
}

}  // namespace
}  // namespace dormant::launcher
