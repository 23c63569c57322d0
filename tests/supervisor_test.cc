// `dormant run` on real process trees: the test binary re-run in helper modes
// plays the app and its providers; states are read from the real /proc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "launcher/control.h"
#include "platform/cgroup_freezer.h"
#include "platform/process_table.h"
#include "tests/helper.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// ---- helper modes ----

[[noreturn]] void SleepForever() {
  for (;;) pause();
}

pid_t Spawn(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  return pid;
}

// A provider with `kids` children (each a plain sleeper) below it.
DORMANT_HELPER(provider) {
  int kids = argc > 0 ? std::atoi(argv[0]) : 0;
  for (int i = 0; i < kids; ++i) {
    if (fork() == 0) SleepForever();
  }
  SleepForever();
}

// A provider that ignores SIGTERM: only SIGKILL ends it.
DORMANT_HELPER(stubborn_provider) {
  signal(SIGTERM, SIG_IGN);
  SleepForever();
}

// The app: starts `n` providers (args: n kind [kids]; kind "p" for `provider`,
// "s" for `stubborn_provider`, so that the app's own argv matches no provider)
// and then lives until signalled.
DORMANT_HELPER(app) {
  int n = std::atoi(argv[0]);
  std::string mode = argv[1][0] == 's' ? "stubborn_provider" : "provider";
  std::string kids = argc > 2 ? argv[2] : "0";
  for (int i = 0; i < n; ++i) Spawn(dormant::testing::HelperArgv(mode, {kids}));
  SleepForever();
}

// The app double-forks its provider: the provider's parent is gone at once.
DORMANT_HELPER(double_fork_app) {
  pid_t mid = fork();
  if (mid == 0) {
    Spawn(dormant::testing::HelperArgv("provider", {"1"}));
    _exit(0);
  }
  waitpid(mid, nullptr, 0);
  SleepForever();
}

// The app exits with argv[0] after argv[1] ms, leaving its provider (kind
// argv[2], as for `app`) behind.
DORMANT_HELPER(leaving_app) {
  bool stubborn = argc > 2 && argv[2][0] == 's';
  Spawn(dormant::testing::HelperArgv(stubborn ? "stubborn_provider" : "provider", {"2"}));
  usleep(std::atoi(argv[1]) * 1000);
  return std::atoi(argv[0]);
}

// ---- harness ----

class DormantRun {
 public:
  DormantRun(const std::string& name, const std::string& policy, std::vector<std::string> app)
      : name_(name) {
    dir_ = fs::temp_directory_path() / ("dormant-sup-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "run");
    fs::permissions(dir_ / "run", fs::perms::owner_all, fs::perm_options::replace);
    setenv("XDG_RUNTIME_DIR", (dir_ / "run").c_str(), 1);
    std::ofstream(dir_ / "policy.toml") << policy;
    std::vector<std::string> argv = {DORMANT_BINARY, "run", "--policy", (dir_ / "policy.toml").string(),
                                     "--name", name, "--"};
    argv.insert(argv.end(), app.begin(), app.end());
    std::string log = (dir_ / "dormant.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      setenv("DORMANT_SYSTEM_DIR", "/nonexistent", 1);
      setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
      setenv("XDG_STATE_HOME", (dir_ / "state").c_str(), 1);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
  }
  ~DormantRun() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    // Whatever the test left, with everything below it: continue and kill it.
    auto table = dormant::platform::CreateProcessTable();
    std::vector<int> all;
    for (int p : leftovers_) {
      for (int q : dormant::platform::Subtree(*table, p)) all.push_back(q);
    }
    for (int p : all) {
      kill(p, SIGCONT);
      kill(p, SIGKILL);
    }
    if (HasFailure()) {
      std::ifstream in(dir_ / "dormant.log");
      std::string line;
      while (std::getline(in, line)) std::fprintf(stderr, "  | %s\n", line.c_str());
    }
    fs::remove_all(dir_);
  }
  static bool HasFailure() { return ::testing::Test::HasFailure(); }

  nlohmann::json Call(const std::string& cmd) {
    std::string path = (dir_ / "run" / "dormant" / (name_ + ".sock")).string();
    auto r = dormant::launcher::Call(path, {{"cmd", cmd}});
    return r ? *r : nlohmann::json{{"ok", false}, {"error", r.error().message}};
  }
  // Waits until `pred(status)` holds; returns the last status.
  nlohmann::json WaitStatus(const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds limit = 15s) {
    auto end = std::chrono::steady_clock::now() + limit;
    nlohmann::json s;
    while (std::chrono::steady_clock::now() < end) {
      s = Call("status");
      if (s.value("ok", false) && pred(s)) return s;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "condition not reached; last status: " << s.dump();
    return s;
  }
  // Waits for dormant to exit; returns its exit status (or -1 on timeout).
  int Wait(std::chrono::milliseconds limit = 20s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }
  void Track(const std::vector<int>& pids) { leftovers_.insert(leftovers_.end(), pids.begin(), pids.end()); }
  pid_t pid() const { return pid_; }
  void RewritePolicy(const std::string& text) { std::ofstream(dir_ / "policy.toml") << text; }
  std::string Log() {
    std::ifstream in(dir_ / "dormant.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string name_;
  fs::path dir_;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::vector<int> leftovers_;
};

std::string Policy(const std::string& suspend, const std::string& kill, const std::string& grace = "1s",
                   const std::string& mode = "provider") {
  return "[idle]\nsource = \"manual\"\nsuspend_after = \"" + suspend + "\"\nkill_after = \"" + kill +
         "\"\nkill_grace = \"" + grace + "\"\n\n[[provider]]\nname = \"fake\"\nexe = \"dormant_tests\"\n"
         "args = [\"" + mode + "\"]\n";
}

std::vector<std::string> App(std::vector<std::string> args) { return dormant::testing::HelperArgv("app", args); }

std::vector<int> ProviderPids(const nlohmann::json& s) {
  std::vector<int> pids;
  for (auto& p : s["providers"]) pids.push_back(p["pid"].get<int>());
  return pids;
}

bool AllInState(const nlohmann::json& s, const std::string& state, size_t n) {
  if (s["providers"].size() != n) return false;
  for (auto& p : s["providers"]) {
    if (p["state"] != state) return false;
  }
  return true;
}

// Every process of every provider's subtree, read from /proc.
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

bool WaitProc(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

bool Alive(int pid) {
  auto table = dormant::platform::CreateProcessTable();
  auto i = table->Read(pid);
  return i && i->state != 'Z';
}

// ---- tests ----

TEST(Supervisor, IdleSuspendsWholeProviderSubtreesAndActivityResumes) {
  DormantRun d("subtree", Policy("1s", "1h"), App({"2", "p", "3"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 2; });
  auto roots = ProviderPids(s);
  d.Track(roots);
  s = d.WaitStatus([](auto& s) { return AllInState(s, "suspended", 2); });
  auto procs = SubtreeInfo(roots);
  EXPECT_EQ(procs.size(), 8u);  // 2 providers x (1 + 3 children)
  for (auto& p : procs) EXPECT_EQ(p.state, 'T') << "pid " << p.pid;
  // The app itself is never stopped.
  int app = s["app"]["pid"].get<int>();
  auto table = dormant::platform::CreateProcessTable();
  EXPECT_NE(table->Read(app)->state, 'T');

  EXPECT_TRUE(d.Call("activity").value("ok", false));
  for (auto& p : SubtreeInfo(roots)) EXPECT_NE(p.state, 'T') << "pid " << p.pid;
  s = d.Call("status");
  EXPECT_TRUE(AllInState(s, "running", 2)) << s.dump();
  EXPECT_EQ(s["providers"][0]["next"]["action"], "suspend");
  kill(app, SIGTERM);
  EXPECT_EQ(d.Wait(), 128 + SIGTERM);
}

TEST(Supervisor, KillAfterEndsProvidersAndTheAppLivesOn) {
  DormantRun d("killafter", Policy("1s", "2s", "1s", "stubborn_provider"), App({"1", "s"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  int root = ProviderPids(s)[0];
  d.Track({root});
  d.WaitStatus([](auto& s) { return AllInState(s, "killed", 1) || s["providers"].empty(); });
  EXPECT_TRUE(WaitProc([&] { return !Alive(root); })) << "stubborn provider survived SIGKILL";
  s = d.WaitStatus([](auto& s) { return s["providers"].empty(); });
  EXPECT_TRUE(s["app"]["running"].get<bool>());
  EXPECT_TRUE(Alive(s["app"]["pid"].get<int>()));
  EXPECT_NE(d.Log().find("kill fake"), std::string::npos);
  kill(s["app"]["pid"].get<int>(), SIGKILL);
  EXPECT_EQ(d.Wait(), 128 + SIGKILL);
}

TEST(Supervisor, DoubleForkedProviderIsFollowedAndSuspended) {
  DormantRun d("dfork", Policy("1s", "1h"), dormant::testing::HelperArgv("double_fork_app"));
  auto s = d.WaitStatus([](auto& s) { return AllInState(s, "suspended", 1); });
  auto roots = ProviderPids(s);
  d.Track(roots);
  auto procs = SubtreeInfo(roots);
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].ppid, d.pid());  // adopted by dormant, the subreaper
  for (auto& p : procs) EXPECT_EQ(p.state, 'T');
  d.Call("activity");
  for (auto& p : SubtreeInfo(roots)) EXPECT_NE(p.state, 'T');
  kill(s["app"]["pid"].get<int>(), SIGTERM);
  // The orphaned provider is ended after the app goes: nothing is left behind.
  EXPECT_EQ(d.Wait(), 128 + SIGTERM);
  for (int r : roots) EXPECT_FALSE(Alive(r));
}

TEST(Supervisor, AppExitStatusAndLeftoverProvidersEnded) {
  DormantRun d("exitcode", Policy("1h", "2h", "1s"), dormant::testing::HelperArgv("leaving_app", {"7", "500"}));
  EXPECT_EQ(d.Wait(), 7);
  EXPECT_NE(d.Log().find("the app exited"), std::string::npos) << d.Log();
}

TEST(Supervisor, LeftoverStubbornProviderIsKilledAfterGrace) {
  DormantRun d("stubborn", Policy("1h", "2h", "1s", "stubborn_provider"),
               dormant::testing::HelperArgv("leaving_app", {"3", "500", "s"}));
  EXPECT_EQ(d.Wait(), 3);
  EXPECT_NE(d.Log().find("kill fake"), std::string::npos) << d.Log();
}

TEST(Supervisor, SignalsAreForwardedToTheApp) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    DormantRun d("sig" + std::to_string(sig), Policy("1h", "2h"), App({"1", "p"}));
    auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
    kill(d.pid(), sig);
    int want = 128 + sig;
    EXPECT_EQ(d.Wait(), want) << strsignal(sig);
  }
}

TEST(Supervisor, PauseAndResume) {
  DormantRun d("pause", Policy("1h", "2h"), App({"1", "p", "1"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  auto roots = ProviderPids(s);
  d.Track(roots);
  EXPECT_TRUE(d.Call("pause").value("ok", false));
  for (auto& p : SubtreeInfo(roots)) EXPECT_EQ(p.state, 'T');
  EXPECT_TRUE(d.Call("activity").value("ok", false));
  EXPECT_EQ(d.Call("status")["providers"][0]["state"], "paused");
  EXPECT_TRUE(d.Call("resume").value("ok", false));
  for (auto& p : SubtreeInfo(roots)) EXPECT_NE(p.state, 'T');
  kill(s["app"]["pid"].get<int>(), SIGTERM);
  d.Wait();
}

TEST(Supervisor, GuardianContinuesProvidersWhenDormantIsKilled) {
  DormantRun d("guardian", Policy("1s", "1h"), App({"1", "p", "2"}));
  auto s = d.WaitStatus([](auto& s) { return AllInState(s, "suspended", 1); });
  auto roots = ProviderPids(s);
  int app = s["app"]["pid"].get<int>();
  d.Track(roots);
  d.Track({app});
  for (auto& p : SubtreeInfo(roots)) ASSERT_EQ(p.state, 'T');
  kill(d.pid(), SIGKILL);
  EXPECT_EQ(d.Wait(), 128 + SIGKILL);
  EXPECT_TRUE(WaitProc([&] {
    for (auto& p : SubtreeInfo(roots)) {
      if (p.state == 'T') return false;
    }
    return true;
  })) << "providers left stopped after dormant died";
  EXPECT_EQ(SubtreeInfo(roots).size(), 3u);
  EXPECT_TRUE(Alive(app));
}

TEST(Supervisor, MalformedAndOversizedRequestsChangeNothing) {
  DormantRun d("badreq", Policy("1h", "2h"), App({"1", "p"}));
  auto before = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  EXPECT_EQ(d.Call("frobnicate")["error"], "unknown command 'frobnicate'");
  std::string path = (fs::path(getenv("XDG_RUNTIME_DIR")) / "dormant" / "badreq.sock").string();
  auto raw = [&](const std::string& bytes) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    (void)!write(fd, bytes.data(), bytes.size());
    std::string reply;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) reply.append(buf, n);
    close(fd);
    return nlohmann::json::parse(reply, nullptr, false);
  };
  EXPECT_EQ(raw("not json\n")["error"], "request is not valid JSON");
  EXPECT_EQ(raw("[1,2]\n")["error"], "request must be a JSON object");
  EXPECT_EQ(raw("{\"cmd\": 5}\n")["error"], "request needs a string field \"cmd\"");
  EXPECT_EQ(raw(std::string(10000, 'x'))["error"], "request larger than 4096 bytes");
  auto after = d.Call("status");
  EXPECT_EQ(after["providers"][0]["state"], "running");
  EXPECT_EQ(after["paused"], false);
  kill(after["app"]["pid"].get<int>(), SIGTERM);
  d.Wait();
}

TEST(Supervisor, BadPolicyStartsNothing) {
  DormantRun d("badpolicy", "[idle]\nsuspend_after = \"soon\"\n", App({"1", "p"}));
  EXPECT_EQ(d.Wait(), 2);
  EXPECT_NE(d.Log().find("suspend_after"), std::string::npos) << d.Log();
  EXPECT_EQ(d.Log().find("control "), std::string::npos);  // no supervisor came up
}

TEST(Supervisor, CommandThatCannotRunExits127) {
  DormantRun d("noexec", Policy("1h", "2h"), {"/nonexistent/app"});
  EXPECT_EQ(d.Wait(), 127);
  EXPECT_NE(d.Log().find("cannot run '/nonexistent/app'"), std::string::npos) << d.Log();
}

}  // namespace

namespace {

TEST(Supervisor, ReloadAppliesANewPolicyAndRefusesABrokenOne) {
  DormantRun d("reload", Policy("1h", "2h"), App({"1", "p"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  d.Track(ProviderPids(s));
  EXPECT_GT(s["providers"][0]["next"]["in_ms"].get<int64_t>(), 60 * 1000);
  // A broken policy: refused with the loader's message; the old one stays.
  d.RewritePolicy("[idle]\nsuspend_afterr = \"1s\"\n");
  auto r = d.Call("reload");
  EXPECT_FALSE(r.value("ok", true));
  ASSERT_TRUE(r.contains("errors")) << r.dump();
  EXPECT_NE(r["errors"][0].get<std::string>().find("suspend_afterr"), std::string::npos) << r.dump();
  EXPECT_EQ(d.Call("status")["providers"][0]["state"], "running");
  // A good one with a shorter timer takes effect at once.
  d.RewritePolicy(Policy("1s", "1h"));
  EXPECT_TRUE(d.Call("reload").value("ok", false));
  d.WaitStatus([](auto& s) { return AllInState(s, "suspended", 1); });
  kill(s["app"]["pid"].get<int>(), SIGTERM);
  d.Wait();
}

}  // namespace

// ---- [suspend] freezer ----

namespace {

// A provider that counts in a file (argv[0]) every 10 ms: its count moves only
// while it runs, whatever /proc says of its state.
DORMANT_HELPER(ticking_provider) {
  for (long n = 1;; ++n) {
    std::string text = std::to_string(n) + "\n";
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)!write(fd, text.data(), text.size());
      close(fd);
    }
    usleep(10000);
  }
}

// The app: one ticking_provider counting in argv[0], with a child below it.
DORMANT_HELPER(ticking_app) {
  pid_t provider = fork();
  if (provider == 0) {
    if (fork() == 0) SleepForever();
    auto argv2 = dormant::testing::HelperArgv("ticking_provider", {argv[0]});
    std::vector<char*> a;
    for (auto& s : argv2) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  SleepForever();
}

long Ticks(const fs::path& file) {
  std::ifstream in(file);
  long n = 0;
  in >> n;
  return n;
}

// The cgroup v2 directory of `pid`, as a path under the cgroup2 mount, and
// what its cgroup.events says of `frozen` (-1: unreadable).
std::string CgroupDirOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string rel;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) rel = line.substr(3);
  }
  auto own = dormant::platform::OwnCgroupDir();
  std::ifstream self("/proc/self/cgroup");
  std::string self_rel;
  for (std::string line; std::getline(self, line);) {
    if (line.rfind("0::", 0) == 0) self_rel = line.substr(3);
  }
  if (!own || rel.empty() || !rel.starts_with(self_rel)) return {};
  // Our own directory is MOUNT + self_rel; pid's is MOUNT + rel.
  std::string mount = own->substr(0, own->size() - (self_rel == "/" ? 0 : self_rel.size()));
  return mount + (rel == "/" ? "" : rel);
}

int FrozenValue(const std::string& dir) {
  std::ifstream ev(dir + "/cgroup.events");
  for (std::string line; std::getline(ev, line);) {
    if (line.rfind("frozen ", 0) == 0) return line[7] - '0';
  }
  return -1;
}

std::string FreezerPolicy(const std::string& freezer, const std::string& mode = "provider") {
  return Policy("1h", "2h", "1s", mode) + "\n[suspend]\nfreezer = \"" + freezer + "\"\n";
}

TEST(SupervisorCgroup, GuardianThawsCgroupFrozenProvidersWhenDormantIsKilled) {
  auto own = dormant::platform::OwnCgroupDir();
  if (!own) GTEST_SKIP() << "no cgroup v2: " << own.error().message;
  if (auto ok = dormant::platform::CheckDelegated(*own); !ok) {
    GTEST_SKIP() << "our cgroup is not delegated to us: " << ok.error().message;
  }
  fs::path ticks = fs::temp_directory_path() / ("dormant-ticks-" + std::to_string(getpid()));
  DormantRun d("cgguard", FreezerPolicy("cgroup", "ticking_provider"),
               dormant::testing::HelperArgv("ticking_app", {ticks.string()}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  auto roots = ProviderPids(s);
  int app = s["app"]["pid"].get<int>();
  d.Track(roots);
  d.Track({app});
  EXPECT_EQ(s["freezer"], "cgroup") << s.dump();
  EXPECT_NE(s["freezer_reason"].get<std::string>().find(*own), std::string::npos) << s.dump();
  ASSERT_TRUE(WaitProc([&] { return Ticks(ticks) > 0 && SubtreeInfo(roots).size() == 2; }));

  ASSERT_TRUE(d.Call("pause").value("ok", false));
  // Frozen by the cgroup freezer: in a cgroup of its own under ours, frozen
  // there, and not stopped by a signal.
  std::string dir = CgroupDirOf(roots[0]);
  EXPECT_NE(dir.find("/dormant-" + std::to_string(roots[0]) + "-"), std::string::npos) << dir;
  EXPECT_EQ(FrozenValue(dir), 1) << dir;
  for (auto& p : SubtreeInfo(roots)) {
    EXPECT_NE(p.state, 'T') << "pid " << p.pid;
    EXPECT_EQ(CgroupDirOf(p.pid), dir) << "pid " << p.pid;
  }
  long frozen_at = Ticks(ticks);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Ticks(ticks), frozen_at) << "a frozen provider counted on";

  kill(d.pid(), SIGKILL);
  EXPECT_EQ(d.Wait(), 128 + SIGKILL);
  EXPECT_TRUE(WaitProc([&] { return FrozenValue(dir) == 0; })) << dir << " left frozen after dormant died";
  EXPECT_TRUE(WaitProc([&] { return Ticks(ticks) > frozen_at; })) << "the provider does not run again";
  EXPECT_EQ(SubtreeInfo(roots).size(), 2u);
  EXPECT_TRUE(Alive(app));

  // Leave nothing behind: end the tree, then remove its (now empty) cgroup.
  for (auto& p : SubtreeInfo(roots)) kill(p.pid, SIGKILL);
  kill(app, SIGKILL);
  EXPECT_TRUE(WaitProc([&] { return !Alive(roots[0]); }));
  WaitProc([&] { return rmdir(dir.c_str()) == 0 || errno == ENOENT; });
  fs::remove(ticks);
}

TEST(SupervisorCgroup, CgroupFreezerStopsAndResumesWithPause) {
  auto own = dormant::platform::OwnCgroupDir();
  if (!own) GTEST_SKIP() << "no cgroup v2: " << own.error().message;
  if (auto ok = dormant::platform::CheckDelegated(*own); !ok) {
    GTEST_SKIP() << "our cgroup is not delegated to us: " << ok.error().message;
  }
  DormantRun d("cgpause", FreezerPolicy("auto"), App({"1", "p", "2"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  auto roots = ProviderPids(s);
  d.Track(roots);
  EXPECT_EQ(s["freezer"], "cgroup") << s.dump();
  EXPECT_EQ(s["freezer_reason"].get<std::string>().rfind("auto: ", 0), 0u) << s.dump();
  ASSERT_TRUE(WaitProc([&] { return SubtreeInfo(roots).size() == 3; }));
  ASSERT_TRUE(d.Call("pause").value("ok", false));
  std::string dir = CgroupDirOf(roots[0]);
  EXPECT_EQ(FrozenValue(dir), 1) << dir;
  for (auto& p : SubtreeInfo(roots)) EXPECT_EQ(CgroupDirOf(p.pid), dir) << "pid " << p.pid;
  ASSERT_TRUE(d.Call("resume").value("ok", false));
  EXPECT_EQ(FrozenValue(dir), 0) << dir;
  kill(s["app"]["pid"].get<int>(), SIGTERM);
  EXPECT_EQ(d.Wait(), 128 + SIGTERM);
  // On its way out the freezer removes the cgroups it made, once empty.
  EXPECT_TRUE(WaitProc([&] { return !fs::exists(dir); })) << dir;
}

// DORMANT_TEST_CGROUP_DIR stands in for dormant's own cgroup: a plain
// directory, which no cgroup freezer can use.
class NoCgroup {
 public:
  NoCgroup() : dir_(fs::temp_directory_path() / ("dormant-nocg-" + std::to_string(getpid()))) {
    fs::create_directories(dir_);
    setenv("DORMANT_TEST_CGROUP_DIR", dir_.c_str(), 1);
  }
  ~NoCgroup() {
    unsetenv("DORMANT_TEST_CGROUP_DIR");
    fs::remove_all(dir_);
  }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
};

TEST(SupervisorCgroup, AutoFallsBackToSignalsAndSaysWhy) {
  NoCgroup none;
  DormantRun d("cgauto", FreezerPolicy("auto"), App({"1", "p", "1"}));
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  auto roots = ProviderPids(s);
  d.Track(roots);
  EXPECT_EQ(s["freezer"], "sigstop") << s.dump();
  std::string why = s["freezer_reason"].get<std::string>();
  EXPECT_EQ(why.rfind("auto: no delegated cgroup v2 directory (", 0), 0u) << why;
  EXPECT_NE(why.find(none.dir() + ": not a cgroup v2 directory"), std::string::npos) << why;
  EXPECT_NE(d.Log().find("freezer sigstop (auto: no delegated cgroup v2 directory"), std::string::npos)
      << d.Log();
  ASSERT_TRUE(WaitProc([&] { return SubtreeInfo(roots).size() == 2; }));
  ASSERT_TRUE(d.Call("pause").value("ok", false));
  for (auto& p : SubtreeInfo(roots)) EXPECT_EQ(p.state, 'T') << "pid " << p.pid;
  EXPECT_TRUE(d.Call("resume").value("ok", false));
  kill(s["app"]["pid"].get<int>(), SIGTERM);
  EXPECT_EQ(d.Wait(), 128 + SIGTERM);
}

TEST(SupervisorCgroup, CgroupWithoutACgroupRefusesToStart) {
  NoCgroup none;
  DormantRun d("cgrefuse", FreezerPolicy("cgroup"), App({"1", "p"}));
  EXPECT_EQ(d.Wait(), 2);
  std::string log = d.Log();
  EXPECT_NE(log.find("dormant: [suspend] freezer = \"cgroup\" but the cgroup v2 freezer is unavailable: " +
                     none.dir() + ": not a cgroup v2 directory"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("control "), std::string::npos);  // no supervisor came up
}

}  // namespace
