// Shared by the core benchmarks (bench/core_*.cc): runs the real `dormant`
// binary (DORMANT_BINARY) over an app that is the bench program itself re-run
// in a helper mode, reads the processes' states from /proc, and prints figures.
//
// Helper modes (argv[1]):
//   app NPROV TOTAL FANOUT [CMD_FIFO REPLY_FIFO]
//       starts NPROV providers of TOTAL processes each, then, given the FIFOs,
//       serves "spawn" lines: forks and execs one provider and answers
//       "PID T0_NS" (T0 = CLOCK_MONOTONIC just before fork).
//   provider MARKER TOTAL FANOUT
//       grows a tree of TOTAL processes (itself included), FANOUT per level.
// Only the provider's argv holds kProviderMarker, so the policy's matcher
// (exe = the bench's base name, args = [marker]) never matches the app.
#pragma once

#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "launcher/control.h"
#include "platform/process_table.h"

namespace dormant::bench {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux
using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline constexpr const char* kProviderMarker = "--dormant-bench-provider";

inline std::string SelfPath() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

inline std::string BaseName(const std::string& p) { return fs::path(p).filename().string(); }

inline int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t ToNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ---- command line: --key value ----

struct Flags {
  std::map<std::string, std::string> values;
  Flags(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0) {
        std::fprintf(stderr, "unexpected argument '%s'\n", argv[i]);
        std::exit(2);
      }
      values[k.substr(2)] = argv[i + 1];
    }
    if (argc % 2 == 0) {
      std::fprintf(stderr, "flag '%s' needs a value\n", argv[argc - 1]);
      std::exit(2);
    }
  }
  int Int(const std::string& k, int def) const {
    auto it = values.find(k);
    return it == values.end() ? def : std::atoi(it->second.c_str());
  }
  std::string Str(const std::string& k, const std::string& def) const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

// ---- helper modes ----

[[noreturn]] inline void SleepForever() {
  for (;;) pause();
}

// This process plus `total - 1` descendants, at most `fanout` children each.
[[noreturn]] inline void GrowTree(int total, int fanout) {
  int budget = total - 1;
  for (int i = 0; i < fanout && budget > 0; ++i) {
    int share = (budget + (fanout - i) - 1) / (fanout - i);
    budget -= share;
    pid_t pid = fork();
    if (pid == 0) GrowTree(share, fanout);
    if (pid < 0) std::perror("fork");
  }
  SleepForever();
}

inline pid_t SpawnProvider(const std::string& self, int total, int fanout) {
  std::string t = std::to_string(total), f = std::to_string(fanout);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGCHLD, SIG_DFL);
    execl(self.c_str(), self.c_str(), "provider", kProviderMarker, t.c_str(), f.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

// Serves "spawn" requests on cmd_fifo until EOF.
inline void ServeSpawns(const std::string& self, const char* cmd_fifo, const char* reply_fifo) {
  FILE* in = std::fopen(cmd_fifo, "r");
  int out = open(reply_fifo, O_WRONLY);
  if (!in || out < 0) return;
  char line[64];
  while (std::fgets(line, sizeof line, in)) {
    int64_t t0 = MonoNs();
    pid_t pid = SpawnProvider(self, 1, 1);
    char reply[64];
    int n = std::snprintf(reply, sizeof reply, "%d %lld\n", pid, static_cast<long long>(t0));
    if (write(out, reply, n) != n) break;
  }
}

/// Runs a helper mode if argv names one; returns false otherwise.
inline bool RunHelper(int argc, char** argv) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "provider" && argc >= 5) {
    signal(SIGCHLD, SIG_DFL);
    GrowTree(std::atoi(argv[3]), std::atoi(argv[4]));
  }
  if (mode == "app" && argc >= 5) {
    signal(SIGCHLD, SIG_IGN);  // the kernel reaps our children: no zombies
    std::string self = SelfPath();
    for (int i = 0; i < std::atoi(argv[2]); ++i) SpawnProvider(self, std::atoi(argv[3]), std::atoi(argv[4]));
    if (argc >= 7) ServeSpawns(self, argv[5], argv[6]);
    SleepForever();
  }
  return false;
}

/// Removes `dir` when the program exits, also through exit() on a failure.
inline void RemoveAtExit(const fs::path& dir) {
  static std::vector<fs::path> dirs;
  static bool registered = false;
  dirs.push_back(dir);
  if (!registered) {
    registered = true;
    std::atexit([] {
      std::error_code ec;
      for (auto& d : dirs) fs::remove_all(d, ec);
    });
  }
}

// ---- /proc ----

/// An open /proc/PID/stat: re-read with pread, no open per sample.
class StatFile {
 public:
  explicit StatFile(int pid) : pid_(pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    fd_ = open(path, O_RDONLY | O_CLOEXEC);
  }
  ~StatFile() {
    if (fd_ >= 0) close(fd_);
  }
  StatFile(StatFile&& o) noexcept : pid_(o.pid_), fd_(o.fd_) { o.fd_ = -1; }
  StatFile(const StatFile&) = delete;
  StatFile& operator=(const StatFile&) = delete;
  int pid() const { return pid_; }
  bool ok() const { return fd_ >= 0; }
  /// The state letter, or 0 when the process is gone.
  char State() const {
    char buf[512];
    ssize_t n = fd_ < 0 ? -1 : pread(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char* rp = std::strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
  }

 private:
  int pid_;
  int fd_ = -1;
};

inline bool Stopped(char s) { return s == 'T' || s == 't'; }

/// Fields after the command name of /proc/PID/stat (index 0 is field 3, the state).
inline std::vector<std::string> StatFields(int pid, int tid = 0) {
  std::string path = "/proc/" + std::to_string(pid) + (tid ? "/task/" + std::to_string(tid) : "") + "/stat";
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> out;
  size_t rp = s.rfind(')');
  if (rp == std::string::npos) return out;
  size_t i = rp + 2;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

/// A line "Key:   value ..." of /proc/PID/status (or a task's), as a number.
inline long long StatusValue(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  }
  return -1;
}

inline std::vector<int> Tasks(int pid) {
  std::vector<int> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    out.push_back(std::atoi(e.path().filename().c_str()));
  }
  return out;
}

/// CPU and wake-up counters of one process, summed over its threads.
struct CpuSample {
  long long ticks = 0;       // utime + stime (USER_HZ)
  long long run_ns = 0;      // /proc/PID/task/*/schedstat: time on CPU
  long long wait_ns = 0;     // ... and time runnable but waiting for a CPU
  long long voluntary = 0;   // voluntary_ctxt_switches: sleeps, i.e. wake-ups
  long long involuntary = 0;
  Clock::time_point at;
};

inline CpuSample SampleCpu(int pid) {
  CpuSample s;
  s.at = Clock::now();
  auto f = StatFields(pid);
  if (f.size() > 12) s.ticks = std::atoll(f[11].c_str()) + std::atoll(f[12].c_str());
  for (int tid : Tasks(pid)) {
    std::string base = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
    std::ifstream ss(base + "/schedstat");
    long long ns = 0, wait = 0;
    if (ss >> ns >> wait) {
      s.run_ns += ns;
      s.wait_ns += wait;
    }
    s.voluntary += StatusValue(base + "/status", "voluntary_ctxt_switches");
    s.involuntary += StatusValue(base + "/status", "nonvoluntary_ctxt_switches");
  }
  return s;
}

/// Every process of the subtrees of `roots`, parents first.
inline std::vector<int> SubtreePids(const std::vector<int>& roots) {
  auto table = platform::CreateProcessTable();
  std::vector<int> out;
  for (int r : roots) {
    auto s = platform::Subtree(*table, r);
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

// ---- figures ----

struct Summary {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

inline Summary Summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  s.n = v.size();
  s.min = v.front();
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  return s;
}

/// One human line, plus one "RESULT key p50 p99 max unit" line that run-core.sh collects.
inline void Print(const std::string& key, const std::string& what, const std::vector<double>& ms) {
  Summary s = Summarize(ms);
  std::printf("  %-52s n=%-4zu min %8.3f  p50 %8.3f  p90 %8.3f  p99 %8.3f  max %8.3f ms\n", what.c_str(), s.n,
              s.min, s.p50, s.p90, s.p99, s.max);
  std::printf("RESULT %s p50=%.3f p99=%.3f max=%.3f n=%zu ms\n", key.c_str(), s.p50, s.p99, s.max, s.n);
  std::fflush(stdout);
}

/// Where dormant's time went over a set of operations: on a CPU, or runnable
/// but waiting for one (the rest of the wall time it was asleep or blocked).
inline void PrintSchedSplit(const std::string& key, const std::string& what, const CpuSample& a,
                            const CpuSample& b, int ops) {
  if (ops <= 0) return;
  double run = (b.run_ns - a.run_ns) / 1e6 / ops, wait = (b.wait_ns - a.wait_ns) / 1e6 / ops;
  std::printf("  %-52s on CPU %.3f ms, waiting for a CPU %.3f ms, %.1f preemptions (mean per op)\n",
              what.c_str(), run, wait, double(b.involuntary - a.involuntary) / ops);
  std::printf("RESULT %s on_cpu=%.3f runqueue=%.3f ms\n", key.c_str(), run, wait);
}

inline void PrintValue(const std::string& key, const std::string& what, double v, const std::string& unit) {
  std::printf("  %-52s %12.4f %s\n", what.c_str(), v, unit.c_str());
  std::printf("RESULT %s value=%.4f %s\n", key.c_str(), v, unit.c_str());
  std::fflush(stdout);
}

/// Sleeps `d` with a 1 ns timer slack set at start-up (see Init()).
inline void Nap(std::chrono::microseconds d) { std::this_thread::sleep_for(d); }

// ---- the control socket, raw: send now, read the reply later ----

class Request {
 public:
  Request(const std::string& path, const std::string& cmd) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string line = nlohmann::json{{"cmd", cmd}}.dump() + "\n";
    sent_ = send(fd_, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
  }
  ~Request() {
    if (fd_ >= 0) close(fd_);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  bool sent() const { return sent_; }
  /// Waits for the reply line (or `timeout_ms`); discarded JSON on failure.
  nlohmann::json Reply(int timeout_ms = 10000) {
    std::string in;
    char buf[4096];
    while (sent_ && in.find('\n') == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) break;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, n);
    }
    return nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  }

 private:
  int fd_ = -1;
  bool sent_ = false;
};

// ---- dormant itself ----

struct DormantOptions {
  std::string name = "bench";
  std::string suspend_after = "1h";
  std::string kill_after = "2h";
  std::vector<std::string> app_args;  // after the bench binary: "app", ...
  bool no_connector = false;          // refuse the netlink process connector (seccomp)
};

// Refuses socket(AF_NETLINK, *, NETLINK_CONNECTOR) in the calling process and
// its descendants, so dormant falls back to its periodic walk of the tree.
inline void RefuseProcessConnector() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) _exit(126);
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2,
                       SCMP_A0(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2(SCMP_CMP_EQ, NETLINK_CONNECTOR)) != 0 ||
      seccomp_load(ctx) != 0) {
    _exit(126);
  }
  seccomp_release(ctx);
}

/// One `dormant run` over the bench app, in a private environment: a fresh temp
/// dir holds the policy, XDG_RUNTIME_DIR (0700), dormant's HOME and
/// XDG_STATE_HOME (its ledger) and its log; no system or user policy layer is
/// read. The destructor ends and reaps everything.
class Dormant {
 public:
  explicit Dormant(const DormantOptions& o) : opts_(o) {
    char tmpl[] = "/tmp/dormant-bench-XXXXXX";
    dir_ = mkdtemp(tmpl);
    RemoveAtExit(dir_);
    fs::create_directories(dir_ / "run");
    fs::permissions(dir_ / "run", fs::perms::owner_all, fs::perm_options::replace);
    setenv("XDG_RUNTIME_DIR", (dir_ / "run").c_str(), 1);
    setenv("DORMANT_SYSTEM_DIR", (dir_ / "no-system").c_str(), 1);
    setenv("XDG_CONFIG_HOME", (dir_ / "no-config").c_str(), 1);
    // dormant keeps a ledger (XDG_STATE_HOME) and follows providers' logs under
    // HOME: both go to the temp dir, so a bench touches nothing of the user's.
    fs::create_directories(dir_ / "home");
    std::string home = (dir_ / "home").string(), state = (dir_ / "state").string();
    std::string self = SelfPath();
    std::ofstream(dir_ / "policy.toml")
        << "[idle]\nsource = \"manual\"\nsuspend_after = \"" << o.suspend_after << "\"\nkill_after = \""
        << o.kill_after << "\"\nkill_grace = \"1s\"\n\n[[provider]]\nname = \"bench\"\nexe = \""
        << BaseName(self) << "\"\nargs = [\"" << kProviderMarker << "\"]\n";
    std::vector<std::string> argv = {DORMANT_BINARY, "run", "--policy", (dir_ / "policy.toml").string(),
                                     "--name", o.name, "--", self};
    argv.insert(argv.end(), o.app_args.begin(), o.app_args.end());
    std::string log = (dir_ / "dormant.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      dup2(null, 0);
      dup2(null, 1);
      dup2(fd, 2);
      setenv("HOME", home.c_str(), 1);
      setenv("XDG_STATE_HOME", state.c_str(), 1);
      if (o.no_connector) RefuseProcessConnector();
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
  }
  ~Dormant() { Stop(); }
  Dormant(const Dormant&) = delete;
  Dormant& operator=(const Dormant&) = delete;

  int pid() const { return pid_; }
  const fs::path& dir() const { return dir_; }
  std::string socket() const { return (dir_ / "run" / "dormant" / (opts_.name + ".sock")).string(); }

  nlohmann::json Call(const std::string& cmd) {
    auto r = launcher::Call(socket(), {{"cmd", cmd}});
    return r ? *r : nlohmann::json{{"ok", false}, {"error", r.error().message}};
  }

  /// Polls status until `pred` holds; exits the bench when `limit` passes.
  nlohmann::json WaitStatus(const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds limit = 60s) {
    auto end = Clock::now() + limit;
    nlohmann::json s;
    while (Clock::now() < end) {
      s = Call("status");
      if (s.value("ok", false) && pred(s)) return s;
      std::this_thread::sleep_for(20ms);
    }
    Fail("condition not reached; last status: " + s.dump());
  }

  [[noreturn]] void Fail(const std::string& why) {
    std::fprintf(stderr, "bench: %s\n--- dormant log ---\n%s\n", why.c_str(), Log().c_str());
    Stop();
    std::exit(1);
  }

  std::string Log() const {
    std::ifstream in(dir_ / "dormant.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  /// The guardian: our other child (we are a subreaper) running dormant's binary.
  int GuardianPid() const {
    auto table = platform::CreateProcessTable();
    for (int c : table->Children(getpid())) {
      if (c == pid_) continue;
      auto i = table->Read(c);
      if (i && BaseName(i->exe) == BaseName(DORMANT_BINARY)) return c;
    }
    return 0;
  }

  /// SIGTERM to dormant (forwarded to the app, which ends it all), then
  /// whatever is left is killed and reaped. Returns how many processes were
  /// left for the hard clean-up (0 when dormant cleaned up after itself).
  int Stop() {
    if (stopped_) return leftovers_;
    stopped_ = true;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      auto end = Clock::now() + 15s;
      while (Clock::now() < end && waitpid(pid_, nullptr, WNOHANG) == 0) std::this_thread::sleep_for(10ms);
      if (waitpid(pid_, nullptr, WNOHANG) == 0) {
        std::fprintf(stderr, "bench: dormant did not exit on SIGTERM; killing it\n");
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    // The guardian exits when dormant's pipe closes; give it a moment.
    auto end = Clock::now() + 3s;
    while (Clock::now() < end && !Descendants().empty()) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      std::this_thread::sleep_for(10ms);
    }
    leftovers_ = KillAndReapAll();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    return leftovers_;
  }

  /// Kills (SIGCONT + SIGKILL) and reaps every descendant of the bench.
  static int KillAndReapAll() {
    int killed = 0;
    auto end = Clock::now() + 20s;
    for (;;) {
      auto left = Descendants();
      for (int p : left) {
        kill(p, SIGKILL);
        kill(p, SIGCONT);
      }
      killed += static_cast<int>(left.size());
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      if (left.empty() && waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) break;
      if (Clock::now() > end) {
        std::fprintf(stderr, "bench: could not reap everything\n");
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    return killed;
  }

  static std::vector<int> Descendants() {
    auto table = platform::CreateProcessTable();
    auto pids = platform::Subtree(*table, getpid());
    std::vector<int> out;
    for (int p : pids) {
      if (p == getpid()) continue;
      auto i = table->Read(p);
      if (i && i->state != 'Z') out.push_back(p);
    }
    return out;
  }

 private:
  DormantOptions opts_;
  fs::path dir_;
  pid_t pid_ = -1;
  bool stopped_ = false;
  int leftovers_ = 0;
};

/// Process set-up shared by the benches: we become a subreaper (orphans of the
/// run come to us, to be reaped), and sleeps are precise.
inline void Init() {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_TIMERSLACK, 1UL);
  signal(SIGPIPE, SIG_IGN);
}

inline std::vector<int> ProviderPids(const nlohmann::json& s) {
  std::vector<int> out;
  for (auto& p : s["providers"]) out.push_back(p["pid"].get<int>());
  return out;
}

inline bool AllInState(const nlohmann::json& s, const std::string& state, size_t n) {
  if (s["providers"].size() != n) return false;
  for (auto& p : s["providers"]) {
    if (p["state"] != state) return false;
  }
  return true;
}

/// Machine facts worth printing next to figures.
inline void PrintMachine() {
  std::ifstream la("/proc/loadavg");
  std::string load;
  std::getline(la, load);
  std::printf("machine: %ld CPUs, loadavg %s\n", sysconf(_SC_NPROCESSORS_ONLN), load.c_str());
}

}  // namespace dormant::bench
