// `dormant policy check|show`, in process and through the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "launcher/policy_cli.h"

namespace dormant::launcher {
namespace {

struct Result {
  int status = -1;
  std::string out, err;
};

class PolicyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dormant-policy-cli-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    for (const char* name : {"DORMANT_SYSTEM_DIR", "XDG_CONFIG_HOME"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
    }
    ::setenv("DORMANT_SYSTEM_DIR", (root_ + "/etc").c_str(), 1);
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
  std::string Write(const std::string& rel, const std::string& text) {
    std::string p = root_ + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), "policy");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream out, err;
    Result r;
    r.status = RunPolicyCommand(static_cast<int>(argv.size()), argv.data(), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  // The real binary, with this test's environment.
  Result Binary(const std::vector<std::string>& args) {
    std::string cmd = DORMANT_BINARY;
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " >" + root_ + "/stdout 2>" + root_ + "/stderr";
    Result r;
    int status = std::system(cmd.c_str());
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream o(root_ + "/stdout"), e(root_ + "/stderr");
    std::stringstream so, se;
    so << o.rdbuf();
    se << e.rdbuf();
    r.out = so.str();
    r.err = se.str();
    return r;
  }

  std::string root_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(PolicyCli, CheckFilesReportsEachProblemAndExitsTwo) {
  std::string good = Write("good.toml", "[idle]\nsuspend_after = \"5m\"\n");
  std::string bad = Write("bad.toml", "[idle]\nsuspend_afer = \"5m\"\nkill_after = \"1m\"\n");
  Result r = Run({"check", good});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, good + ": ok\n");
  EXPECT_EQ(r.err, "");

  r = Run({"check", good, bad, root_ + "/missing.toml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, good + ": ok\n");
  EXPECT_EQ(r.err, bad + ":2:1: idle.suspend_afer: unknown key `suspend_afer` in [idle]; did you mean "
                         "`suspend_after`?\n" +
                       root_ + "/missing.toml: cannot open: No such file or directory\n");

  r = Run({"check", Write("order.toml", "[idle]\nkill_after = \"1m\"\n")});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, root_ + "/order.toml:2:14: idle.kill_after: kill_after (1m) is shorter than "
                           "suspend_after (10m, from (built-in))\n");
}

TEST_F(PolicyCli, CheckWithoutFilesChecksTheStack) {
  Result r = Run({"check"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "ok: built-in defaults\n");
  std::string admin = Write("etc/policy.toml", "[lock]\nkeys = [\"idle.*\"]\n");
  std::string user = Write("config/dormant/policy.toml", "[idle]\nkill_after = \"3h\"\n");
  r = Run({"check"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "ok: built-in defaults, " + admin + ", " + user + "\n");
  EXPECT_EQ(r.err, user + ":2:14: idle.kill_after: not applied: \"3h\" is looser than \"2h\", and "
                          "idle.kill_after is locked by " + admin + ":2:9\n");
  Write("config/dormant/policy.toml", "[idle]\nkill_after = 3\n");
  r = Run({"check"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, user + ":2:14: idle.kill_after: a duration is a string with a unit, e.g. \"10m\" "
                          "(got the number 3)\n");
}

TEST_F(PolicyCli, ShowPrintsTomlOriginsAndJson) {
  std::string user = Write("config/dormant/policy.toml", "[idle]\nsuspend_after = \"7m\"\n");
  Result r = Run({"show"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("[idle]\nsource = \"manual\"\nsuspend_after = \"7m\"\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[[provider]]\nname = \"codex\"\nexe = \"codex\"\nargs = [\"app-server\"]\n"),
            std::string::npos);

  r = Run({"show", "--origin", "--set", "idle.kill_grace=2s"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(user + ":2:17\tidle.suspend_after = \"7m\"\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--set:1:17\tidle.kill_grace = \"2s\"\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(built-in)\tidle.kill_after = \"2h\"\n"), std::string::npos) << r.out;

  r = Run({"show", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["idle"]["suspend_after"], "7m");
  EXPECT_EQ(j["idle"]["warn_after"], nullptr);
  EXPECT_EQ(j["power"]["battery"]["suspend_after"], nullptr);
  EXPECT_EQ(j["provider"][0]["args"][0], "app-server");

  r = Run({"show", "--defaults", "--json"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["idle"]["suspend_after"], "10m");
}

TEST_F(PolicyCli, ShowMarksLocksAndNotices) {
  std::string admin = Write("etc/policy.toml", "[idle]\nsuspend_after = \"10m\"\n[lock]\nkeys = [\"idle.suspend_after\"]\n");
  std::string file = Write("mine.toml", "[idle]\nsuspend_after = \"1h\"\n");
  Result r = Run({"show", "--origin", "--policy", file});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("# notice: " + file + ":2:17: idle.suspend_after: not applied: \"1h\" is looser "
                       "than \"10m\", and idle.suspend_after is locked by " + admin + ":4:9\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(admin + ":2:17\tidle.suspend_after = \"10m\"\t[locked by " + admin + ":4:9]\n"),
            std::string::npos)
      << r.out;

  r = Run({"show", "--policy=" + file});
  EXPECT_NE(r.out.find("suspend_after = \"10m\"  # locked by " + admin + ":4:9\n"), std::string::npos);

  r = Run({"show", "--origin", "--json", "--policy", file});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["policy"]["idle"]["suspend_after"], "10m");
  EXPECT_EQ(j["origin"]["idle.suspend_after"]["file"], admin);
  EXPECT_EQ(j["origin"]["idle.suspend_after"]["line"], 2);
  EXPECT_EQ(j["origin"]["idle.suspend_after"]["locked_by"]["line"], 4);
  EXPECT_EQ(j["locks"][0]["pattern"], "idle.suspend_after");
  EXPECT_EQ(j["notices"].size(), 1u);
}

TEST_F(PolicyCli, ShowRefusesABrokenStack) {
  Result r = Run({"show", "--set", "idle.suspend_after=never"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "--set:1:20: idle.suspend_after: bad duration \"never\" (write a whole number and a "
                   "unit: ms, s, m, h or d, e.g. \"90s\", \"1h30m\")\n");
}

TEST_F(PolicyCli, BadUsage) {
  EXPECT_EQ(Run({}).status, 2);
  EXPECT_EQ(Run({"frobnicate"}).status, 2);
  EXPECT_EQ(Run({"show", "--bogus"}).status, 2);
  EXPECT_EQ(Run({"show", "--policy"}).status, 2);
  Result r = Run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("dormant policy check"), std::string::npos);
}

TEST_F(PolicyCli, TheBinaryChecksAndShows) {
  std::string bad = Write("bad.toml", "[idle]\nsuspend_after = \"-1m\"\n");
  Result r = Binary({"policy", "check", bad});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, bad + ":2:17: idle.suspend_after: duration must be positive\n");
  r = Binary({"policy", "check", std::string(DORMANT_SOURCE_DIR) + "/policies/laptop.toml"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = Binary({"policy", "show", "--set", "idle.suspend_after=3m"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("suspend_after = \"3m\""), std::string::npos) << r.out;
}

TEST_F(PolicyCli, RunRefusesABrokenPolicyAndStartsNothing) {
  std::string bad = Write("bad.toml", "[idle]\nsuspend_after = 600\n");
  std::string marker = root_ + "/started";
  Result r = Binary({"run", "--policy", bad, "--", "/bin/sh", "-c", "touch " + marker});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(bad + ":2:17: idle.suspend_after: a duration is a string with a unit"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
  r = Binary({"run", "--set", "idle.bogus=1", "--", "/bin/sh", "-c", "touch " + marker});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--set:1:1: idle.bogus: unknown key `idle.bogus`"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

}  // namespace
}  // namespace dormant::launcher
