// The SIGSTOP freezer. A process can fork between the moment we list its
// parent's children and the moment the parent's stop lands, so the walk never
// trusts a children list read from a running process: it stops a process,
// waits until /proc says it (every thread of it) is stopped, and only then
// reads its children. A stopped process cannot fork, and a fork in progress
// when the stop arrives completes (child attached) before the process stops,
// so that list is final. Stops are sent to a whole level at once and
// confirmed as they land, so the wait is about one scheduling round per level
// of the tree, not per process. Continue needs no walk: it continues what the
// last Stop of that root stopped, which cannot have forked since.
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "platform/freezer.h"
#include "platform/linux/procfs.h"

namespace dormant::platform {
namespace {

using Clock = std::chrono::steady_clock;
// How long a process may take to reach the stopped state. A process in
// uninterruptible sleep (D) stops only when it leaves it.
constexpr auto kStopTimeout = std::chrono::seconds(5);

enum class Probe { kStopped, kRunning, kGone };

struct ProbeResult {
  Probe probe;
  int num_threads = 0;
};

bool IsStoppedState(char state) { return state == 'T' || state == 't'; }
bool IsGoneState(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

// Whether every thread of `pid` is stopped. A group stop reaches each thread
// on its own, so the leader's state alone does not prove that another thread
// is not still finishing a fork; and a leader that exited early shows Z
// while its other threads live on.
ProbeResult ProbeStopped(int pid) {
  auto st = procfs::ReadStat(pid);
  if (!st) return {Probe::kGone};
  const bool leader_gone = IsGoneState(st->state);
  if (leader_gone && st->num_threads <= 1) return {Probe::kGone};
  if (!leader_gone && !IsStoppedState(st->state)) return {Probe::kRunning};
  if (st->num_threads <= 1) return {Probe::kStopped, st->num_threads};
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", pid);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path), &::closedir);
  if (!dir) return {Probe::kGone};
  while (dirent* entry = ::readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    auto tst = procfs::ReadStat(pid, std::atoi(entry->d_name));
    if (tst && !IsStoppedState(tst->state) && !IsGoneState(tst->state)) return {Probe::kRunning};
  }
  return {Probe::kStopped, st->num_threads};
}

// Sleeps a little longer each time nothing progressed: first just yield (the
// targets need a CPU to stop), then up to a millisecond.
void Backoff(int idle_rounds) {
  if (idle_rounds < 4) {
    sched_yield();
    return;
  }
  long ns = std::min(1'000'000L, 20'000L << std::min(idle_rounds - 4, 6));
  timespec ts{0, ns};
  nanosleep(&ts, nullptr);
}

std::string KillError(int pid, int sig, int err) {
  return "kill(" + std::to_string(pid) + ", " + sigabbrev_np(sig) + "): " + std::strerror(err);
}

// The outcome of stopping a tree: every pid a SIGSTOP reached (parents first),
// and the first error, if any.
struct StopResult {
  std::vector<int> signalled;
  std::vector<int> stopped;
  Error error;
};

// Trees with this many processes waiting to be confirmed get a second walker.
constexpr size_t kSplitAt = 16;

// One walker's share of a stop: what it signalled and confirmed so far, and
// the processes sent SIGSTOP but not yet seen stopped.
struct Walk {
  std::unordered_set<int> seen;
  std::vector<int> pending;
  StopResult r;

  // Sends SIGSTOP to a pid not seen before; records it when it reached a process.
  void StopOne(int pid) {
    if (!seen.insert(pid).second) return;
    if (::kill(pid, SIGSTOP) == 0) {
      r.signalled.push_back(pid);
      pending.push_back(pid);
    } else if (errno != ESRCH && r.error.code == 0) {
      r.error = Error{errno, KillError(pid, SIGSTOP, errno)};
    }
  }

  // Confirms pending stops, stopping the children of each confirmed process,
  // until nothing is pending; or, when split_at > 0, until that many wait.
  void Run(Clock::time_point deadline, size_t split_at) {
    int idle_rounds = 0;
    std::vector<int> still, children;
    while (!pending.empty()) {
      still.clear();
      bool progressed = false;
      // Children are appended to `pending` and probed in the same sweep, so a
      // deep tree is confirmed level after level.
      for (size_t i = 0; i < pending.size(); ++i) {
        int pid = pending[i];
        ProbeResult p = ProbeStopped(pid);
        if (p.probe == Probe::kRunning) {
          still.push_back(pid);
          continue;
        }
        progressed = true;
        if (p.probe == Probe::kGone) continue;
        r.stopped.push_back(pid);
        // The thread count just read saves a look at the task directory.
        children.clear();
        procfs::ReadChildren(pid, p.num_threads, &children);
        for (int child : children) StopOne(child);
        if (split_at > 0 && pending.size() - i - 1 + still.size() >= split_at) {
          still.insert(still.end(), pending.begin() + static_cast<ptrdiff_t>(i) + 1, pending.end());
          pending.swap(still);
          return;
        }
      }
      pending.swap(still);
      if (pending.empty()) return;
      if (progressed) {
        idle_rounds = 0;
        continue;
      }
      if (Clock::now() > deadline) {
        if (r.error.code == 0) {
          r.error = Error{ETIMEDOUT, std::to_string(pending.size()) +
                                         " process(es) not stopped in time, e.g. " +
                                         std::to_string(pending.front())};
        }
        return;
      }
      Backoff(idle_rounds++);
    }
  }

  // Adds another walker's result. A process re-parented during the walk can
  // be listed under two parents, one per walker: keep it once.
  void Merge(StopResult&& other) {
    for (int pid : other.signalled) {
      if (seen.insert(pid).second) r.signalled.push_back(pid);
    }
    std::unordered_set<int> stopped(r.stopped.begin(), r.stopped.end());
    for (int pid : other.stopped) {
      if (stopped.insert(pid).second) r.stopped.push_back(pid);
    }
    if (r.error.code == 0) r.error = std::move(other.error);
  }
};

class SignalFreezer final : public Freezer {
 public:
  explicit SignalFreezer(ProcessTable& table) : table_(table) {}

  std::string_view name() const override { return "sigstop"; }

  Expected<std::vector<int>> Stop(int root) override {
    StopResult r = StopTree(root);
    if (!r.signalled.empty()) Remember(root, r.signalled);
    if (r.error.code != 0) return r.error;
    return r.stopped;
  }

  Expected<std::vector<int>> Continue(int root) override {
    // A tree we stopped cannot have changed, except by exits, so the pids we
    // stopped are the ones to continue, with no walk: resuming is what the
    // user waits for. A tree we did not stop is walked.
    std::vector<int> pids = Recall(root);
    if (pids.empty()) pids = Subtree(table_, root);
    if (pids.empty()) return GoneRoot(root);
    std::vector<int> continued;
    continued.reserve(pids.size());
    Error first;
    for (int pid : pids) {
      if (::kill(pid, SIGCONT) == 0) {
        continued.push_back(pid);
      } else if (errno != ESRCH && first.code == 0) {
        first = Error{errno, KillError(pid, SIGCONT, errno)};
      }
    }
    if (first.code != 0) return first;
    return continued;
  }

  Expected<std::vector<int>> Signal(int root, int sig) override {
    if (sig == SIGSTOP) return Stop(root);
    if (sig == SIGCONT) return Continue(root);
    // Stopping first closes the set: nothing in it can fork while `sig` goes
    // out. Then `sig` waits in each stopped process, and SIGCONT lets each run
    // its handler (a stopped process handles nothing but SIGKILL).
    StopResult r = StopTree(root);
    std::vector<int> remembered = Recall(root);
    // A root that died while stopped: its descendants we stopped are the tree.
    if (r.signalled.empty()) r.signalled = std::move(remembered);
    if (r.signalled.empty()) return r.error.code != 0 ? r.error : GoneRoot(root);
    std::vector<int> sent;
    sent.reserve(r.signalled.size());
    Error first;
    for (int pid : r.signalled) {
      if (::kill(pid, sig) == 0) {
        sent.push_back(pid);
      } else if (errno != ESRCH && first.code == 0) {
        first = Error{errno, KillError(pid, sig, errno)};
      }
    }
    for (int pid : r.signalled) ::kill(pid, SIGCONT);
    if (first.code != 0) return first;
    return sent;
  }

 private:
  static Error GoneRoot(int root) {
    return Error{ESRCH, "process " + std::to_string(root) + ": no such process"};
  }

  // Two walkers share a big tree: on a 2-CPU machine that halves the wall
  // time of the /proc reads, which are most of the cost. Small trees never
  // reach kSplitAt and stay on this thread.
  StopResult StopTree(int root) {
    const auto deadline = Clock::now() + kStopTimeout;
    Walk main;
    main.StopOne(root);
    if (main.r.signalled.empty() && main.r.error.code == 0) main.r.error = GoneRoot(root);
    main.Run(deadline, kSplitAt);
    if (main.pending.empty()) return std::move(main.r);
    // Deal the waiting processes alternately: neighbours in the queue are
    // often siblings of one size, so both walkers get a like share.
    Walk helper;
    helper.seen = main.seen;
    std::vector<int> mine;
    for (size_t i = 0; i < main.pending.size(); ++i) {
      (i % 2 ? helper.pending : mine).push_back(main.pending[i]);
    }
    main.pending.swap(mine);
    try {
      std::thread thread([&helper, deadline] { helper.Run(deadline, 0); });
      main.Run(deadline, 0);
      thread.join();
    } catch (const std::system_error&) {
      // No thread to be had: walk it all here.
      main.pending.insert(main.pending.end(), helper.pending.begin(), helper.pending.end());
      helper.pending.clear();
      main.Run(deadline, 0);
    }
    main.Merge(std::move(helper.r));
    return std::move(main.r);
  }

  struct StoppedTree {
    uint64_t start_ticks = 0;
    std::vector<int> pids;
  };

  void Remember(int root, std::vector<int> pids) {
    auto st = procfs::ReadStat(root);
    if (st) stopped_[root] = StoppedTree{st->start_ticks, std::move(pids)};
  }

  // The pids of the last Stop of `root`; forgets them. When the root died
  // (or its pid now names another process) its stopped descendants still
  // need their SIGCONT: they cannot have been reaped and their pids reused
  // while stopped, except by a subreaper, so only the root is left out.
  std::vector<int> Recall(int root) {
    auto it = stopped_.find(root);
    if (it == stopped_.end()) return {};
    StoppedTree tree = std::move(it->second);
    stopped_.erase(it);
    auto st = procfs::ReadStat(root);
    if (!st || st->start_ticks != tree.start_ticks) std::erase(tree.pids, root);
    return std::move(tree.pids);
  }

  ProcessTable& table_;
  std::map<int, StoppedTree> stopped_;  // by root
};

}  // namespace

std::unique_ptr<Freezer> CreateSignalFreezer(ProcessTable& table) {
  return std::make_unique<SignalFreezer>(table);
}

}  // namespace dormant::platform
