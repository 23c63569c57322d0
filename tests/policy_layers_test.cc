// The policy stack on real files: system dir, drop-ins, user file, --policy,
// --set; locks from admin files that later layers may only tighten.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "launcher/policy_loader.h"

namespace dormant::launcher {
namespace {

using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

std::vector<std::string> Strings(const std::vector<Diagnostic>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.ToString());
  return out;
}

// Points DORMANT_SYSTEM_DIR and XDG_CONFIG_HOME at a fresh temp dir, and
// puts the environment back afterwards.
class PolicyLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dormant-layers-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    sys_ = root_ + "/etc";
    user_ = root_ + "/config/dormant/policy.toml";
    for (const char* name : {"DORMANT_SYSTEM_DIR", "XDG_CONFIG_HOME", "HOME"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
    }
    ::setenv("DORMANT_SYSTEM_DIR", sys_.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (root_ + "/config").c_str(), 1);
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
    std::filesystem::remove_all(root_);
  }
  std::string Write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }
  std::string Admin(const std::string& text) { return Write(sys_ + "/policy.toml", text); }
  std::string DropIn(const std::string& name, const std::string& text) {
    return Write(sys_ + "/policy.d/" + name, text);
  }
  std::string User(const std::string& text) { return Write(user_, text); }
  std::string File(const std::string& name, const std::string& text) {
    return Write(root_ + "/" + name, text);
  }

  std::string root_, sys_, user_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(PolicyLayers, LaterLayersOverrideEarlierOnes) {
  std::string admin = Admin("[idle]\nsuspend_after = \"20m\"\nkill_after = \"3h\"\nkill_grace = \"9s\"\n");
  DropIn("9-late.toml", "[idle]\nsuspend_after = \"19m\"\n");      // "9-" sorts after "10-"
  DropIn("10-early.toml", "[idle]\nsuspend_after = \"18m\"\nwarn_after = \"1m\"\n");
  DropIn("README", "not toml, and not read\n");
  DropIn(".hidden.toml", "garbage [[[\n");
  std::string user = User("[idle]\nsuspend_after = \"15m\"\n");
  std::string one = File("one.toml", "[idle]\nsuspend_after = \"14m\"\n");
  std::string two = File("two.toml", "[idle]\nsuspend_after = \"13m\"\n");

  PolicySources sources;
  LoadedPolicy p = LoadPolicy(sources);
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.files, (Lines{admin, sys_ + "/policy.d/10-early.toml", sys_ + "/policy.d/9-late.toml", user}));
  EXPECT_EQ(p.policy.idle.suspend_after, 15min);
  EXPECT_EQ(p.policy.idle.kill_after, 3h);
  EXPECT_EQ(p.OriginOf("idle.kill_grace").Where(), admin + ":4:14");
  EXPECT_EQ(p.OriginOf("idle.warn_after").Where(), sys_ + "/policy.d/10-early.toml:3:14");
  EXPECT_EQ(p.OriginOf("idle.warn_after").layer, 3);

  sources.files = {one, two};
  p = LoadPolicy(sources);
  EXPECT_EQ(p.policy.idle.suspend_after, 13min);
  EXPECT_EQ(p.OriginOf("idle.suspend_after").layer, 5);

  sources.sets = {"idle.suspend_after=12m"};
  p = LoadPolicy(sources);
  EXPECT_EQ(p.policy.idle.suspend_after, 12min);
  EXPECT_EQ(p.OriginOf("idle.suspend_after").Where(), "--set:1:20");
  EXPECT_EQ(p.OriginOf("idle.suspend_after").layer, 6);

  sources = {};
  sources.system = false;
  EXPECT_EQ(LoadPolicy(sources).policy.idle.suspend_after, 15min);
  sources.user = false;
  EXPECT_EQ(LoadPolicy(sources).policy.idle.suspend_after, 10min);
}

TEST_F(PolicyLayers, UserFileFallsBackToHomeConfig) {
  ::unsetenv("XDG_CONFIG_HOME");
  ::setenv("HOME", (root_ + "/home").c_str(), 1);
  EXPECT_EQ(UserPolicyPath(), root_ + "/home/.config/dormant/policy.toml");
  Write(root_ + "/home/.config/dormant/policy.toml", "[idle]\nkill_grace = \"1s\"\n");
  EXPECT_EQ(LoadPolicy({}).policy.idle.kill_grace, 1s);
  ::setenv("XDG_CONFIG_HOME", "relative/ignored", 1);  // the XDG spec says: ignore relative paths
  EXPECT_EQ(UserPolicyPath(), root_ + "/home/.config/dormant/policy.toml");
  ::unsetenv("DORMANT_SYSTEM_DIR");
  EXPECT_EQ(SystemDir(), "/etc/dormant");
}

TEST_F(PolicyLayers, MissingOptionalFilesAreFineButANamedFileIsNot) {
  EXPECT_EQ(Strings(LoadPolicy({}).errors), Lines{});
  PolicySources sources;
  sources.files = {root_ + "/nope.toml"};
  EXPECT_EQ(Strings(LoadPolicy(sources).errors),
            Lines{root_ + "/nope.toml: cannot open: No such file or directory"});
}

TEST_F(PolicyLayers, ABrokenAdminFileIsRefused) {
  Admin("[idle]\nsuspend_after = \"soon\"\n");
  EXPECT_EQ(Strings(LoadPolicy({}).errors),
            Lines{sys_ + "/policy.toml:2:17: idle.suspend_after: bad duration \"soon\" (write a whole "
                         "number and a unit: ms, s, m, h or d, e.g. \"90s\", \"1h30m\")"});
}

TEST_F(PolicyLayers, LockedKeyOnlyTightens) {
  std::string admin = Admin("[idle]\nsuspend_after = \"10m\"\n[lock]\nkeys = [\"idle.suspend_after\"]\n");
  std::string user = User("[idle]\nsuspend_after = \"30m\"\nkill_grace = \"30s\"\n");
  LoadedPolicy p = LoadPolicy({});
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.policy.idle.suspend_after, 10min);  // the looser 30m is not applied
  EXPECT_EQ(p.policy.idle.kill_grace, 30s);       // unlocked keys are free
  EXPECT_EQ(Strings(p.notices),
            Lines{user + ":2:17: idle.suspend_after: not applied: \"30m\" is looser than \"10m\", and "
                         "idle.suspend_after is locked by " + admin + ":4:9"});
  EXPECT_EQ(p.OriginOf("idle.suspend_after").Where(), admin + ":2:17");
  ASSERT_NE(p.LockFor("idle.suspend_after"), nullptr);
  EXPECT_EQ(p.LockFor("idle.suspend_after")->origin.Where(), admin + ":4:9");

  User("[idle]\nsuspend_after = \"5m\"\n");
  p = LoadPolicy({});
  EXPECT_EQ(p.policy.idle.suspend_after, 5min);
  EXPECT_TRUE(p.notices.empty());
  EXPECT_EQ(p.OriginOf("idle.suspend_after").Where(), user + ":2:17");

  // --set is a later layer like any other.
  PolicySources sources;
  sources.sets = {"idle.suspend_after=1h", "idle.suspend_after=4m"};
  p = LoadPolicy(sources);
  EXPECT_EQ(p.policy.idle.suspend_after, 4min);
  EXPECT_EQ(Strings(p.notices),
            Lines{"--set:1:20: idle.suspend_after: not applied: \"1h\" is looser than \"5m\", and "
                  "idle.suspend_after is locked by " + admin + ":4:9"});
}

TEST_F(PolicyLayers, LocksCannotBeLifted) {
  Admin("[lock]\nkeys = [\"power.*\"]\n");
  std::string user = User("[lock]\nkeys = []\n[power]\nafter_wake = \"resume\"\non_lock = \"suspend\"\n");
  LoadedPolicy p = LoadPolicy({});
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.policy.power.after_wake, enforcer::AfterWake::kWaitForInput);  // resume is looser
  EXPECT_EQ(p.policy.power.on_lock, enforcer::OnLock::kSuspend);             // suspend is stricter
  ASSERT_EQ(p.notices.size(), 2u);
  EXPECT_EQ(p.notices[0].ToString(), user + ":1:2: lock: ignored: locks are honoured only in admin "
                                            "files (/etc/dormant/policy.toml and policy.d/)");
  EXPECT_EQ(p.notices[1].key, "power.after_wake");
  EXPECT_EQ(p.notices[1].line, 4);
}

TEST_F(PolicyLayers, DropInsTightenAndAddLocks) {
  Admin("[idle]\nsuspend_after = \"15m\"\n[lock]\nkeys = [\"idle.suspend_after\", \"budget.*\"]\n");
  std::string dropin =
      DropIn("20-net.toml", "[idle]\nsuspend_after = \"10m\"\n[sandbox]\nnetwork = \"when-active\"\n"
                            "deny_exec = [{ name = \"aider\", exe = \"aider\" }]\n"
                            "[lock]\nkeys = [\"sandbox.*\"]\n");
  User("[idle]\nsuspend_after = \"12m\"\n[sandbox]\nnetwork = \"always\"\ngate = \"on\"\n"
       "deny_exec = [{ name = \"curl\", exe = \"curl\" }]\n");
  LoadedPolicy p = LoadPolicy({});
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.policy.idle.suspend_after, 10min);
  EXPECT_EQ(p.policy.sandbox.network, enforcer::SandboxNetwork::kWhenActive);
  EXPECT_EQ(p.policy.sandbox.gate, enforcer::SandboxGate::kOn);
  ASSERT_EQ(p.policy.sandbox.deny_exec.size(), 1u);  // dropping "aider" is looser
  EXPECT_EQ(p.policy.sandbox.deny_exec[0].exe, "aider");
  Lines keys;
  for (const auto& n : p.notices) keys.push_back(n.key);
  EXPECT_EQ(keys, (Lines{"idle.suspend_after", "sandbox.deny_exec", "sandbox.network"}));

  User("[sandbox]\ndeny_exec = [{ name = \"aider\", exe = \"aider\" }, { name = \"curl\", exe = \"curl\" }]\n");
  p = LoadPolicy({});
  EXPECT_EQ(p.policy.sandbox.deny_exec.size(), 2u);  // a superset is stricter
  EXPECT_TRUE(p.notices.empty());
}

TEST_F(PolicyLayers, ProviderLocksAndLockedIdleBoundOverrides) {
  std::string admin = Admin(
      "[idle]\nsuspend_after = \"10m\"\n[lock]\nkeys = [\"idle.suspend_after\", \"provider.*\"]\n");
  std::string user = User(
      "[[provider]]\nname = \"codex\"\nexe = \"not-codex\"\nsuspend_after = \"5m\"\n"
      "[[provider]]\nname = \"claude\"\nsuspend_after = \"20m\"\n"
      "[[provider]]\nname = \"gemini\"\nexe = \"gemini\"\nsuspend_after = \"30m\"\n");
  LoadedPolicy p = LoadPolicy({});
  ASSERT_EQ(Strings(p.errors), Lines{});
  ASSERT_EQ(p.policy.providers.size(), 3u);
  EXPECT_EQ(p.policy.providers[0].exe, "codex");  // exe is fixed under the lock
  EXPECT_EQ(p.policy.providers[0].suspend_after, 5min);
  EXPECT_FALSE(p.policy.providers[1].suspend_after);  // 20m would escape the locked 10m
  // A provider the user adds is theirs, but its timers may not escape [idle]'s lock.
  EXPECT_EQ(p.policy.providers[2].exe, "gemini");
  EXPECT_FALSE(p.policy.providers[2].suspend_after);
  EXPECT_EQ(Strings(p.notices),
            (Lines{user + ":3:7: provider.codex.exe: not applied: \"not-codex\" is looser than "
                          "\"codex\", and provider.codex.exe is locked by " + admin + ":4:31",
                   user + ":7:17: provider.claude.suspend_after: not applied: \"20m\" is looser than "
                          "\"10m\", and idle.suspend_after is locked by " + admin + ":4:9",
                   user + ":11:17: provider.gemini.suspend_after: not applied: \"30m\" is looser than "
                          "\"10m\", and idle.suspend_after is locked by " + admin + ":4:9"}));
}

TEST_F(PolicyLayers, BatteryTimersCannotEscapeALockedIdleTime) {
  Admin("[lock]\nkeys = [\"idle.kill_after\"]\n");
  User("[power.battery]\nsuspend_after = \"1m\"\nkill_after = \"3h\"\n");
  LoadedPolicy p = LoadPolicy({});
  ASSERT_EQ(Strings(p.errors), Lines{});
  EXPECT_EQ(p.policy.power.battery.suspend_after, 1min);
  EXPECT_FALSE(p.policy.power.battery.kill_after);
  ASSERT_EQ(p.notices.size(), 1u);
  EXPECT_EQ(p.notices[0].key, "power.battery.kill_after");
}

TEST_F(PolicyLayers, BadLockTables) {
  Admin("[lock]\nkeys = [\"idle.suspend_after\", 3, \"bad key!\"]\nkey = []\n");
  EXPECT_EQ(Strings(LoadPolicy({}).errors),
            (Lines{sys_ + "/policy.toml:2:31: lock.keys: expected a key pattern string, got an integer",
                   sys_ + "/policy.toml:2:34: lock.keys: \"bad key!\" is not a key pattern (a key such "
                          "as \"idle.suspend_after\", '*' matching any characters)",
                   sys_ + "/policy.toml:3:1: lock.key: unknown key `key` in [lock]; did you mean `keys`?"}));
}

}  // namespace
}  // namespace dormant::launcher
