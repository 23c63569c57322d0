// Suspending and resuming a provider subtree of 1000 processes (issue target:
// under 20 ms each), with both Freezer backends, and one Subtree() walk.
//   bench_freeze_subtree [PROCESSES=1000] [ROUNDS=20] [FANOUT=10]
// The program re-runs itself (/proc/self/exe --tree N FANOUT) to grow the tree.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "platform/cgroup_freezer.h"
#include "platform/freezer.h"
#include "platform/process_table.h"

namespace {

using namespace dormant::platform;
using Clock = std::chrono::steady_clock;

[[noreturn]] void GrowTree(int budget, int fanout) {
  budget -= 1;
  for (int i = 0; i < fanout && budget > 0; ++i) {
    int share = (budget + (fanout - i) - 1) / (fanout - i);
    budget -= share;
    pid_t pid = fork();
    if (pid == 0) GrowTree(share, fanout);
    if (pid < 0) std::perror("fork");
  }
  for (;;) pause();
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Report(const char* what, std::vector<double> ms) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  size_t p99 = std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.99));
  std::printf("  %-28s n=%-3zu min %7.2f  median %7.2f  p99 %7.2f  max %7.2f ms\n", what, ms.size(),
              ms.front(), ms[ms.size() / 2], ms[p99], ms.back());
}

// This process's CPU time (user + system, all threads) in ms: on a loaded
// machine the wall time includes waiting for a CPU, the CPU time is our own work.
double CpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Runs `fn`; returns its wall time in ms and adds its CPU time to `cpu`.
double Time(const std::function<void()>& fn, std::vector<double>* cpu = nullptr) {
  double cpu_start = CpuMs();
  auto start = Clock::now();
  fn();
  double wall = Ms(Clock::now() - start);
  if (cpu) cpu->push_back(CpuMs() - cpu_start);
  return wall;
}

// Our own cgroup on the cgroup2 mount, plus a fresh child for the bench.
std::string MakeCgroupBase() {
  std::ifstream cg("/proc/self/cgroup");
  std::string own;
  for (std::string line; std::getline(cg, line);) {
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  }
  std::ifstream mounts("/proc/self/mounts");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream in(line);
    std::string dev, dir, type;
    in >> dev >> dir >> type;
    if (type != "cgroup2") continue;
    std::string base = dir + (own == "/" ? "" : own) + "/dormant-bench-" + std::to_string(getpid());
    std::error_code ec;
    if (std::filesystem::create_directory(base, ec)) return base;
  }
  return {};
}

// Stop/Continue rounds over the whole tree; checks each call covered `expect` processes.
bool RunRounds(Freezer& freezer, int root, size_t expect, int rounds) {
  std::vector<double> stop_ms, cont_ms, stop_cpu, cont_cpu;
  for (int i = 0; i < rounds; ++i) {
    dormant::Expected<std::vector<int>> stopped = std::vector<int>{};
    stop_ms.push_back(Time([&] { stopped = freezer.Stop(root); }, &stop_cpu));
    if (!stopped.ok() || stopped->size() != expect) {
      std::printf("  Stop failed: %s (%zu processes)\n",
                  stopped.ok() ? "wrong count" : stopped.error().message.c_str(),
                  stopped.ok() ? stopped->size() : 0);
      return false;
    }
    dormant::Expected<std::vector<int>> continued = std::vector<int>{};
    cont_ms.push_back(Time([&] { continued = freezer.Continue(root); }, &cont_cpu));
    if (!continued.ok() || continued->size() != expect) {
      std::printf("  Continue failed: %s\n",
                  continued.ok() ? "wrong count" : continued.error().message.c_str());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Report("Stop() wall", stop_ms);
  Report("Stop() own CPU", stop_cpu);
  Report("Continue() wall", cont_ms);
  Report("Continue() own CPU", cont_cpu);
  return true;
}

pid_t SpawnTree(int processes, int fanout) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    std::string n = std::to_string(processes), f = std::to_string(fanout);
    execl("/proc/self/exe", "bench_freeze_subtree", "--tree", n.c_str(), f.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);
  return pid;
}

void KillGroup(pid_t pgid) {
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    kill(-pgid, SIGKILL);
    while (waitpid(-pgid, nullptr, WNOHANG) > 0) {
    }
    if (kill(-pgid, 0) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--tree") == 0) GrowTree(std::atoi(argv[2]), std::atoi(argv[3]));
  const int processes = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
  const int fanout = argc > 3 ? std::atoi(argv[3]) : 10;

  // Orphans of the tree come back to us, to be reaped, not to PID 1.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  auto table = CreateProcessTable();
  pid_t root = SpawnTree(processes, fanout);
  if (root < 0) return 1;
  auto ready_by = Clock::now() + std::chrono::seconds(60);
  size_t have = 0;
  while ((have = Subtree(*table, root).size()) < static_cast<size_t>(processes)) {
    if (Clock::now() > ready_by) {
      std::printf("only %zu of %d processes appeared\n", have, processes);
      KillGroup(root);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf("subtree of %d processes (fan-out %d), %d rounds, %u CPUs, load average %.1f\n",
              processes, fanout, rounds, std::thread::hardware_concurrency(), load[0]);

  std::vector<double> walk_ms, walk_cpu;
  for (int i = 0; i < rounds; ++i) {
    walk_ms.push_back(Time([&] { have = Subtree(*table, root).size(); }, &walk_cpu));
  }
  std::printf("walk:\n");
  Report("Subtree() wall", walk_ms);
  Report("Subtree() own CPU", walk_cpu);

  std::printf("sigstop:\n");
  auto signal_freezer = CreateSignalFreezer(*table);
  bool ok = RunRounds(*signal_freezer, root, processes, rounds);

  std::string base = MakeCgroupBase();
  if (base.empty()) {
    std::printf("cgroup: skipped (no writable cgroup v2 directory)\n");
  } else {
    auto cgroup_freezer = CreateCgroupFreezer(*table, base);
    if (!cgroup_freezer.ok()) {
      std::printf("cgroup: skipped (%s)\n", cgroup_freezer.error().message.c_str());
    } else {
      std::printf("cgroup (%s):\n", base.c_str());
      dormant::Expected<std::vector<int>> first = std::vector<int>{};
      double move_ms = Time([&] { first = (*cgroup_freezer)->Stop(root); });
      std::printf("  first Stop() moves the tree in: %.2f ms (%zu processes)\n", move_ms,
                  first.ok() ? first->size() : 0);
      if (first.ok()) (*cgroup_freezer)->Continue(root);
      ok = RunRounds(**cgroup_freezer, root, processes, rounds) && ok;
      KillGroup(root);
    }
    KillGroup(root);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
      std::filesystem::remove(entry.path(), ec);
    }
    std::filesystem::remove(base, ec);
  }
  KillGroup(root);
  return ok ? 0 : 1;
}
