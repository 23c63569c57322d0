// Hears of forks, execs and exits as they happen (Linux: the netlink process
// connector; macOS: kqueue EVFILT_PROC). A periodic walk of the tree is the
// safety net, so a watcher may lose events (buffer overrun) without harm.
#pragma once

#include <memory>
#include <vector>

#include "enforcer/expected.h"

namespace dormant::platform {

struct ProcEvent {
  enum class Kind { kFork, kExec, kExit };
  Kind kind;
  int pid;     // the process (thread-group id); for kFork, the child
  int parent;  // for kFork, the parent's thread-group id; otherwise 0
};

class ProcessWatcher {
 public:
  virtual ~ProcessWatcher() = default;
  /// A descriptor that polls readable when events wait.
  virtual int fd() const = 0;
  /// Every event waiting now, without blocking. `lost` is set when the kernel
  /// dropped events (the caller should rescan).
  virtual std::vector<ProcEvent> Drain(bool* lost) = 0;
  /// Asks to hear about `pid` and, as they are forked, its descendants.
  /// Linux hears every process anyway (a no-op); macOS's kqueue hears only
  /// the pids it was given, so the caller names each root it follows.
  virtual Expected<void> Watch(int pid) {
    (void)pid;
    return {};
  }
};

/// Error code ENOSYS where no such facility exists, EPERM where it is refused.
Expected<std::unique_ptr<ProcessWatcher>> CreateProcessWatcher();

}  // namespace dormant::platform
