// The SIGSTOP freezer on macOS: as on Linux, a process's children are read
// only once it is seen stopped (a stopped process cannot fork), so processes
// forked during the walk are caught. macOS stops a whole task at once, so the
// BSD status of the process is the whole answer. Not built on Linux.
#include <signal.h>
#include <sys/proc.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <unordered_set>

#include "platform/freezer.h"
#include "platform/macos/libproc_util.h"

namespace dormant::platform {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStopTimeout = std::chrono::seconds(5);

Error KillError(int pid, int sig, int err) {
  return Error{err, "kill(" + std::to_string(pid) + ", " + std::to_string(sig) + "): " + std::strerror(err)};
}

Error GoneRoot(int root) { return Error{ESRCH, "process " + std::to_string(root) + ": no such process"}; }

class SignalFreezer final : public Freezer {
 public:
  explicit SignalFreezer(ProcessTable& table) : table_(table) {}

  std::string_view name() const override { return "sigstop"; }

  Expected<std::vector<int>> Stop(int root) override {
    std::vector<int> signalled, stopped;
    Error error = StopTree(root, &signalled, &stopped);
    if (!signalled.empty()) stopped_[root] = signalled;
    if (error.code != 0) return error;
    return stopped;
  }

  Expected<std::vector<int>> Continue(int root) override {
    // What the last Stop stopped cannot have forked since; else walk.
    std::vector<int> pids;
    if (auto it = stopped_.find(root); it != stopped_.end()) {
      pids = std::move(it->second);
      stopped_.erase(it);
    }
    if (pids.empty() || kill(root, 0) != 0) pids = Subtree(table_, root);
    if (pids.empty()) return GoneRoot(root);
    return SendAll(pids, SIGCONT);
  }

  Expected<std::vector<int>> Signal(int root, int sig) override {
    if (sig == SIGSTOP) return Stop(root);
    if (sig == SIGCONT) return Continue(root);
    std::vector<int> signalled, stopped;
    Error error = StopTree(root, &signalled, &stopped);
    // A root that died while stopped: its descendants we stopped are the tree.
    if (auto it = stopped_.find(root); it != stopped_.end()) {
      if (signalled.empty()) signalled = std::move(it->second);
      stopped_.erase(it);
    }
    if (signalled.empty()) return error.code != 0 ? error : GoneRoot(root);
    auto sent = SendAll(signalled, sig);
    SendAll(signalled, SIGCONT);
    return sent;
  }

 private:
  static Expected<std::vector<int>> SendAll(const std::vector<int>& pids, int sig) {
    std::vector<int> sent;
    for (int pid : pids) {
      if (kill(pid, sig) == 0) {
        sent.push_back(pid);
      } else if (errno != ESRCH) {
        return KillError(pid, sig, errno);
      }
    }
    return sent;
  }

  Error StopTree(int root, std::vector<int>* signalled, std::vector<int>* stopped) {
    Error error;
    std::unordered_set<int> seen;
    std::vector<int> pending, still;
    auto stop_one = [&](int pid) {
      if (!seen.insert(pid).second) return;
      if (kill(pid, SIGSTOP) == 0) {
        signalled->push_back(pid);
        pending.push_back(pid);
      } else if (errno != ESRCH && error.code == 0) {
        error = KillError(pid, SIGSTOP, errno);
      }
    };
    stop_one(root);
    if (signalled->empty() && error.code == 0) return GoneRoot(root);
    const auto deadline = Clock::now() + kStopTimeout;
    while (!pending.empty()) {
      still.clear();
      bool progressed = false;
      for (size_t i = 0; i < pending.size(); ++i) {
        int pid = pending[i];
        uint32_t status = macos::Status(pid);
        if (status != 0 && status != SSTOP && status != SZOMB) {
          still.push_back(pid);
          continue;
        }
        progressed = true;
        if (status != SSTOP) continue;  // gone
        stopped->push_back(pid);
        for (int child : table_.Children(pid)) stop_one(child);
      }
      pending.swap(still);
      if (pending.empty() || progressed) continue;
      if (Clock::now() > deadline) {
        if (error.code == 0) error = Error{ETIMEDOUT, std::to_string(pending.size()) + " process(es) not stopped in time"};
        break;
      }
      timespec ts{0, 200'000};
      nanosleep(&ts, nullptr);
    }
    return error;
  }

  ProcessTable& table_;
  std::map<int, std::vector<int>> stopped_;  // by root: pids of its last Stop
};

}  // namespace

std::unique_ptr<Freezer> CreateSignalFreezer(ProcessTable& table) {
  return std::make_unique<SignalFreezer>(table);
}

}  // namespace dormant::platform
