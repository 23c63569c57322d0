// dormant's own cost while it supervises and nothing happens (issue 2 targets:
// under 0.05 % of one core over 60 s; resident memory under 8 MiB).
//   bench_core_idle [--seconds 60] [--mode both|all|connector|walk|storm] [--providers 2] [--kids 3]
//                   [--storm-rate 200]
// The app (this program re-run as `app`) starts 2 providers with 3 children
// each; the policy's suspend_after is far away, so dormant has nothing to do.
// "connector" is dormant as it runs here (the netlink process connector tells it
// of every fork/exec/exit on the machine, with a walk of its tree every 2 s);
// "walk" refuses it the connector (seccomp), so it walks its tree every 250 ms;
// "storm" is "connector" while this program forks and execs /bin/true
// STORM_RATE times a second outside dormant's tree ("all" runs the three,
// "both" the first two).
// Figures: CPU of the supervisor and of its guardian (utime+stime ticks, and the
// scheduler's own run time, which is precise to the nanosecond), wake-ups
// (voluntary context switches), VmRSS / VmHWM, and how many process events the
// whole machine produced meanwhile (the connector wakes dormant for each).
#include <cctype>
#include <memory>

#include "bench/core_harness.h"
#include "platform/process_watcher.h"

namespace {

using namespace dormant::bench;

struct MachineEvents {
  long long total = 0;
};

// Forks and execs /bin/true `rate` times a second until `end`, outside
// dormant's tree: process churn elsewhere on the machine, as a build makes.
void Storm(int rate, Clock::time_point end) {
  auto gap = std::chrono::microseconds(1'000'000 / rate);
  for (auto next = Clock::now(); Clock::now() < end; next += gap) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, nullptr, 0);
    std::this_thread::sleep_until(next);
  }
}

// Counts the machine's process events while `seconds` pass (our own listener),
// making `storm_rate` short-lived processes a second meanwhile if asked.
MachineEvents CountMachineEvents(int seconds, int storm_rate) {
  MachineEvents m;
  auto w = dormant::platform::CreateProcessWatcher();
  auto end = Clock::now() + std::chrono::seconds(seconds);
  std::thread storm;
  if (storm_rate > 0) storm = std::thread(Storm, storm_rate, end);
  if (!w) {
    std::this_thread::sleep_until(end);
    m.total = -1;
  }
  while (w && Clock::now() < end) {
    pollfd p{(*w)->fd(), POLLIN, 0};
    poll(&p, 1, 200);
    bool lost = false;
    m.total += static_cast<long long>((*w)->Drain(&lost).size());
  }
  if (storm.joinable()) storm.join();
  return m;
}

void PrintCpu(const std::string& key, const std::string& who, const CpuSample& a, const CpuSample& b) {
  double secs = std::chrono::duration<double>(b.at - a.at).count();
  double tick_pct = 100.0 * (b.ticks - a.ticks) / sysconf(_SC_CLK_TCK) / secs;
  double run_pct = 100.0 * (b.run_ns - a.run_ns) / 1e9 / secs;
  PrintValue(key + ".cpu_ticks", who + " CPU, utime+stime (" + std::to_string(b.ticks - a.ticks) + " ticks)",
             tick_pct, "% of a core");
  PrintValue(key + ".cpu_sched", who + " CPU, scheduler run time", run_pct, "% of a core");
  PrintValue(key + ".wakeups", who + " wake-ups (voluntary ctxt switches)", (b.voluntary - a.voluntary) / secs,
             "per s");
  PrintValue(key + ".preempted", who + " involuntary ctxt switches", (b.involuntary - a.involuntary) / secs,
             "per s");
}

// The mappings holding most of a process's resident memory, from /proc/PID/smaps.
void PrintTopMappings(int pid, size_t top) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::map<std::string, long long> rss_by_name;
  std::string name;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 16 && line.find(':') > 16) {
      // "start-end perms offset dev inode [name]"
      size_t n = 0, i = 0;
      while (n < 5 && i < line.size()) {
        i = line.find(' ', i);
        if (i == std::string::npos) break;
        while (i < line.size() && line[i] == ' ') ++i;
        ++n;
      }
      name = i < line.size() ? BaseName(line.substr(i)) : "[anon]";
      if (name.empty()) name = "[anon]";
    } else if (line.rfind("Rss:", 0) == 0) {
      rss_by_name[name] += std::atoll(line.c_str() + 4);
    }
  }
  std::vector<std::pair<long long, std::string>> v;
  for (auto& [n, kb] : rss_by_name) v.push_back({kb, n});
  std::sort(v.rbegin(), v.rend());
  std::printf("  %-52s", "largest mappings (RSS)");
  for (size_t i = 0; i < std::min(top, v.size()); ++i) std::printf(" %s %lld KiB;", v[i].second.c_str(), v[i].first);
  std::printf("\n");
}

void PrintMemory(const std::string& key, const std::string& who, int pid) {
  std::string st = "/proc/" + std::to_string(pid) + "/status";
  PrintValue(key + ".rss", who + " VmRSS", StatusValue(st, "VmRSS") / 1024.0, "MiB");
  PrintValue(key + ".hwm", who + " VmHWM (peak RSS)", StatusValue(st, "VmHWM") / 1024.0, "MiB");
  std::string rollup = "/proc/" + std::to_string(pid) + "/smaps_rollup";
  PrintValue(key + ".pss", who + " Pss (shared pages divided among sharers)", StatusValue(rollup, "Pss") / 1024.0,
             "MiB");
  std::printf("  %-52s anon %lld KiB, file %lld KiB, shmem %lld KiB\n", (who + " RSS split").c_str(),
              StatusValue(st, "RssAnon"), StatusValue(st, "RssFile"), StatusValue(st, "RssShmem"));
  PrintTopMappings(pid, 6);
}

// What one walk of dormant's tree costs (the code its periodic rescan runs),
// timed here in the bench, over `rounds` walks.
void PrintWalkCost(const std::string& key, int dormant_pid, int rounds) {
  auto table = dormant::platform::CreateProcessTable();
  size_t n = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < rounds; ++i) n = dormant::platform::Subtree(*table, dormant_pid).size();
  double us = Ms(Clock::now() - t0) * 1000 / rounds;
  PrintValue(key + ".walk_us", "one walk of dormant's tree (" + std::to_string(n) + " processes), in the bench", us,
             "us");
}

int Phase(const std::string& mode, int seconds, int providers, int kids, int storm_rate) {
  std::printf("\n== idle, %s: %d providers x %d processes, %d s%s ==\n", mode.c_str(), providers, kids + 1,
              seconds,
              storm_rate ? (", " + std::to_string(storm_rate) + " execs/s elsewhere on the machine").c_str()
                         : "");
  DormantOptions o;
  o.name = "idle-" + mode;
  o.no_connector = mode == "walk";
  o.app_args = {"app", std::to_string(providers), std::to_string(kids + 1), std::to_string(kids + 1)};
  Dormant d(o);
  auto s = d.WaitStatus([&](auto& s) { return !s["providers"].empty(); });
  int app = s["app"]["pid"].get<int>();
  // The whole tree from /proc: the app, its providers, their children.
  const size_t want = 1 + providers * (kids + 1);
  auto end = Clock::now() + 30s;
  while (SubtreePids({app}).size() < want && Clock::now() < end) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(1s);  // a few walks, in walk mode
  s = d.Call("status");
  auto listed = ProviderPids(s);
  auto table = dormant::platform::CreateProcessTable();
  std::vector<int> roots = table->Children(app);
  std::sort(listed.begin(), listed.end());
  std::sort(roots.begin(), roots.end());
  std::printf("  app pid %d; %zu processes below it; providers listed by dormant: %zu\n", app,
              SubtreePids({app}).size() - 1, listed.size());
  std::printf("RESULT %s.providers_listed value=%zu of %zu\n", mode.c_str(), listed.size(), roots.size());
  if (listed != roots) {
    std::printf("  WRONG: dormant lists as providers:");
    for (int p : listed) std::printf(" %d (ppid %d)", p, table->Read(p) ? table->Read(p)->ppid : 0);
    std::printf("; the app's providers are:");
    for (int p : roots) std::printf(" %d", p);
    std::printf("\n");
  }
  int guardian = d.GuardianPid();
  // Let start-up settle (first walks, the status calls above) before measuring.
  std::this_thread::sleep_for(2s);
  CpuSample a = SampleCpu(d.pid());
  CpuSample ga = guardian ? SampleCpu(guardian) : CpuSample{};
  MachineEvents m = CountMachineEvents(seconds, storm_rate);
  CpuSample b = SampleCpu(d.pid());
  CpuSample gb = guardian ? SampleCpu(guardian) : CpuSample{};
  PrintCpu(mode + ".supervisor", "supervisor", a, b);
  if (guardian) PrintCpu(mode + ".guardian", "guardian", ga, gb);
  double secs = std::chrono::duration<double>(b.at - a.at).count();
  if (m.total >= 0) {
    PrintValue(mode + ".machine_events", "process events on the whole machine", m.total / secs, "per s");
    if (m.total > 0 && mode != "walk") {
      PrintValue(mode + ".us_per_event", "supervisor CPU per machine process event",
                 (b.run_ns - a.run_ns) / 1e3 / m.total, "us");
    }
  }
  PrintWalkCost(mode, d.pid(), 200);
  PrintMemory(mode + ".supervisor", "supervisor", d.pid());
  if (guardian) PrintMemory(mode + ".guardian", "guardian", guardian);
  std::string log = d.Log();
  bool walking = log.find("walking the tree every") != std::string::npos;
  std::printf("  dormant found processes by: %s\n", walking ? "its periodic walk (no connector)"
                                                           : "the netlink process connector");
  int left = d.Stop();
  std::printf("  processes left after dormant exited on SIGTERM: %d\n", left);
  return left == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (RunHelper(argc, argv)) return 0;
  Init();
  Flags f(argc, argv);
  int seconds = f.Int("seconds", 60);
  std::string mode = f.Str("mode", "both");
  int providers = f.Int("providers", 2), kids = f.Int("kids", 3);
  int storm = f.Int("storm-rate", 200);
  PrintMachine();
  int rc = 0;
  bool all = mode == "all", both = all || mode == "both";
  if (both || mode == "connector") rc |= Phase("connector", seconds, providers, kids, 0);
  if (both || mode == "walk") rc |= Phase("walk", seconds, providers, kids, 0);
  if (all || mode == "storm") rc |= Phase("storm", seconds, providers, kids, storm);
  return rc;
}
