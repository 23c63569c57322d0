// Issue 4's figures through the real `dormant run`, from real input to
// providers running again, and dormant's own cost while idle, per source.
//
//   bench_desktop_resume [--rounds 50] [--window 60] [--providers 2] [--kids 3]
//                        [--sources x11,gnome] [--cost 3]
//
// Latency (per round, providers suspended first, every process of their
// subtrees read from /proc until the last one is no longer stopped):
//  - x11 (Xvfb, `[idle] source = "x11"`): input from xdotool, timed from its
//    spawn and from its exit; and input injected in-process with XTest
//    (libXtst loaded at run time), timed from the moment the X server has
//    processed it (XSync returned).
//  - gnome (python3-dbusmock Mutter idle monitor on a private dbus-daemon,
//    `source = "gnome"`): the monitor emits WatchFired on dormant's
//    user-active watch; timed from the request to the mock, and from its
//    reply (by then the signal has been routed to dormant).
// Cost: for each source, dormant (the supervisor process, all threads) over
// `--window` seconds with providers suspended and no input ("idle"), and with
// providers running and no suspension due ("active"): CPU as % of one core
// (scheduler run time) and wake-ups per minute (voluntary context switches).
// "manual" is the baseline: what dormant costs with no desktop source at all
// (process connector, tree walk every 2 s, power clock/sysfs every 10 s).
// --cost: 1 = dormant as it runs (the netlink process connector wakes it for
// every fork/exec/exit on the machine, so a busy machine dominates the
// figures; the machine's event rate is printed alongside); 2 = with the
// connector refused by seccomp (tree walk every 250 ms, no outside events),
// which shows the sources' own share; 3 = both; 0 = none.
//
// The app and providers are this program re-run in helper modes.
#include <X11/Xlib.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launcher/control.h"
#include "platform/process_table.h"
#include "platform/process_watcher.h"
// The test plumbing (Xvfb, dbus-daemon, dbusmock) serves the benchmark as it
// is; it has no test-framework dependency.
#include "tests/idle_test_env.cc"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kMarker = "--desk-bench-provider";
constexpr const char* kMutter = "org.gnome.Mutter.IdleMonitor";
constexpr const char* kMutterPath = "/org/gnome/Mutter/IdleMonitor/Core";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string SelfPath() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

// ---- helper modes ----

[[noreturn]] void Linger() {
  for (;;) pause();
}

// `provider MARKER KIDS`: a provider with KIDS sleeping children.
// `app N KIDS`: N providers.
bool RunHelper(int argc, char** argv) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "provider" && argc >= 4) {
    for (int i = 0; i < std::atoi(argv[3]); ++i) {
      if (fork() == 0) Linger();
    }
    Linger();
  }
  if (mode == "app" && argc >= 4) {
    signal(SIGCHLD, SIG_IGN);
    std::string self = SelfPath();
    for (int i = 0; i < std::atoi(argv[2]); ++i) {
      if (fork() == 0) {
        signal(SIGCHLD, SIG_DFL);
        execl(self.c_str(), self.c_str(), "provider", kMarker, argv[3], nullptr);
        _exit(127);
      }
    }
    Linger();
  }
  return false;
}

// ---- /proc ----

// An open /proc/PID/stat, re-read with pread.
class StatFile {
 public:
  explicit StatFile(int pid) {
    fd_ = open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~StatFile() {
    if (fd_ >= 0) close(fd_);
  }
  StatFile(StatFile&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StatFile(const StatFile&) = delete;
  StatFile& operator=(const StatFile&) = delete;
  // The state letter; 0 when the process is gone.
  char State() const {
    char buf[512];
    ssize_t n = fd_ < 0 ? -1 : pread(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char* rp = std::strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
  }

 private:
  int fd_ = -1;
};

bool Stopped(char s) { return s == 'T' || s == 't'; }

std::vector<int> SubtreePids(const std::vector<int>& roots) {
  auto table = dormant::platform::CreateProcessTable();
  std::vector<int> out;
  for (int r : roots) {
    auto s = dormant::platform::Subtree(*table, r);
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

struct Cost {
  long long run_ns = 0;     // scheduler run time, all threads
  long long voluntary = 0;  // voluntary context switches: wake-ups
  Clock::time_point at;
};

long long StatusValue(const fs::path& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  }
  return 0;
}

Cost SampleCost(int pid) {
  Cost c;
  c.at = Clock::now();
  std::error_code ec;
  for (auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream ss(t.path() / "schedstat");
    long long run = 0;
    if (ss >> run) c.run_ns += run;
    c.voluntary += StatusValue(t.path() / "status", "voluntary_ctxt_switches");
  }
  return c;
}

// ---- figures ----

void PrintLatency(const std::string& what, std::vector<double> v) {
  if (v.empty()) {
    std::printf("  %-58s no samples\n", what.c_str());
    return;
  }
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  std::printf("  %-58s n=%-3zu p50 %7.2f  p99 %7.2f  max %7.2f ms\n", what.c_str(), v.size(),
              at(0.5), at(0.99), v.back());
  std::fflush(stdout);
}

// ---- one `dormant run` in a private environment ----

// Refuses socket(AF_NETLINK, *, NETLINK_CONNECTOR) to this process and its
// descendants: dormant then finds processes by walking its tree (every
// 250 ms) and is not woken by process events elsewhere on the machine.
void RefuseProcessConnector() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) _exit(126);
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2,
                       SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                       SCMP_A2(SCMP_CMP_EQ, NETLINK_CONNECTOR)) != 0 ||
      seccomp_load(ctx) != 0) {
    _exit(126);
  }
  seccomp_release(ctx);
}

class Dormant {
 public:
  Dormant(const std::string& source, const std::string& suspend_after,
          const std::map<std::string, std::string>& env, int providers, int kids,
          bool connector = true)
      : providers_(providers), kids_(kids) {
    auto table = dormant::platform::CreateProcessTable();
    for (int c : table->Children(getpid())) components_.insert(c);
    char tmpl[] = "/tmp/dormant-deskbench-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ / "run");
    fs::permissions(dir_ / "run", fs::perms::owner_all, fs::perm_options::replace);
    fs::create_directories(dir_ / "sys/class/power_supply/AC");
    std::ofstream(dir_ / "sys/class/power_supply/AC/type") << "Mains\n";
    std::ofstream(dir_ / "sys/class/power_supply/AC/online") << "1\n";
    std::string self = SelfPath();
    std::ofstream(dir_ / "policy.toml")
        << "[idle]\nsource = \"" << source << "\"\nsuspend_after = \"" << suspend_after
        << "\"\nkill_after = \"10h\"\n\n[[provider]]\nname = \"bench\"\nexe = \""
        << fs::path(self).filename().string() << "\"\nargs = [\"" << kMarker << "\"]\n";
    std::map<std::string, std::string> vars = {
        {"XDG_RUNTIME_DIR", (dir_ / "run").string()},
        {"DORMANT_SYSTEM_DIR", (dir_ / "no-system").string()},
        {"XDG_CONFIG_HOME", (dir_ / "no-config").string()},
        {"HOME", (dir_ / "home").string()},
        {"XDG_STATE_HOME", (dir_ / "home/state").string()},
        {"DBUS_SESSION_BUS_ADDRESS", "unix:path=" + (dir_ / "no-bus").string()},
        {"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + (dir_ / "no-bus").string()},
        {"DORMANT_SYSFS_ROOT", (dir_ / "sys").string()}};
    for (auto& [k, v] : env) vars[k] = v;
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      std::string key = kv.substr(0, kv.find('='));
      if (vars.count(key) == 0 && key != "DISPLAY" && key != "WAYLAND_DISPLAY" &&
          key != "XDG_SESSION_TYPE" && key != "XDG_SESSION_ID" && key != "DORMANT_LEDGER" &&
          key != "CODEX_HOME" && key != "CLAUDE_CONFIG_DIR") {
        envs.push_back(kv);
      }
    }
    for (auto& [k, v] : vars) envs.push_back(k + "=" + v);
    std::vector<std::string> argv = {DORMANT_BINARY,
                                     "run",
                                     "--policy",
                                     (dir_ / "policy.toml").string(),
                                     "--name",
                                     "deskbench",
                                     "--",
                                     self,
                                     "app",
                                     std::to_string(providers),
                                     std::to_string(kids)};
    std::vector<char*> cargv, cenv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    for (auto& s : envs) cenv.push_back(s.data());
    cenv.push_back(nullptr);
    std::string log = (dir_ / "dormant.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      setsid();
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(fd, 2);
      if (!connector) RefuseProcessConnector();
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
  }

  ~Dormant() { Stop(); }

  // SIGTERM (forwarded to the app, which ends the run), then whatever is left
  // below us is killed and reaped.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    auto end = Clock::now() + 20s;
    while (Clock::now() < end && waitpid(pid_, nullptr, WNOHANG) == 0)
      std::this_thread::sleep_for(10ms);
    if (waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    // Orphans of the run came to us (a subreaper): end and reap them, but
    // not the desktop components (Xvfb, dbus-daemon) started before the run.
    auto table = dormant::platform::CreateProcessTable();
    for (int c : table->Children(getpid())) {
      if (components_.count(c) != 0) continue;
      for (int p : dormant::platform::Subtree(*table, c)) {
        kill(p, SIGCONT);
        kill(p, SIGKILL);
      }
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    pid_ = -1;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  int pid() const { return pid_; }

  Json GetStatus() {
    auto r = dormant::launcher::Call((dir_ / "run/dormant/deskbench.sock").string(),
                                     {{"cmd", "status"}});
    return r ? *r : Json{{"ok", false}, {"error", r.error().message}};
  }

  [[noreturn]] void Fail(const std::string& why) {
    std::ifstream in(dir_ / "dormant.log");
    std::fprintf(stderr, "bench: %s\n--- dormant log ---\n%s\n", why.c_str(),
                 std::string(std::istreambuf_iterator<char>(in), {}).c_str());
    Stop();
    std::exit(1);
  }

  // The provider roots, once every process of their subtrees exists.
  std::vector<int> WaitProviders() {
    auto end = Clock::now() + 30s;
    while (Clock::now() < end) {
      Json s = GetStatus();
      if (s.value("ok", false) && s["providers"].size() == static_cast<size_t>(providers_)) {
        std::vector<int> roots;
        for (auto& p : s["providers"]) roots.push_back(p["pid"].get<int>());
        if (SubtreePids(roots).size() == static_cast<size_t>(providers_ * (1 + kids_)))
          return roots;
      }
      std::this_thread::sleep_for(20ms);
    }
    Fail("providers did not appear");
  }

  std::string IdleSource() { return GetStatus().value("idle_source", std::string("?")); }

 private:
  int providers_, kids_;
  std::set<int> components_;  // our children before the run
  fs::path dir_;
  pid_t pid_ = -1;
};

// Every process of the subtrees, with open stat files.
struct Tree {
  explicit Tree(const std::vector<int>& roots) {
    for (int p : SubtreePids(roots)) files.emplace_back(p);
  }
  bool AllStopped() const {
    for (auto& f : files) {
      if (!Stopped(f.State())) return false;
    }
    return true;
  }
  bool NoneStopped() const {
    for (auto& f : files) {
      if (Stopped(f.State())) return false;
    }
    return true;
  }
  std::vector<StatFile> files;
};

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit,
             std::chrono::microseconds nap) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(nap);
  }
  return pred();
}

// ---- XTest, loaded at run time (no link-time dependency) ----

struct XTest {
  using FakeMotion = int (*)(Display*, int, int, int, unsigned long);
  explicit XTest(const std::string& display) {
    lib = dlopen("libXtst.so.6", RTLD_NOW);
    if (lib) motion = reinterpret_cast<FakeMotion>(dlsym(lib, "XTestFakeMotionEvent"));
    dpy = XOpenDisplay(display.c_str());
  }
  ~XTest() {
    if (dpy) XCloseDisplay(dpy);
    if (lib) dlclose(lib);
  }
  bool ok() const { return motion && dpy; }
  // Moves the pointer; returns once the server has processed it.
  void Move(int x, int y) {
    motion(dpy, -1, x, y, 0);
    XSync(dpy, False);
  }
  void* lib = nullptr;
  FakeMotion motion = nullptr;
  Display* dpy = nullptr;
};

// ---- latency ----

// Waits until everything is stopped; then `input()` returns the reference
// instants (one per figure) and the time until the last process runs again is
// measured from each.
void Rounds(Dormant& d, const std::vector<int>& roots, int rounds,
            const std::function<std::vector<Clock::time_point>(int)>& input,
            std::vector<std::vector<double>>* out) {
  Tree tree(roots);
  for (int i = 0; i < rounds; ++i) {
    if (!WaitFor([&] { return tree.AllStopped(); }, 30s, 2ms)) d.Fail("providers not suspended");
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + std::rand() % 100));
    auto marks = input(i);
    Clock::time_point done;
    if (!WaitFor([&] { return tree.NoneStopped(); }, 10s, 100us))
      d.Fail("providers not resumed after input");
    done = Clock::now();
    out->resize(marks.size());
    for (size_t k = 0; k < marks.size(); ++k) (*out)[k].push_back(Ms(done - marks[k]));
  }
}

void X11Latency(int rounds, int providers, int kids) {
  dormant::testing::Xvfb x;
  if (!x.ok()) return (void)std::printf("x11: Xvfb did not start\n");
  {
    Dormant d("x11", "1s", {{"DISPLAY", x.display()}}, providers, kids);
    auto roots = d.WaitProviders();
    if (d.IdleSource() != "x11") d.Fail("idle source is not x11");
    std::vector<std::vector<double>> v;
    Rounds(
        d, roots, rounds,
        [&](int i) {
          auto t0 = Clock::now();
          pid_t pid = dormant::testing::Spawn(
              {"xdotool", "mousemove", std::to_string(10 + i % 2 * 100), "20"},
              {{"DISPLAY", x.display()}});
          waitpid(pid, nullptr, 0);
          return std::vector<Clock::time_point>{t0, Clock::now()};
        },
        &v);
    std::printf("x11 (Xvfb, XSync IDLETIME alarm while suspended), %d providers x %d processes:\n",
                providers, 1 + kids);
    PrintLatency("from xdotool spawn to last process running", v[0]);
    PrintLatency("from xdotool exit to last process running (lower bound)", v[1]);
  }
  // Input from XTest in this process: timed from the moment the server has
  // processed it.
  auto xtest_rounds = [&](const std::string& display, const std::string& what) {
    XTest xt(display);
    if (!xt.ok()) return (void)std::printf("  (XTest unavailable: no in-process figure)\n");
    Dormant d("x11", "1s", {{"DISPLAY", display}}, providers, kids);
    auto roots = d.WaitProviders();
    std::vector<std::vector<double>> v;
    Rounds(
        d, roots, rounds,
        [&](int i) {
          xt.Move(10 + i % 2 * 100, 30);
          return std::vector<Clock::time_point>{Clock::now()};
        },
        &v);
    PrintLatency(what, v[0]);
  };
  // (Xvfb cannot run without SYNC, so the x11 source's polled fallback for
  // servers without IDLETIME is measured by bench_idle_sources only.)
  xtest_rounds(x.display(), "from XTest input processed by the server (XSync)");
}

bool AddMutterMonitor(sd_bus* bus) {
  auto method = [&](const char* name, const char* in, const char* out, const std::string& code) {
    return dormant::testing::MockAddMethod(bus, kMutter, kMutterPath, kMutter, name, in, out, code);
  };
  const std::string state =
      "if not hasattr(self, 'b'):\n    self.b = {'idle': 0, 'n': 0, 'iw': [], 'aw': []}\n";
  const std::string fire =
      "for w in ws:\n    self.EmitSignal('org.gnome.Mutter.IdleMonitor', 'WatchFired', 'u', [w])\n";
  return method("GetIdletime", "", "t", state + "ret = self.b['idle']") &&
         method("AddIdleWatch", "t", "u",
                state + "self.b['n'] += 1\nself.b['iw'].append(self.b['n'])\nret = self.b['n']") &&
         method("AddUserActiveWatch", "", "u",
                state + "self.b['n'] += 1\nself.b['aw'].append(self.b['n'])\nret = self.b['n']") &&
         method("RemoveWatch", "u", "",
                state +
                    "self.b['iw'] = [w for w in self.b['iw'] if w != args[0]]\n"
                    "self.b['aw'] = [w for w in self.b['aw'] if w != args[0]]") &&
         method("BenchActive", "", "u", state + "ret = len(self.b['aw'])") &&
         method("BenchIdle", "t", "",
                state + "self.b['idle'] = args[0]\nws = list(self.b['iw'])\n" + fire) &&
         method("BenchInput", "", "",
                state + "self.b['idle'] = 0\nws = self.b['aw']\nself.b['aw'] = []\n" + fire);
}

uint32_t ActiveWatches(sd_bus* bus) {
  sd_bus_message* reply = nullptr;
  uint32_t n = 0;
  if (sd_bus_call_method(bus, kMutter, kMutterPath, kMutter, "BenchActive", nullptr, &reply, "") >=
      0) {
    sd_bus_message_read(reply, "u", &n);
  }
  sd_bus_message_unref(reply);
  return n;
}

void GnomeLatency(int rounds, int providers, int kids) {
  dormant::testing::DbusDaemon bus;
  if (!bus.ok()) return (void)std::printf("gnome: dbus-daemon did not start\n");
  dormant::testing::DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
  if (!mutter.ok() || !AddMutterMonitor(bus.client()))
    return (void)std::printf("gnome: dbusmock did not start\n");
  Dormant d("gnome", "1s", {{"DBUS_SESSION_BUS_ADDRESS", bus.address()}}, providers, kids);
  auto roots = d.WaitProviders();
  if (d.IdleSource() != "gnome") d.Fail("idle source is not gnome");
  std::vector<std::vector<double>> v;
  Rounds(
      d, roots, rounds,
      [&](int) {
        // The user left: the idle watch fires; dormant then adds its user-active watch.
        sd_bus_call_method(bus.client(), kMutter, kMutterPath, kMutter, "BenchIdle", nullptr,
                           nullptr, "t", uint64_t{60000});
        if (!WaitFor([&] { return ActiveWatches(bus.client()) == 1; }, 10s, 1ms))
          d.Fail("no user-active watch");
        auto t0 = Clock::now();
        dormant::testing::CallVoid(bus.client(), kMutter, kMutterPath, kMutter, "BenchInput");
        return std::vector<Clock::time_point>{t0, Clock::now()};
      },
      &v);
  std::printf(
      "gnome (dbusmock Mutter, WatchFired on the user-active watch), %d providers x %d "
      "processes:\n",
      providers, 1 + kids);
  PrintLatency("from the request to the mock to last process running", v[0]);
  PrintLatency("from the mock's reply (signal routed) to last process running", v[1]);
}

// ---- cost ----

// Process events (fork, exec, exit) on the whole machine until `end`, heard
// as dormant hears them (the netlink process connector wakes it for each).
long long CountMachineEvents(Clock::time_point end) {
  auto w = dormant::platform::CreateProcessWatcher();
  if (!w) {
    std::this_thread::sleep_until(end);
    return -1;
  }
  long long n = 0;
  while (Clock::now() < end) {
    pollfd p{(*w)->fd(), POLLIN, 0};
    poll(&p, 1, 100);
    bool lost = false;
    n += static_cast<long long>((*w)->Drain(&lost).size());
  }
  return n;
}

void MeasureCost(Dormant& d, const std::string& what, int window_s) {
  Cost a = SampleCost(d.pid());
  long long events = CountMachineEvents(a.at + std::chrono::seconds(window_s));
  Cost b = SampleCost(d.pid());
  double wall_s = std::chrono::duration<double>(b.at - a.at).count();
  double cpu_pct = (b.run_ns - a.run_ns) / 1e9 / wall_s * 100.0;
  double wakeups = (b.voluntary - a.voluntary) / wall_s * 60.0;
  std::printf(
      "  %-34s cpu %.4f %% of a core (%6.2f ms in %.0f s)  wake-ups %7.1f/min  machine proc events "
      "%7.1f/min\n",
      what.c_str(), cpu_pct, (b.run_ns - a.run_ns) / 1e6, wall_s, wakeups, events * 60.0 / wall_s);
  std::fflush(stdout);
}

void SourceCost(const std::string& source, int window_s, int providers, int kids, bool connector) {
  std::optional<dormant::testing::Xvfb> x;
  std::optional<dormant::testing::DbusDaemon> bus;
  std::optional<dormant::testing::DbusMock> mutter;
  std::map<std::string, std::string> env;
  if (source == "x11") {
    x.emplace();
    if (!x->ok()) return (void)std::printf("  x11: Xvfb did not start\n");
    env["DISPLAY"] = x->display();
  } else if (source == "gnome") {
    bus.emplace();
    if (!bus->ok()) return;
    mutter.emplace(*bus, false, kMutter, std::vector<std::string>{kMutter, kMutterPath, kMutter});
    if (!mutter->ok() || !AddMutterMonitor(bus->client()))
      return (void)std::printf("  gnome: no mock\n");
    env["DBUS_SESSION_BUS_ADDRESS"] = bus->address();
  }
  {
    Dormant d(source, "10h", env, providers, kids, connector);
    d.WaitProviders();
    std::this_thread::sleep_for(1s);
    MeasureCost(d, source + ", user active (running)", window_s);
  }
  Dormant d(source, "1s", env, providers, kids, connector);
  auto roots = d.WaitProviders();
  if (source == "gnome") {
    sd_bus_call_method(bus->client(), kMutter, kMutterPath, kMutter, "BenchIdle", nullptr, nullptr,
                       "t", uint64_t{60000});
  }
  Tree tree(roots);
  if (!WaitFor([&] { return tree.AllStopped(); }, 30s, 10ms)) d.Fail("providers not suspended");
  std::this_thread::sleep_for(1s);
  MeasureCost(d, source + ", user idle (suspended)", window_s);
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (RunHelper(argc, argv)) return 0;
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  auto num = [&](const char* k, int def) {
    return flags.count(k) ? std::atoi(flags[k].c_str()) : def;
  };
  int rounds = num("--rounds", 50), window = num("--window", 60), providers = num("--providers", 2),
      kids = num("--kids", 3), cost = num("--cost", 3);
  auto sources = Split(flags.count("--sources") ? flags["--sources"] : "x11,gnome");
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_TIMERSLACK, 1UL);
  signal(SIGPIPE, SIG_IGN);
  std::ifstream la("/proc/loadavg");
  std::string load;
  std::getline(la, load);
  std::printf("machine: %ld CPUs, loadavg %s; %d rounds\n", sysconf(_SC_NPROCESSORS_ONLN),
              load.c_str(), rounds);
  std::printf("\nresume latency: real input -> last provider process no longer stopped (/proc)\n");
  for (auto& s : sources) {
    if (s == "x11") X11Latency(rounds, providers, kids);
    if (s == "gnome") GnomeLatency(rounds, providers, kids);
  }
  std::vector<std::string> all = sources;
  all.push_back("manual");
  for (int mode : {1, 0}) {
    if (!(cost & (mode ? 1 : 2))) continue;
    std::printf(
        "\ndormant's own cost over %d s per state (supervisor process, all threads), %s\n", window,
        mode ? "as it runs (netlink process connector: woken by every process event on the machine)"
             : "process connector refused (it walks its tree every 250 ms instead)");
    for (auto& s : all) SourceCost(s, window, providers, kids, mode == 1);
  }
  return 0;
}
