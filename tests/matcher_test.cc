#include "enforcer/matcher.h"

#include <gtest/gtest.h>

namespace dormant::enforcer {
namespace {

std::vector<ProviderMatcher> Matchers() {
  return {{"codex", "codex", {"app-server"}, {}, {}}, {"claude", "claude", {}, {}, {}}};
}

TEST(Matcher, NativeBinaryByExe) {
  ProcessFacts p{10, 1, "/opt/x/vendor/codex/codex", {"codex", "app-server", "--listen", "stdio"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), 0u);
}

TEST(Matcher, ArgsMustAllAppearAfterArgv0) {
  ProcessFacts p{10, 1, "/usr/bin/codex", {"codex", "exec", "hi"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), std::nullopt);
  ProcessFacts q{10, 1, "/usr/bin/app-server", {"app-server"}};  // argv[0] is not an argument
  EXPECT_EQ(MatchProvider({{"x", "app-server", {"app-server"}, {}, {}}}, q), std::nullopt);
}

TEST(Matcher, InterpretedScriptWithAndWithoutExtension) {
  ProcessFacts p{10, 1, "/usr/bin/node", {"node", "/usr/lib/node_modules/@openai/codex/bin/codex.js", "app-server"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), 0u);
  ProcessFacts c{11, 1, "/usr/bin/node", {"node", "--no-warnings", "/x/claude", "--output-format", "stream-json"}};
  EXPECT_EQ(MatchProvider(Matchers(), c), 1u);
  auto names = ProgramNames(p);
  EXPECT_NE(std::find(names.begin(), names.end(), "codex.js"), names.end());
}

TEST(Matcher, Argv0AloneAndDeletedExe) {
  ProcessFacts p{10, 1, "/tmp/old/claude (deleted)", {}};
  EXPECT_EQ(MatchProvider(Matchers(), p), 1u);
  ProcessFacts q{10, 1, "", {"/some/where/claude", "-p", "x"}};
  EXPECT_EQ(MatchProvider(Matchers(), q), 1u);
}

TEST(Matcher, ShellScriptsAndInlineCode) {
  ProcessFacts p{10, 1, "/usr/bin/dash", {"/bin/sh", "/opt/demo/bin/codex", "app-server"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), 0u);
  ProcessFacts q{10, 1, "/usr/bin/bash", {"bash", "-c", "claude"}};
  EXPECT_EQ(MatchProvider(Matchers(), q), std::nullopt);
  ProcessFacts n{10, 1, "/usr/bin/node", {"node", "-e", "require('x')", "claude"}};
  EXPECT_EQ(MatchProvider(Matchers(), n), std::nullopt);
}

TEST(Matcher, EnvIsSeenThrough) {
  ProcessFacts p{10, 1, "/usr/bin/env", {"/usr/bin/env", "-S", "FOO=1", "node", "/x/.bin/codex", "app-server"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), 0u);
  ProcessFacts q{10, 1, "/usr/bin/env", {"env"}};
  EXPECT_EQ(MatchProvider(Matchers(), q), std::nullopt);
}

TEST(Matcher, NonInterpreterDoesNotLookAtScripts) {
  ProcessFacts p{10, 1, "/bin/cat", {"cat", "claude"}};
  EXPECT_EQ(MatchProvider(Matchers(), p), std::nullopt);
}

TEST(ProcessTree, TopmostMatchIsTheProviderAndOwnsItsSubtree) {
  ProcessTree t(1);
  auto m = Matchers();
  EXPECT_EQ(t.Update({2, 1, "/app/electron", {"electron"}}, m).kind, ProcessTree::Change::Kind::kNone);
  auto c = t.Update({3, 2, "/usr/bin/node", {"node", "/x/codex.js", "app-server"}}, m);
  EXPECT_EQ(c.kind, ProcessTree::Change::Kind::kProviderStarted);
  EXPECT_EQ(c.pid, 3);
  // The native binary below the node launcher matches too but belongs to 3.
  c = t.Update({4, 3, "/x/vendor/codex", {"codex", "app-server"}}, m);
  EXPECT_EQ(c.kind, ProcessTree::Change::Kind::kNone);
  EXPECT_EQ(t.ProviderOf(4), 3);
  EXPECT_EQ(t.ProviderOf(2), 0);
  // Unknown parent: ignored.
  EXPECT_EQ(t.Update({50, 49, "/x/codex", {"codex", "app-server"}}, m).kind,
            ProcessTree::Change::Kind::kNone);
  EXPECT_FALSE(t.Contains(50));
}

TEST(ProcessTree, ExecTurnsAProcessIntoAProvider) {
  ProcessTree t(1);
  auto m = Matchers();
  t.Update({2, 1, "/bin/sh", {"sh", "-c", "exec claude"}}, m);
  auto c = t.Update({2, 1, "/usr/bin/claude", {"claude"}}, m);
  EXPECT_EQ(c.kind, ProcessTree::Change::Kind::kProviderStarted);
  c = t.Update({2, 1, "/bin/true", {"true"}}, m);
  EXPECT_EQ(c.kind, ProcessTree::Change::Kind::kProviderExited);
}

TEST(ProcessTree, OrphansOfAProviderAreReMatched) {
  ProcessTree t(1);
  auto m = Matchers();
  t.Update({3, 1, "/usr/bin/node", {"node", "/x/codex.js", "app-server"}}, m);
  t.Update({4, 3, "/x/codex", {"codex", "app-server"}}, m);
  t.Update({5, 3, "/bin/bash", {"bash"}}, m);
  auto changes = t.Remove(3, m);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, ProcessTree::Change::Kind::kProviderExited);
  EXPECT_EQ(changes[1].kind, ProcessTree::Change::Kind::kProviderStarted);
  EXPECT_EQ(changes[1].pid, 4);
  EXPECT_EQ(t.ProviderOf(5), 0);
}

TEST(ProcessTree, RematchAfterPolicyChange) {
  ProcessTree t(1);
  auto m = Matchers();
  t.Update({3, 1, "/x/codex", {"codex", "exec"}}, m);
  std::vector<ProviderMatcher> wider = {{"codex", "codex", {}, {}, {}}};
  auto changes = t.Rematch(wider);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ProcessTree::Change::Kind::kProviderStarted);
  changes = t.Rematch({});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ProcessTree::Change::Kind::kProviderExited);
}

}  // namespace
}  // namespace dormant::enforcer
