// Issue 4 end to end, through the real `dormant run`: real desktop components
// (Xvfb with xdotool input; a private dbus-daemon with python3-dbusmock serving
// logind, UPower and a Mutter idle monitor; a sysfs tree in a temporary
// directory) feed the idle and power sources, and the provider subtrees'
// states are read from the real /proc. The test binary re-run in helper modes
// plays the app and its providers. Each test starts and stops its own
// components; dormant gets only the environment the test gives it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "launcher/control.h"
#include "platform/process_table.h"
#include "tests/helper.h"
#include "tests/idle_test_env.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using dormant::testing::DbusDaemon;
using dormant::testing::DbusMock;
using dormant::testing::Xvfb;
using Env = std::map<std::string, std::string>;
using Json = nlohmann::json;

constexpr const char* kLogind = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kLogindManager = "org.freedesktop.login1.Manager";
constexpr const char* kSessionPath = "/org/freedesktop/login1/session/c1";
constexpr const char* kSession = "org.freedesktop.login1.Session";
constexpr const char* kUpower = "org.freedesktop.UPower";
constexpr const char* kUpowerPath = "/org/freedesktop/UPower";
constexpr const char* kMutter = "org.gnome.Mutter.IdleMonitor";
constexpr const char* kMutterPath = "/org/gnome/Mutter/IdleMonitor/Core";

// ---- helper modes: the app and its providers ----

[[noreturn]] void Linger() {
  for (;;) pause();
}

// A provider with argv[0] children below it, each a plain sleeper.
DORMANT_HELPER(desk_provider) {
  int kids = argc > 0 ? std::atoi(argv[0]) : 0;
  for (int i = 0; i < kids; ++i) {
    if (fork() == 0) Linger();
  }
  Linger();
}

// The app: argv[0] providers with argv[1] children each. Its own argv does not
// match the providers' matcher.
DORMANT_HELPER(desk_app) {
  int n = std::atoi(argv[0]);
  std::string kids = argc > 1 ? argv[1] : "0";
  for (int i = 0; i < n; ++i) {
    if (fork() == 0) {
      std::vector<std::string> a = dormant::testing::HelperArgv("desk_provider", {kids});
      std::vector<char*> c;
      for (auto& s : a) c.push_back(s.data());
      c.push_back(nullptr);
      execv(c[0], c.data());
      _exit(127);
    }
  }
  Linger();
}

// ---- /proc ----

std::vector<dormant::platform::ProcessInfo> SubtreeInfo(const std::vector<int>& roots) {
  auto table = dormant::platform::CreateProcessTable();
  std::vector<dormant::platform::ProcessInfo> out;
  for (int r : roots) {
    for (int p : dormant::platform::Subtree(*table, r)) {
      if (auto i = table->Read(p)) out.push_back(*i);
    }
  }
  return out;
}

bool IsStopped(char state) { return state == 'T' || state == 't'; }

// Every process below `roots` (`count` of them) stopped (or, with false, none).
bool SubtreeStopped(const std::vector<int>& roots, size_t count, bool stopped) {
  auto procs = SubtreeInfo(roots);
  if (procs.size() != count) return false;
  for (auto& p : procs) {
    if (IsStopped(p.state) != stopped) return false;
  }
  return true;
}

bool Poll(const std::function<bool()>& pred, std::chrono::milliseconds limit = 20s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string States(const std::vector<int>& roots) {
  std::string out;
  for (auto& p : SubtreeInfo(roots)) out += std::to_string(p.pid) + ":" + p.state + " ";
  return out;
}

// ---- D-Bus mocks ----

// The delay inhibitors the logind mock holds: "what/who/mode" each.
std::vector<std::string> Inhibitors(sd_bus* bus) {
  std::vector<std::string> out;
  sd_bus_message* reply = nullptr;
  if (sd_bus_call_method(bus, kLogind, kLogindPath, kLogindManager, "ListInhibitors", nullptr,
                         &reply, "") < 0) {
    return {"<ListInhibitors failed>"};
  }
  sd_bus_message_enter_container(reply, 'a', "(ssssuu)");
  const char *what, *who, *why, *mode;
  uint32_t uid, pid;
  while (sd_bus_message_read(reply, "(ssssuu)", &what, &who, &why, &mode, &uid, &pid) > 0) {
    out.push_back(std::string(what) + "/" + who + "/" + mode);
  }
  sd_bus_message_unref(reply);
  return out;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return "[" + out + "]";
}

// logind from dbusmock's template with one session "c1" of ours (dormant is
// told XDG_SESSION_ID=c1).
std::unique_ptr<DbusMock> StartLogind(const DbusDaemon& bus) {
  auto mock = std::make_unique<DbusMock>(bus, true, kLogind,
                                         std::vector<std::string>{"--template", "logind"});
  if (!mock->ok()) return nullptr;
  if (sd_bus_call_method(bus.client(), kLogind, kLogindPath, "org.freedesktop.DBus.Mock",
                         "AddSession", nullptr, nullptr, "ssusb", "c1", "seat0",
                         static_cast<uint32_t>(getuid()), "tester", 1) < 0) {
    return nullptr;
  }
  return mock;
}

// A Mutter idle monitor on dbusmock: AddIdleWatch / AddUserActiveWatch keep
// their ids; the test-only DeskIdle(ms) makes the user idle for ms and fires
// the idle watches, DeskInput() is input: it fires the user-active watches
// (which, as in Mutter, fire once).
bool AddMutterMonitor(sd_bus* bus) {
  auto method = [&](const char* name, const char* in, const char* out, const std::string& code) {
    return dormant::testing::MockAddMethod(bus, kMutter, kMutterPath, kMutter, name, in, out, code);
  };
  // Idle time grows from the last input, as Mutter's does.
  const std::string state =
      "import time\n"
      "if not hasattr(self, 'desk'):\n"
      "    self.desk = {'input_at': time.monotonic(), 'next': 0, 'idle_w': [], 'active_w': []}\n";
  const std::string fire =
      "for w in ws:\n"
      "    self.EmitSignal('org.gnome.Mutter.IdleMonitor', 'WatchFired', 'u', [w])\n";
  return method("GetIdletime", "", "t",
                state + "ret = int((time.monotonic() - self.desk['input_at']) * 1000)") &&
         method("AddIdleWatch", "t", "u",
                state +
                    "self.desk['next'] += 1\nself.desk['idle_w'].append(self.desk['next'])\n"
                    "ret = self.desk['next']") &&
         method("AddUserActiveWatch", "", "u",
                state +
                    "self.desk['next'] += 1\nself.desk['active_w'].append(self.desk['next'])\n"
                    "ret = self.desk['next']") &&
         method("RemoveWatch", "u", "",
                state +
                    "self.desk['idle_w'] = [w for w in self.desk['idle_w'] if w != args[0]]\n"
                    "self.desk['active_w'] = [w for w in self.desk['active_w'] if w != args[0]]") &&
         method("DeskWatches", "", "uu",
                state + "ret = (len(self.desk['idle_w']), len(self.desk['active_w']))") &&
         method("DeskIdle", "t", "",
                state +
                    "self.desk['input_at'] = time.monotonic() - args[0] / 1000.0\n"
                    "ws = list(self.desk['idle_w'])\n" +
                    fire) &&
         method("DeskInput", "", "",
                state +
                    "self.desk['input_at'] = time.monotonic()\nws = self.desk['active_w']\n"
                    "self.desk['active_w'] = []\n" +
                    fire);
}

// (idle watches, user-active watches) the monitor holds now.
std::pair<uint32_t, uint32_t> MutterWatches(sd_bus* bus) {
  sd_bus_message* reply = nullptr;
  uint32_t idle = 0, active = 0;
  if (sd_bus_call_method(bus, kMutter, kMutterPath, kMutter, "DeskWatches", nullptr, &reply, "") >=
      0) {
    sd_bus_message_read(reply, "uu", &idle, &active);
  }
  sd_bus_message_unref(reply);
  return {idle, active};
}

bool SetOnBattery(sd_bus* bus, bool on) {
  return dormant::testing::MockUpdateBool(bus, kUpower, kUpowerPath, kUpower, "OnBattery", on);
}

bool PrepareForSleep(sd_bus* bus, bool sleeping) {
  return dormant::testing::MockEmitBool(bus, kLogind, kLogindPath, kLogindManager,
                                        "PrepareForSleep", sleeping);
}

void WriteFile(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s << "\n";
}

// ---- the policy ----

// The policy: one provider matcher for `desk_provider`, [idle] as given, and
// `extra` TOML tables ([power], [power.battery]).
std::string Policy(const std::string& source = "manual", const std::string& suspend_after = "1h",
                   const std::string& extra = "") {
  return "[idle]\nsource = \"" + source + "\"\nsuspend_after = \"" + suspend_after +
         "\"\nkill_after = \"2h\"\nkill_grace = \"1s\"\n\n" + extra +
         "\n[[provider]]\nname = \"desk\"\nexe = \"dormant_tests\"\nargs = [\"desk_provider\"]\n";
}

// ---- the harness: one `dormant run` in a private environment ----

// Variables dormant would otherwise take from the test's own environment.
const char* const kOwnedVars[] = {"DISPLAY",
                                  "WAYLAND_DISPLAY",
                                  "XDG_SESSION_TYPE",
                                  "XDG_SESSION_ID",
                                  "XDG_CURRENT_DESKTOP",
                                  "DBUS_SESSION_BUS_ADDRESS",
                                  "DBUS_SYSTEM_BUS_ADDRESS",
                                  "DORMANT_SYSFS_ROOT",
                                  "XDG_RUNTIME_DIR",
                                  "DORMANT_SYSTEM_DIR",
                                  "XDG_CONFIG_HOME",
                                  "HOME",
                                  "XDG_STATE_HOME",
                                  "DORMANT_LEDGER",
                                  "CODEX_HOME",
                                  "CLAUDE_CONFIG_DIR"};

class DesktopRun {
 public:
  // `env` overrides the defaults: no session or system bus, a sysfs tree on
  // AC power (sysfs_dir()), and a fresh HOME (the ledger goes there).
  DesktopRun(const std::string& name, const std::string& policy, const Env& env, int providers = 1,
             int kids = 2)
      : name_(name), providers_(providers), kids_(kids) {
    char tmpl[] = "/tmp/dormant-desk-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ / "run");
    fs::permissions(dir_ / "run", fs::perms::owner_all, fs::perm_options::replace);
    WriteFile(sysfs_dir() / "class/power_supply/AC/type", "Mains");
    WriteFile(sysfs_dir() / "class/power_supply/AC/online", "1");
    WriteFile(sysfs_dir() / "class/power_supply/BAT0/type", "Battery");
    std::ofstream(dir_ / "policy.toml") << policy;
    env_ = {{"XDG_RUNTIME_DIR", (dir_ / "run").string()},
            {"DORMANT_SYSTEM_DIR", (dir_ / "no-system").string()},
            {"XDG_CONFIG_HOME", (dir_ / "no-config").string()},
            {"DBUS_SESSION_BUS_ADDRESS", "unix:path=" + (dir_ / "no-session-bus").string()},
            {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + (dir_ / "no-system-bus").string()},
            {"DORMANT_SYSFS_ROOT", sysfs_dir().string()},
            {"HOME", (dir_ / "home").string()},
            {"XDG_STATE_HOME", (dir_ / "home/state").string()}};
    for (auto& [k, v] : env) env_[k] = v;
    std::vector<std::string> argv = {
        DORMANT_BINARY, "run", "--policy", (dir_ / "policy.toml").string(), "--name", name, "--"};
    for (auto& a : dormant::testing::HelperArgv(
             "desk_app", {std::to_string(providers), std::to_string(kids)})) {
      argv.push_back(a);
    }
    pid_ = Exec(argv, (dir_ / "dormant.log").string(), nullptr);
  }

  ~DesktopRun() {
    Stop();
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "--- dormant log (%s) ---\n%s", name_.c_str(), Log().c_str());
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path sysfs_dir() const { return dir_ / "sys"; }
  pid_t pid() const { return pid_; }

  Json Call(const std::string& cmd) {
    auto r = dormant::launcher::Call((dir_ / "run" / "dormant" / (name_ + ".sock")).string(),
                                     {{"cmd", cmd}});
    return r ? *r : Json{{"ok", false}, {"error", r.error().message}};
  }

  // `dormant ARGS --name NAME` through the real binary: exit status and stdout.
  std::pair<int, std::string> Cli(std::vector<std::string> args) {
    args.insert(args.begin(), DORMANT_BINARY);
    args.push_back("--name");
    args.push_back(name_);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return {-1, ""};
    pid_t pid = Exec(args, "/dev/null", &out[1]);
    close(out[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, n);
    close(out[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, text};
  }

  // `dormant status --json`, parsed.
  Json CliStatus() {
    auto [rc, out] = Cli({"status", "--json"});
    EXPECT_EQ(rc, 0) << out;
    return Json::parse(out, nullptr, false);
  }

  Json WaitStatus(const std::function<bool(const Json&)>& pred,
                  std::chrono::milliseconds limit = 20s) {
    auto end = std::chrono::steady_clock::now() + limit;
    Json s;
    while (std::chrono::steady_clock::now() < end) {
      s = Call("status");
      if (s.value("ok", false) && pred(s)) return s;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "condition not reached; last status: " << s.dump();
    return s;
  }

  // The provider roots once all `providers_` are known and have their
  // children (remembered for the clean-up).
  std::vector<int> WaitProviders() {
    Json s = WaitStatus(
        [&](const Json& s) { return s["providers"].size() == static_cast<size_t>(providers_); });
    std::vector<int> roots;
    for (auto& p : s["providers"]) roots.push_back(p["pid"].get<int>());
    tracked_.insert(tracked_.end(), roots.begin(), roots.end());
    if (s["app"].contains("pid")) tracked_.push_back(s["app"]["pid"].get<int>());
    size_t all = static_cast<size_t>(providers_ * (1 + kids_));
    EXPECT_TRUE(Poll([&] { return SubtreeInfo(roots).size() == all; })) << States(roots);
    return roots;
  }

  std::string Log() const {
    std::ifstream in(dir_ / "dormant.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // SIGTERM (forwarded to the app; dormant ends the providers and exits),
  // then whatever is left of the tree is continued and killed.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    bool exited = Poll([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; }, 20s);
    if (!exited) {
      ADD_FAILURE() << "dormant did not exit on SIGTERM";
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    auto table = dormant::platform::CreateProcessTable();
    std::vector<int> left;
    for (int r : tracked_) {
      for (int p : dormant::platform::Subtree(*table, r)) left.push_back(p);
    }
    for (int p : left) {
      kill(p, SIGCONT);
      kill(p, SIGKILL);
    }
  }

 private:
  // fork + exec with env_, in a new session (no controlling terminal: the
  // auto choice must not see the test's tty); stderr to `log`, stdout to
  // *out_fd when given.
  pid_t Exec(std::vector<std::string> argv, const std::string& log, const int* out_fd) {
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      std::string key = kv.substr(0, kv.find('='));
      bool owned = false;
      for (const char* v : kOwnedVars) owned = owned || key == v;
      if (!owned) envs.push_back(kv);
    }
    for (auto& [k, v] : env_) envs.push_back(k + "=" + v);
    std::vector<char*> cargv, cenv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    for (auto& s : envs) cenv.push_back(s.data());
    cenv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(out_fd ? *out_fd : null, 1);
      dup2(fd, 2);
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
    return pid;
  }

  std::string name_;
  int providers_;
  int kids_;
  fs::path dir_;
  Env env_;
  pid_t pid_ = -1;
  std::vector<int> tracked_;
};

bool AllInState(const Json& s, const std::string& state) {
  if (s["providers"].empty()) return false;
  for (auto& p : s["providers"]) {
    if (p["state"] != state) return false;
  }
  return true;
}

// ---- 1. x11 under Xvfb ----

TEST(DesktopE2E, X11IdleSuspendsAndXdotoolInputResumesTheWholeSubtree) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  std::string policy = Policy("x11", "2s");
  DesktopRun d("x11", policy, {{"DISPLAY", x.display()}}, 2, 2);
  auto roots = d.WaitProviders();

  Json s = d.WaitStatus([](const Json& s) { return AllInState(s, "suspended"); });
  EXPECT_EQ(s["idle_source"], "x11");
  EXPECT_NE(s["providers"][0]["reason"].get<std::string>().find("suspend_after"), std::string::npos)
      << s.dump();
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 6, true); })) << States(roots);

  ASSERT_TRUE(x.Xdotool({"mousemove", "100", "100"}));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 6, false); })) << States(roots);
  s = d.CliStatus();
  EXPECT_EQ(s["idle_source"], "x11") << s.dump();
  EXPECT_NE(s["idle_source_reason"].get<std::string>(), "");
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
  EXPECT_NE(s["providers"][0]["reason"].get<std::string>().find("idle source"), std::string::npos)
      << s.dump();

  // Idle again, suspended again; a key press resumes as a mouse move did.
  d.WaitStatus([](const Json& s) { return AllInState(s, "suspended"); });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 6, true); })) << States(roots);
  ASSERT_TRUE(x.Xdotool({"key", "shift"}));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 6, false); })) << States(roots);
}

// ---- 2. gnome: Mutter's idle monitor on the session bus ----

TEST(DesktopE2E, GnomeIdleWatchSuspendsAndUserActiveWatchResumes) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter.ok());
  ASSERT_TRUE(AddMutterMonitor(bus.client()));
  // Longer than the source's 5 s re-report of "active": while the idle watch
  // has not fired, the user counts as present and nothing is suspended.
  std::string policy = Policy("gnome", "7s");
  DesktopRun d("gnome", policy, {{"DBUS_SESSION_BUS_ADDRESS", bus.address()}});
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return MutterWatches(bus.client()).first == 1; }))
      << "no idle watch added";
  Json s = d.Call("status");
  EXPECT_EQ(s["idle_source"], "gnome") << s.dump();

  std::this_thread::sleep_for(9s);  // past suspend_after, with the monitor saying "active"
  s = d.Call("status");
  EXPECT_TRUE(AllInState(s, "running"))
      << "suspended although Mutter's idle watch never fired: " << s.dump();

  ASSERT_GE(sd_bus_call_method(bus.client(), kMutter, kMutterPath, kMutter, "DeskIdle", nullptr,
                               nullptr, "t", uint64_t{60000}),
            0);
  s = d.WaitStatus([](const Json& s) { return AllInState(s, "suspended"); });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
  // The source asks to hear of the user's return only once they have left.
  ASSERT_TRUE(Poll([&] { return MutterWatches(bus.client()).second == 1; }))
      << "no user-active watch added";

  ASSERT_TRUE(dormant::testing::CallVoid(bus.client(), kMutter, kMutterPath, kMutter, "DeskInput"));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  s = d.Call("status");
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
  EXPECT_EQ(s["idle_source"], "gnome");
}

// ---- 3. logind sleep and wake ----

class DesktopE2ESleep : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bus_.ok());
    logind_ = StartLogind(bus_);
    ASSERT_NE(logind_, nullptr);
  }
  Env BusEnv() const {
    return {{"DBUS_SYSTEM_BUS_ADDRESS", bus_.address()}, {"XDG_SESSION_ID", "c1"}};
  }
  const std::vector<std::string> kHeld = {"sleep/dormant/delay"};

  // PrepareForSleep(true): the providers are stopped, and only then is the
  // delay inhibitor released.
  void SleepAndCheck(DesktopRun& d, const std::vector<int>& roots, size_t procs) {
    ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }))
        << Joined(Inhibitors(bus_.client()));
    ASSERT_TRUE(SubtreeStopped(roots, procs, false)) << States(roots);
    ASSERT_TRUE(PrepareForSleep(bus_.client(), true));
    ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()).empty(); }))
        << "the delay inhibitor was never released: " << Joined(Inhibitors(bus_.client()));
    // The first moment the lock is seen gone, every process is already stopped.
    EXPECT_TRUE(SubtreeStopped(roots, procs, true))
        << "inhibitor released before providers stopped: " << States(roots);
    EXPECT_NE(d.Log().find("suspend desk"), std::string::npos) << d.Log();
    Json s = d.Call("status");
    EXPECT_TRUE(AllInState(s, "suspended")) << s.dump();
  }

  DbusDaemon bus_;
  std::unique_ptr<DbusMock> logind_;
};

TEST_F(DesktopE2ESleep, WaitForInputKeepsProvidersStoppedUntilDormantActivity) {
  std::string policy = Policy("manual", "1h", "[power]\nafter_wake = \"wait-for-input\"\n");
  DesktopRun d("sleep", policy, BusEnv());
  auto roots = d.WaitProviders();
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));

  ASSERT_TRUE(PrepareForSleep(bus_.client(), false));
  // After the wake the lock is taken again, for the next sleep.
  EXPECT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }))
      << Joined(Inhibitors(bus_.client()));
  Json s = d.WaitStatus([](const Json& s) { return s["power"]["waiting_for_input"] == true; });
  EXPECT_NE(d.Log().find("woke after"), std::string::npos) << d.Log();
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "resumed with no input after the wake: " << States(roots);
  s = d.CliStatus();
  EXPECT_EQ(s["power"]["waiting_for_input"], true) << s.dump();
  EXPECT_TRUE(AllInState(s, "suspended")) << s.dump();

  auto [rc, out] = d.Cli({"activity"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  s = d.CliStatus();
  EXPECT_EQ(s["power"]["waiting_for_input"], false) << s.dump();
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();

  // A second sleep works the same way: the inhibitor taken after the wake is honoured.
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));
}

TEST_F(DesktopE2ESleep, WaitForInputEndsWithX11Input) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  std::string policy = Policy("x11", "1h", "[power]\nafter_wake = \"wait-for-input\"\n");
  Env env = BusEnv();
  env["DISPLAY"] = x.display();
  DesktopRun d("sleepx", policy, env);
  auto roots = d.WaitProviders();
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));
  ASSERT_TRUE(PrepareForSleep(bus_.client(), false));
  d.WaitStatus([](const Json& s) { return s["power"]["waiting_for_input"] == true; });
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "resumed with no input after the wake: " << States(roots);

  ASSERT_TRUE(x.Xdotool({"mousemove", "30", "40"}));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  Json s = d.Call("status");
  EXPECT_EQ(s["power"]["waiting_for_input"], false) << s.dump();
  EXPECT_EQ(s["idle_source"], "x11");
}

TEST_F(DesktopE2ESleep, ResumeAfterWakeRunsProvidersAtOnce) {
  std::string policy = Policy("manual", "1h", "[power]\nafter_wake = \"resume\"\n");
  DesktopRun d("wakeresume", policy, BusEnv());
  auto roots = d.WaitProviders();
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));
  ASSERT_TRUE(PrepareForSleep(bus_.client(), false));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  Json s = d.Call("status");
  EXPECT_EQ(s["power"]["waiting_for_input"], false) << s.dump();
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
  EXPECT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }))
      << Joined(Inhibitors(bus_.client()));
}

TEST_F(DesktopE2ESleep, WakeRestartsTheIdleTimersFromTheWake) {
  DesktopRun d("waketimers", Policy("manual", "4s", "[power]\nafter_wake = \"resume\"\n"),
               BusEnv());
  auto roots = d.WaitProviders();
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));
  // Asleep past the point where suspend_after, counted from the start, would
  // have expired.
  std::this_thread::sleep_for(5s);
  ASSERT_TRUE(PrepareForSleep(bus_.client(), false));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  Json s = d.Call("status");
  ASSERT_TRUE(AllInState(s, "running")) << "the sleep counted as idle time: " << s.dump();
  ASSERT_TRUE(s["providers"][0]["next"].is_object()) << s.dump();
  EXPECT_EQ(s["providers"][0]["next"]["action"], "suspend");
  // Counted from the wake: most of the 4 s are still ahead.
  EXPECT_GT(s["providers"][0]["next"]["in_ms"].get<int64_t>(), 2500) << s.dump();
  EXPECT_LT(s["idle_for_ms"].get<int64_t>(), 1500) << s.dump();
}

// ---- 4. battery ----

// Idle past [power.battery] suspend_after but not [idle]'s: nothing happens on
// AC; switching to battery suspends at once.
void ExpectBatterySuspendsAtOnce(DesktopRun& d, const std::vector<int>& roots,
                                 const std::function<void(bool)>& set_battery,
                                 std::chrono::milliseconds detect_limit) {
  Json s = d.WaitStatus([](const Json& s) { return s["idle_for_ms"].get<int64_t>() >= 3000; });
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
  EXPECT_EQ(s["power"]["on_battery"], false) << s.dump();
  EXPECT_TRUE(SubtreeStopped(roots, 3, false)) << States(roots);

  set_battery(true);
  s = d.WaitStatus([](const Json& s) { return s["power"]["on_battery"] == true; }, detect_limit);
  // The battery event itself re-evaluates: no timer has to come round first.
  EXPECT_TRUE(AllInState(s, "suspended")) << "on battery but not suspended: " << s.dump();
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
  if (!s["providers"].empty()) {
    EXPECT_NE(s["providers"][0]["reason"].get<std::string>().find("on battery"), std::string::npos)
        << s.dump();
  }
  s = d.CliStatus();
  EXPECT_EQ(s["power"]["on_battery"], true) << s.dump();

  set_battery(false);
  s = d.WaitStatus([](const Json& s) { return s["power"]["on_battery"] == false; }, detect_limit);
  // Back on AC the user is still away: providers stay suspended.
  EXPECT_TRUE(AllInState(s, "suspended")) << s.dump();
}

const std::string kBatteryPower = "[power.battery]\nsuspend_after = \"2s\"\n";

TEST(DesktopE2E, UpowerOnBatterySuspendsAtOnceWhenIdlePastTheBatteryTimer) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  DbusMock upower(bus, true, kUpower, {"--template", "upower"});
  ASSERT_TRUE(upower.ok());
  std::string policy = Policy("manual", "1h", kBatteryPower);
  DesktopRun d("upower", policy, {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}});
  auto roots = d.WaitProviders();
  ExpectBatterySuspendsAtOnce(
      d, roots, [&](bool on) { ASSERT_TRUE(SetOnBattery(bus.client(), on)); }, 10s);
}

TEST(DesktopE2E, SysfsMainsOfflineSuspendsWhenIdlePastTheBatteryTimer) {
  std::string policy = Policy("manual", "1h", kBatteryPower);
  DesktopRun d("sysfs", policy, {});
  auto roots = d.WaitProviders();
  // No UPower on any bus: the sysfs tree (read every 10 s) is the battery source.
  auto online = d.sysfs_dir() / "class/power_supply/AC/online";
  ExpectBatterySuspendsAtOnce(
      d, roots, [&](bool on) { WriteFile(online, on ? "0" : "1"); }, 30s);
}

// ---- 5. lock screen ----

TEST(DesktopE2E, SessionLockSuspendsAndUnlockResumes) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  auto logind = StartLogind(bus);
  ASSERT_NE(logind, nullptr);
  std::string policy = Policy("manual", "1h", "[power]\non_lock = \"suspend\"\n");
  DesktopRun d("lock", policy,
               {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}, {"XDG_SESSION_ID", "c1"}});
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  // The logind part has started once its delay inhibitor is there.
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus.client()).size() == 1; }));

  ASSERT_TRUE(dormant::testing::CallVoid(bus.client(), kLogind, kSessionPath, kSession, "Lock"));
  Json s = d.WaitStatus([](const Json& s) { return s["power"]["locked"] == true; });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
  s = d.CliStatus();
  EXPECT_TRUE(AllInState(s, "suspended")) << s.dump();
  EXPECT_EQ(s["power"]["locked"], true);

  ASSERT_TRUE(dormant::testing::CallVoid(bus.client(), kLogind, kSessionPath, kSession, "Unlock"));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
  s = d.WaitStatus([](const Json& s) { return s["power"]["locked"] == false; });
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
}

TEST(DesktopE2E, SessionLockIsIgnoredByDefault) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  auto logind = StartLogind(bus);
  ASSERT_NE(logind, nullptr);
  DesktopRun d("lockignore", Policy(),
               {{"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}, {"XDG_SESSION_ID", "c1"}});
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus.client()).size() == 1; }));
  ASSERT_TRUE(dormant::testing::CallVoid(bus.client(), kLogind, kSessionPath, kSession, "Lock"));
  Json s = d.WaitStatus([](const Json& s) { return s["power"]["locked"] == true; });
  EXPECT_TRUE(AllInState(s, "running")) << s.dump();
  EXPECT_TRUE(SubtreeStopped(roots, 3, false)) << States(roots);
}

// ---- 6. source = "auto" ----

TEST(DesktopE2E, AutoPicksX11WithOnlyADisplay) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  DbusDaemon bus;  // a session bus with nothing on it
  ASSERT_TRUE(bus.ok());
  DesktopRun d("autox11", Policy("auto"),
               {{"DISPLAY", x.display()}, {"DBUS_SESSION_BUS_ADDRESS", bus.address()}});
  d.WaitProviders();
  Json s = d.CliStatus();
  EXPECT_EQ(s["idle_source"], "x11") << s.dump();
  EXPECT_NE(s["idle_source_reason"].get<std::string>().find("DISPLAY=" + x.display()),
            std::string::npos)
      << s.dump();
}

TEST(DesktopE2E, AutoPicksGnomeWhenMutterIsOnTheBus) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter.ok());
  ASSERT_TRUE(AddMutterMonitor(bus.client()));
  DesktopRun d("autognome", Policy("auto"), {{"DBUS_SESSION_BUS_ADDRESS", bus.address()}});
  d.WaitProviders();
  Json s = d.CliStatus();
  EXPECT_EQ(s["idle_source"], "gnome") << s.dump();
  EXPECT_NE(s["idle_source_reason"].get<std::string>().find(kMutter), std::string::npos)
      << s.dump();
  EXPECT_EQ(MutterWatches(bus.client()).first, 1u);
}

TEST(DesktopE2E, AutoFallsToManualWithNothing) {
  DesktopRun d("autonone", Policy("auto"), {});
  d.WaitProviders();
  Json s = d.CliStatus();
  EXPECT_EQ(s["idle_source"], "manual") << s.dump();
  // logind was tried (and is absent) before manual.
  EXPECT_NE(d.Log().find("idle source logind unavailable"), std::string::npos) << d.Log();
}

TEST(DesktopE2E, AutoReplacesX11WhenTheServerDies) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  std::string policy = Policy("auto", "4s");
  DesktopRun d("autodie", policy, {{"DISPLAY", x.display()}});
  auto roots = d.WaitProviders();
  Json s = d.Call("status");
  ASSERT_EQ(s["idle_source"], "x11") << s.dump();
  // Keep the user active through the X server while it lives.
  ASSERT_TRUE(x.Xdotool({"mousemove", "5", "5"}));
  x.Kill();
  s = d.WaitStatus([](const Json& s) { return s["idle_source"] != "x11"; });
  EXPECT_EQ(s["idle_source"], "manual") << s.dump();
  std::string log = d.Log();
  EXPECT_NE(log.find("idle source x11 failed"), std::string::npos) << log;
  EXPECT_EQ(d.CliStatus()["idle_source"], "manual");
  // The broken source does not count as "active forever": idleness still ends
  // in suspension.
  d.WaitStatus([](const Json& s) { return AllInState(s, "suspended"); });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
  // And `dormant activity` still counts.
  EXPECT_EQ(d.Cli({"activity"}).first, 0);
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
}

TEST(DesktopE2E, AutoReplacesGnomeWhenMutterLeavesTheBus) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  auto mutter = std::make_unique<DbusMock>(bus, false, kMutter,
                                           std::vector<std::string>{kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter->ok());
  ASSERT_TRUE(AddMutterMonitor(bus.client()));
  DesktopRun d("autognomedie", Policy("auto", "3s"), {{"DBUS_SESSION_BUS_ADDRESS", bus.address()}});
  auto roots = d.WaitProviders();
  ASSERT_EQ(d.Call("status")["idle_source"], "gnome");
  mutter.reset();  // the monitor leaves the bus
  Json s = d.WaitStatus([](const Json& s) { return s["idle_source"] != "gnome"; });
  EXPECT_EQ(s["idle_source"], "manual") << s.dump();
  EXPECT_NE(d.Log().find("idle source gnome failed"), std::string::npos) << d.Log();
  // Not "active forever": idleness still ends in suspension.
  d.WaitStatus([](const Json& s) { return AllInState(s, "suspended"); });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
}

// ---- holds that input must not lift ----
//
// Sleep, lock and wake hold providers stopped. Input the user made just
// before the hold, or a source's own "still active" report, is not the user
// coming back: it must not resume them.

TEST_F(DesktopE2ESleep, SleepRightAfterX11InputStillStopsProvidersBeforeTheLockIsReleased) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  Env env = BusEnv();
  env["DISPLAY"] = x.display();
  DesktopRun d("sleepinput", Policy("x11", "1h", "[power]\nafter_wake = \"wait-for-input\"\n"),
               env);
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }));
  // The user was just here (the x11 source polls every 5 s while not eager,
  // so dormant has not seen this input yet), and now closes the lid.
  ASSERT_TRUE(x.Xdotool({"mousemove", "30", "40"}));
  ASSERT_TRUE(PrepareForSleep(bus_.client(), true));
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()).empty(); }));
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "the machine may sleep with providers running: " << States(roots);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "input from before the sleep resumed providers: " << States(roots);
  EXPECT_EQ(d.Log().find("resume desk"), std::string::npos) << d.Log();
}

// The logind mock with one session, and dormant in that session.
class DesktopE2ELock : public DesktopE2ESleep {};

TEST_F(DesktopE2ELock, LockRightAfterX11InputKeepsProvidersStopped) {
  Xvfb x;
  ASSERT_TRUE(x.ok());
  Env env = BusEnv();
  env["DISPLAY"] = x.display();
  DesktopRun d("lockinput", Policy("x11", "1h", "[power]\non_lock = \"suspend\"\n"), env);
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }));
  // The user presses the lock keys: their last input comes just before the lock.
  ASSERT_TRUE(x.Xdotool({"key", "super+l"}));
  ASSERT_TRUE(dormant::testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Lock"));
  // The status shows the lock once the event was handled (and acted on).
  d.WaitStatus([](const Json& s) { return s["power"]["locked"] == true; });
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "input from before the lock resumed providers: " << States(roots);
  EXPECT_EQ(d.Log().find("resume desk"), std::string::npos) << d.Log();
  ASSERT_TRUE(dormant::testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Unlock"));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
}

TEST_F(DesktopE2ELock, LockWithGnomeSourceStaysStoppedPastTheActiveRefresh) {
  DbusMock mutter(bus_, false, kMutter, {kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter.ok());
  ASSERT_TRUE(AddMutterMonitor(bus_.client()));
  Env env = BusEnv();
  env["DBUS_SESSION_BUS_ADDRESS"] = bus_.address();
  DesktopRun d("lockgnome", Policy("gnome", "1h", "[power]\non_lock = \"suspend\"\n"), env);
  auto roots = d.WaitProviders();
  ASSERT_TRUE(Poll([&] { return Inhibitors(bus_.client()) == kHeld; }));
  ASSERT_TRUE(dormant::testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Lock"));
  d.WaitStatus([](const Json& s) { return s["power"]["locked"] == true; });
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, true); })) << States(roots);
  // The gnome source re-reports "active" every 5 s until Mutter's idle watch
  // fires; that is no input.
  std::this_thread::sleep_for(6500ms);
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "resumed while locked, with no input: " << States(roots);
  ASSERT_TRUE(dormant::testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Unlock"));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
}

TEST_F(DesktopE2ESleep, WaitForInputWithGnomeSourceStaysStoppedUntilMutterSeesInput) {
  DbusMock mutter(bus_, false, kMutter, {kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter.ok());
  ASSERT_TRUE(AddMutterMonitor(bus_.client()));
  Env env = BusEnv();
  env["DBUS_SESSION_BUS_ADDRESS"] = bus_.address();
  DesktopRun d("wakegnome", Policy("gnome", "1h", "[power]\nafter_wake = \"wait-for-input\"\n"),
               env);
  auto roots = d.WaitProviders();
  ASSERT_NO_FATAL_FAILURE(SleepAndCheck(d, roots, 3));
  ASSERT_TRUE(PrepareForSleep(bus_.client(), false));
  d.WaitStatus([](const Json& s) { return s["power"]["waiting_for_input"] == true; });
  std::this_thread::sleep_for(6500ms);  // past the source's 5 s "active" re-report
  EXPECT_TRUE(SubtreeStopped(roots, 3, true))
      << "resumed after the wake with no input: " << States(roots);
  // Input as Mutter sees it ends the wait.
  ASSERT_TRUE(
      dormant::testing::CallVoid(bus_.client(), kMutter, kMutterPath, kMutter, "DeskInput"));
  EXPECT_TRUE(Poll([&] { return SubtreeStopped(roots, 3, false); })) << States(roots);
}

}  // namespace
