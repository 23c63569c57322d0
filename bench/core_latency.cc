// Two latencies of dormant's core (issue 2 targets: activity -> running p99
// under 10 ms; a provider's exec -> dormant knowing it (and, when suspended,
// stopping it) p99 under 100 ms, and what bounds it).
//   bench_core_latency [--rounds 200] [--spawns 200] [--walk-spawns 40] [--cli-rounds 20]
//                      [--providers 2] [--procs 10] [--suspend-after 300ms]
//
// 1. activity: 2 providers x 10 processes are idle-suspended (suspend_after
//    300ms); we send `{"cmd":"activity"}` on the control socket ourselves and,
//    without waiting for the reply, poll /proc/PID/stat of all 20 processes
//    until none is 'T'. Clock starts just before connect(). Also timed: the
//    reply, and a few rounds through the `dormant activity` binary.
// 2. exec: dormant is paused (`pause`) with no provider; the app forks and
//    execs one provider per request and tells us its pid and the time just
//    before fork. We time until /proc shows the provider 'T' (suspended on
//    sight), and, in other rounds, until `status` lists it. Our own netlink
//    listener timestamps the exec, which splits the latency into fork+exec and
//    dormant's reaction. Then again with the connector refused to dormant
//    (seccomp), where only its 250 ms walk can find the provider.
// Polling sleeps 20 us between sweeps (timer slack 1 ns), so figures carry
// about 0.1 ms of measurement granularity.
#include <sys/stat.h>

#include <fstream>

#include <memory>

#include "bench/core_harness.h"
#include "platform/process_watcher.h"

namespace {

using namespace dormant::bench;

constexpr auto kPollGap = 20us;

bool AnyStopped(const std::vector<StatFile>& files) {
  for (auto& f : files) {
    if (Stopped(f.State())) return true;
  }
  return false;
}

bool AllStopped(const std::vector<StatFile>& files) {
  for (auto& f : files) {
    if (!Stopped(f.State())) return false;
  }
  return true;
}

// ---- 1. activity -> every provider process running ----

void WaitSuspended(Dormant& d, const std::vector<StatFile>& files, size_t providers) {
  auto end = Clock::now() + 30s;
  while (Clock::now() < end) {
    if (AllStopped(files) && AllInState(d.Call("status"), "suspended", providers)) return;
    std::this_thread::sleep_for(5ms);
  }
  d.Fail("providers were not idle-suspended in time");
}

int ActivityRounds(int rounds, int cli_rounds, int providers, int procs, const std::string& suspend_after) {
  std::printf("\n== activity -> last provider process running: %d providers x %d processes ==\n", providers,
              procs);
  DormantOptions o;
  o.name = "lat-activity";
  o.suspend_after = suspend_after;
  o.app_args = {"app", std::to_string(providers), std::to_string(procs), std::to_string(procs)};
  Dormant d(o);
  auto s = d.WaitStatus([&](auto& s) { return s["providers"].size() == static_cast<size_t>(providers); });
  auto roots = ProviderPids(s);
  auto end = Clock::now() + 30s;
  std::vector<int> pids;
  while ((pids = SubtreePids(roots)).size() < static_cast<size_t>(providers * procs) && Clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  std::vector<StatFile> files;
  for (int p : pids) files.emplace_back(p);
  std::printf("  %zu processes below %zu providers; suspend_after %s\n", files.size(), roots.size(),
              suspend_after.c_str());

  std::vector<double> to_running, to_reply;
  CpuSample zero, total;  // dormant's scheduler figures, summed over the rounds
  for (int r = 0; r < rounds; ++r) {
    WaitSuspended(d, files, roots.size());
    CpuSample before = SampleCpu(d.pid());
    auto t0 = Clock::now();
    Request req(d.socket(), "activity");
    if (!req.sent()) d.Fail("cannot send activity");
    while (AnyStopped(files)) Nap(kPollGap);
    auto t1 = Clock::now();
    auto reply = req.Reply();
    auto t2 = Clock::now();
    if (!reply.is_object() || !reply.value("ok", false)) d.Fail("activity failed: " + reply.dump());
    to_running.push_back(Ms(t1 - t0));
    to_reply.push_back(Ms(t2 - t0));
    CpuSample after = SampleCpu(d.pid());
    total.run_ns += after.run_ns - before.run_ns;
    total.wait_ns += after.wait_ns - before.wait_ns;
    total.involuntary += after.involuntary - before.involuntary;
  }
  Print("activity.running", "request -> last process running", to_running);
  Print("activity.reply", "request -> reply read", to_reply);
  PrintSchedSplit("activity.sched", "dormant during an activity request", zero, total, rounds);

  // The same through the binary a user (or a desktop hook) would run.
  std::vector<double> cli;
  for (int r = 0; r < cli_rounds; ++r) {
    WaitSuspended(d, files, roots.size());
    auto t0 = Clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execl(DORMANT_BINARY, DORMANT_BINARY, "activity", "--name", "lat-activity", nullptr);
      _exit(127);
    }
    while (AnyStopped(files)) Nap(kPollGap);
    cli.push_back(Ms(Clock::now() - t0));
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) d.Fail("`dormant activity` failed");
  }
  if (cli_rounds > 0) Print("activity.cli", "`dormant activity` (fork+exec) -> last running", cli);
  int left = d.Stop();
  std::printf("  processes left after dormant exited on SIGTERM: %d\n", left);
  return left == 0 ? 0 : 1;
}

// ---- 2. exec -> dormant knows (and stops) the provider ----

// The app's side of the conversation: "spawn" out, "PID T0_NS" back.
class SpawnChannel {
 public:
  explicit SpawnChannel(const fs::path& dir) : cmd_(dir / "cmd.fifo"), reply_(dir / "reply.fifo") {
    mkfifo(cmd_.c_str(), 0600);
    mkfifo(reply_.c_str(), 0600);
    // O_RDWR: neither open waits for the app's end.
    out_ = open(cmd_.c_str(), O_RDWR | O_CLOEXEC);
    in_ = open(reply_.c_str(), O_RDWR | O_CLOEXEC);
  }
  ~SpawnChannel() {
    close(out_);
    close(in_);
  }
  std::vector<std::string> AppArgs() const { return {"app", "0", "1", "1", cmd_.string(), reply_.string()}; }
  // Asks for one provider; returns its pid and the app's clock just before fork.
  std::pair<int, int64_t> Spawn() {
    if (write(out_, "spawn\n", 6) != 6) return {0, 0};
    std::string line;
    char c;
    pollfd p{in_, POLLIN, 0};
    while (poll(&p, 1, 10000) > 0 && read(in_, &c, 1) == 1 && c != '\n') line += c;
    int pid = 0;
    long long t0 = 0;
    std::sscanf(line.c_str(), "%d %lld", &pid, &t0);
    return {pid, t0};
  }

 private:
  fs::path cmd_, reply_;
  int out_ = -1, in_ = -1;
};

double SinceNs(int64_t t0_ns, Clock::time_point t) { return (ToNs(t) - t0_ns) / 1e6; }

void KillAndWaitGone(int pid) {
  kill(pid, SIGKILL);
  std::string path = "/proc/" + std::to_string(pid);
  auto end = Clock::now() + 10s;
  // The app ignores SIGCHLD, so the kernel reaps it at once.
  while (fs::exists(path) && Clock::now() < end) std::this_thread::sleep_for(200us);
}

bool Listed(const nlohmann::json& s, int pid) {
  for (auto& p : s["providers"]) {
    if (p["pid"].get<int>() == pid) return true;
  }
  return false;
}

// Whether `pid` runs the provider's image yet (its argv holds the marker).
bool HasExeced(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv((std::istreambuf_iterator<char>(in)), {});
  return argv.find(kProviderMarker) != std::string::npos;
}

// Spawns `n` providers while paused, then `resume`: every one of them must
// run again. Prints how many are still stopped a second later. Leaves dormant
// resumed, with those providers killed.
void StuckAfterResume(const std::string& label, Dormant& d, SpawnChannel& channel, int n) {
  std::vector<int> pids;
  for (int i = 0; i < n; ++i) {
    auto [pid, t0] = channel.Spawn();
    if (pid > 0) pids.push_back(pid);
  }
  std::this_thread::sleep_for(1s);
  if (!d.Call("resume").value("ok", false)) d.Fail("resume failed");
  std::this_thread::sleep_for(1s);
  int stuck = 0, unexeced = 0;
  for (int pid : pids) {
    if (Stopped(StatFile(pid).State())) {
      ++stuck;
      if (!HasExeced(pid)) ++unexeced;
    }
  }
  std::printf("  spawned while paused, still stopped 1 s after `resume`: %d of %zu (%d of them inside execve)\n",
              stuck, pids.size(), unexeced);
  std::printf("RESULT %s.stuck_after_resume value=%d of %zu\n", label.c_str(), stuck, pids.size());
  for (int pid : pids) KillAndWaitGone(pid);
}

// Spawns at a random phase of dormant's walk, else each round would start
// right after the walk that found the last provider and always wait ~250 ms.
void Jitter(bool walking) {
  if (walking) std::this_thread::sleep_for(std::chrono::microseconds(std::rand() % 250'000));
}

int ExecRounds(const std::string& label, bool no_connector, int spawns) {
  std::printf("\n== exec -> dormant knows the provider, %s ==\n", label.c_str());
  DormantOptions o;
  o.name = no_connector ? "lat-exec-walk" : "lat-exec";
  o.no_connector = no_connector;
  // The app needs the FIFOs' paths in its argv, before dormant's own temp dir exists.
  char tmpl[] = "/tmp/dormant-bench-fifo-XXXXXX";
  fs::path fifo_dir = mkdtemp(tmpl);
  RemoveAtExit(fifo_dir);
  auto channel = std::make_unique<SpawnChannel>(fifo_dir);
  o.app_args = channel->AppArgs();
  Dormant d(o);
  d.WaitStatus([](const nlohmann::json& s) { return s["app"].value("running", false); });
  bool walking = d.Log().find("walking the tree every") != std::string::npos;
  std::printf("  dormant finds processes by: %s\n",
              walking ? "its periodic walk (250 ms)" : "the netlink process connector (+ a 2 s walk)");
  if (!d.Call("pause").value("ok", false)) d.Fail("pause failed");

  auto watcher = dormant::platform::CreateProcessWatcher();  // our own: timestamps the exec
  std::vector<double> to_exec, to_stopped, exec_to_stopped, to_listed, to_listed_running;
  CpuSample zero, sched;  // dormant's scheduler figures, summed over the spawns
  int stopped_before_exec = 0;
  auto exec_seen = [&](int pid, Clock::time_point* at) {
    if (!watcher || at->time_since_epoch().count() != 0) return;
    bool lost;
    for (auto& e : (*watcher)->Drain(&lost)) {
      if (e.kind == dormant::platform::ProcEvent::Kind::kExec && e.pid == pid) *at = Clock::now();
    }
  };
  for (int r = 0; r < spawns; ++r) {
    if (watcher) {
      bool lost;
      (*watcher)->Drain(&lost);
    }
    Jitter(walking);
    CpuSample before = SampleCpu(d.pid());
    auto [pid, t0] = channel->Spawn();
    if (pid <= 0) d.Fail("the app did not spawn");
    StatFile f(pid);
    Clock::time_point exec_at{};
    auto limit = Clock::now() + 10s;
    while (!Stopped(f.State()) && Clock::now() < limit) {
      exec_seen(pid, &exec_at);
      Nap(kPollGap);
    }
    auto t1 = Clock::now();
    if (!Stopped(f.State())) d.Fail("provider " + std::to_string(pid) + " not stopped within 10 s");
    if (!HasExeced(pid)) ++stopped_before_exec;
    exec_seen(pid, &exec_at);
    CpuSample after = SampleCpu(d.pid());
    sched.run_ns += after.run_ns - before.run_ns;
    sched.wait_ns += after.wait_ns - before.wait_ns;
    sched.involuntary += after.involuntary - before.involuntary;
    to_stopped.push_back(SinceNs(t0, t1));
    if (exec_at.time_since_epoch().count() != 0) {
      to_exec.push_back(SinceNs(t0, exec_at));
      exec_to_stopped.push_back(Ms(t1 - exec_at));
    }
    KillAndWaitGone(pid);
  }
  Print(label + ".fork_to_stopped", "fork -> provider seen 'T' (suspended on sight)", to_stopped);
  if (!to_exec.empty()) {
    Print(label + ".fork_to_exec", "  of which fork -> exec event (our listener)", to_exec);
    Print(label + ".exec_to_stopped", "  of which exec event -> 'T'", exec_to_stopped);
  }
  PrintSchedSplit(label + ".sched", "dormant during a spawn (fork -> 'T')", zero, sched, spawns);
  std::printf("  stopped before their exec completed (argv still the app's): %d of %d\n", stopped_before_exec,
              spawns);
  std::printf("RESULT %s.stopped_in_exec value=%d of %d\n", label.c_str(), stopped_before_exec, spawns);

  // Spawns never listed within 3 s (longer than the 2 s safety walk) are
  // counted, not timed.
  auto listed_rounds = [&](std::vector<double>* out) {
    int never = 0;
    for (int r = 0; r < spawns; ++r) {
      Jitter(walking);
      auto [pid, t0] = channel->Spawn();
      if (pid <= 0) d.Fail("the app did not spawn");
      auto limit = Clock::now() + 3s;
      bool listed = false;
      while (!(listed = Listed(d.Call("status"), pid)) && Clock::now() < limit) Nap(200us);
      if (listed) out->push_back(SinceNs(t0, Clock::now()));
      else ++never;
      KillAndWaitGone(pid);
    }
    return never;
  };
  int never = listed_rounds(&to_listed);
  Print(label + ".fork_to_listed", "fork -> `status` lists it (paused)", to_listed);
  if (never) std::printf("  WRONG: %d of %d providers spawned while paused never listed within 3 s\n", never, spawns);
  std::printf("RESULT %s.never_listed_paused value=%d of %d\n", label.c_str(), never, spawns);
  StuckAfterResume(label, d, *channel, spawns);
  never = listed_rounds(&to_listed_running);
  Print(label + ".fork_to_listed_running", "fork -> `status` lists it (running)", to_listed_running);
  if (never) std::printf("  WRONG: %d of %d providers never listed within 3 s\n", never, spawns);

  channel.reset();
  int left = d.Stop();
  std::error_code ec;
  fs::remove_all(fifo_dir, ec);
  std::printf("  processes left after dormant exited on SIGTERM: %d\n", left);
  return left == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (RunHelper(argc, argv)) return 0;
  Init();
  Flags f(argc, argv);
  PrintMachine();
  int rc = 0;
  int rounds = f.Int("rounds", 200);
  if (rounds > 0) {
    rc |= ActivityRounds(rounds, f.Int("cli-rounds", 20), f.Int("providers", 2), f.Int("procs", 10),
                         f.Str("suspend-after", "300ms"));
  }
  if (int spawns = f.Int("spawns", 200); spawns > 0) rc |= ExecRounds("exec", false, spawns);
  if (int spawns = f.Int("walk-spawns", 40); spawns > 0) rc |= ExecRounds("exec_walk", true, spawns);
  return rc;
}
