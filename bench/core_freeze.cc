// Suspending and resuming a provider subtree of 1000 processes through dormant
// (issue 2 target: under 20 ms each).
//   bench_core_freeze [--procs 1000] [--fanout 10] [--rounds 10]
// The app starts one provider that grows a tree of PROCS processes (FANOUT
// children per process). Each round sends `pause` on the control socket and,
// without waiting for the reply, polls /proc until all PROCS are 'T'; then
// `resume`, until none is. The clock starts just before connect(). The reply
// time is printed too: dormant answers once its freezer has confirmed every stop.
// Polling keeps a cursor: a process seen in the target state stays there (no one
// else touches the tree), so each sweep resumes at the first laggard and the
// bench reads about PROCS stat files per phase, not PROCS per sweep.
#include <memory>

#include "bench/core_harness.h"

namespace {

using namespace dormant::bench;

// Polls until every file shows `stopped` (or not); returns false on timeout.
bool WaitAll(const std::vector<StatFile>& files, bool stopped, std::chrono::seconds limit = 30s) {
  size_t cursor = 0;
  auto end = Clock::now() + limit;
  while (cursor < files.size()) {
    char s = files[cursor].State();
    if (s == 0 || Stopped(s) == stopped) {
      ++cursor;
      continue;
    }
    if (Clock::now() > end) return false;
    Nap(10us);
  }
  return true;
}

void RaiseFileLimit(size_t need) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < need + 64) {
    r.rlim_cur = std::min<rlim_t>(r.rlim_max, need + 64);
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

// Whether the machine can hold `procs` more processes.
void CheckPidRoom(int procs) {
  std::ifstream in("/proc/sys/kernel/pid_max");
  long pid_max = 0;
  in >> pid_max;
  std::ifstream threads("/proc/sys/kernel/threads-max");
  long threads_max = 0;
  threads >> threads_max;
  rlimit r{};
  getrlimit(RLIMIT_NPROC, &r);
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < static_cast<rlim_t>(procs) * 2) {
    r.rlim_cur = std::min<rlim_t>(r.rlim_max, static_cast<rlim_t>(procs) * 2);
    setrlimit(RLIMIT_NPROC, &r);
  }
  std::printf("pid_max %ld, threads-max %ld, RLIMIT_NPROC %s\n", pid_max, threads_max,
              r.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(r.rlim_cur).c_str());
}

// Walks the provider's tree until it holds `procs` processes.
std::vector<int> WaitTree(Dormant& d, int root, int procs) {
  auto end = Clock::now() + 120s;
  std::vector<int> pids;
  while ((pids = SubtreePids({root})).size() < static_cast<size_t>(procs)) {
    if (Clock::now() > end) d.Fail("tree reached only " + std::to_string(pids.size()) + " processes");
    std::this_thread::sleep_for(50ms);
  }
  return pids;
}

}  // namespace

int main(int argc, char** argv) {
  if (RunHelper(argc, argv)) return 0;
  Init();
  Flags f(argc, argv);
  int procs = f.Int("procs", 1000), fanout = f.Int("fanout", 10), rounds = f.Int("rounds", 10);
  PrintMachine();
  CheckPidRoom(procs);
  RaiseFileLimit(procs);
  std::printf("\n== pause / resume of one provider subtree: %d processes, fanout %d ==\n", procs, fanout);

  DormantOptions o;
  o.name = "freeze";
  o.app_args = {"app", "1", std::to_string(procs), std::to_string(fanout)};
  Dormant d(o);
  auto s = d.WaitStatus([](auto& s) { return s["providers"].size() == 1; });
  int root = ProviderPids(s)[0];
  auto grow_start = Clock::now();
  std::vector<int> pids = WaitTree(d, root, procs);
  std::printf("  tree of %zu processes grown in %.0f ms; freezer: %s\n", pids.size(), Ms(Clock::now() - grow_start),
              s.value("freezer", "?").c_str());
  std::vector<StatFile> files;
  files.reserve(pids.size());
  for (int p : pids) files.emplace_back(p);
  for (auto& sf : files) {
    if (!sf.ok()) d.Fail("cannot open /proc/" + std::to_string(sf.pid()) + "/stat");
  }
  std::this_thread::sleep_for(500ms);  // dormant learns the forks meanwhile

  std::vector<double> pause_all, pause_reply, resume_all, resume_reply;
  CpuSample zero, pause_total, resume_total;  // sums of per-operation deltas
  auto add = [](CpuSample* total, const CpuSample& a, const CpuSample& b) {
    total->run_ns += b.run_ns - a.run_ns;
    total->wait_ns += b.wait_ns - a.wait_ns;
    total->involuntary += b.involuntary - a.involuntary;
  };
  for (int r = 0; r < rounds; ++r) {
    CpuSample before = SampleCpu(d.pid());
    auto t0 = Clock::now();
    {
      Request req(d.socket(), "pause");
      if (!req.sent()) d.Fail("cannot send pause");
      if (!WaitAll(files, true)) d.Fail("not all processes stopped within 30 s");
      auto t1 = Clock::now();
      auto reply = req.Reply(30000);
      auto t2 = Clock::now();
      if (!reply.is_object() || !reply.value("ok", false)) d.Fail("pause failed: " + reply.dump());
      pause_all.push_back(Ms(t1 - t0));
      pause_reply.push_back(Ms(t2 - t0));
    }
    add(&pause_total, before, SampleCpu(d.pid()));
    std::this_thread::sleep_for(100ms);
    before = SampleCpu(d.pid());
    t0 = Clock::now();
    {
      Request req(d.socket(), "resume");
      if (!req.sent()) d.Fail("cannot send resume");
      if (!WaitAll(files, false)) d.Fail("not all processes continued within 30 s");
      auto t1 = Clock::now();
      auto reply = req.Reply(30000);
      auto t2 = Clock::now();
      if (!reply.is_object() || !reply.value("ok", false)) d.Fail("resume failed: " + reply.dump());
      resume_all.push_back(Ms(t1 - t0));
      resume_reply.push_back(Ms(t2 - t0));
    }
    add(&resume_total, before, SampleCpu(d.pid()));
    std::this_thread::sleep_for(100ms);
  }
  Print("freeze.pause_all_T", "pause -> all " + std::to_string(procs) + " seen 'T'", pause_all);
  Print("freeze.pause_reply", "pause -> reply read", pause_reply);
  Print("freeze.resume_all_running", "resume -> none 'T'", resume_all);
  Print("freeze.resume_reply", "resume -> reply read", resume_reply);
  PrintSchedSplit("freeze.pause_sched", "dormant during a pause", zero, pause_total, rounds);
  PrintSchedSplit("freeze.resume_sched", "dormant during a resume", zero, resume_total, rounds);

  // What reading 1000 stat files costs, the two ways: dormant's freezer opens
  // each file per probe; the bench keeps them open and preads.
  {
    auto t0 = Clock::now();
    char path[64], buf[512];
    for (int p : pids) {
      std::snprintf(path, sizeof path, "/proc/%d/stat", p);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (read(fd, buf, sizeof buf) < 0) std::perror("read");
      close(fd);
    }
    double fresh = Ms(Clock::now() - t0);
    t0 = Clock::now();
    for (auto& sf : files) sf.State();
    double kept = Ms(Clock::now() - t0);
    PrintValue("freeze.read_open", "read " + std::to_string(pids.size()) + " stat files, open+read+close", fresh,
               "ms");
    PrintValue("freeze.read_pread", "read " + std::to_string(pids.size()) + " stat files, pread on open fds", kept,
               "ms");
  }
  // dormant's own count of what it stopped, from its log.
  std::string log = d.Log();
  size_t at = log.rfind("suspend bench (pid");
  if (at != std::string::npos) {
    std::printf("  dormant's log: %s\n", log.substr(at, log.find('\n', at) - at).c_str());
  }
  files.clear();
  int left = d.Stop();
  std::printf("  processes left after dormant exited on SIGTERM: %d\n", left);
  return left == 0 ? 0 : 1;
}
