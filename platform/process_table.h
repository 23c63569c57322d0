// The process table: read one process, list its direct children.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "enforcer/expected.h"

namespace dormant::platform {

/// What dormant needs to know about one process.
struct ProcessInfo {
  int pid = 0;
  int ppid = 0;
  char state = '?';          // as in /proc/PID/stat: R, S, D, T (stopped), Z, ...
  uint64_t start_ticks = 0;  // start time since boot; with pid, names one process for good
  std::string exe;           // path of the executable ("" when unreadable)
  std::vector<std::string> argv;
};

/// Reads processes. Linux: /proc; macOS: libproc.
class ProcessTable {
 public:
  virtual ~ProcessTable() = default;
  /// Direct children of `pid` (of all its threads). Empty when it has none or is gone.
  virtual std::vector<int> Children(int pid) = 0;
  /// One process; an error (code ESRCH) when it is gone.
  virtual Expected<ProcessInfo> Read(int pid) = 0;
  /// One variable of a process's initial environment, or an error when unreadable/absent.
  virtual Expected<std::string> Env(int pid, const std::string& key) = 0;
};

std::unique_ptr<ProcessTable> CreateProcessTable();

/// `root` and all its descendants, parents before children.
std::vector<int> Subtree(ProcessTable& table, int root);

}  // namespace dormant::platform
