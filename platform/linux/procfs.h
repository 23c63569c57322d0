// Small readers of /proc and of kernel files, shared by the Linux backends
// (process table, freezers, watcher). Internal to platform/linux/.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enforcer/expected.h"
#include "platform/unique_fd.h"

namespace dormant::platform::procfs {

/// Owns one file descriptor; closes it when destroyed.
using Fd = UniqueFd;

/// Reads a whole file into `out`. Returns 0, or the errno of the failure.
int ReadFile(const char* path, std::string* out);

/// Writes `text` to an existing file in one write(). Returns 0 or an errno.
int WriteFile(const char* path, std::string_view text);

/// The fields of /proc/PID/stat that dormant uses.
struct Stat {
  char state = '?';
  int ppid = 0;
  int num_threads = 0;
  uint64_t cpu_ticks = 0;    // utime + stime
  uint64_t start_ticks = 0;  // starttime, clock ticks since boot
};

/// Parses the text of /proc/PID/stat. The command name may hold spaces and
/// ')' (a process chooses it), so fields are counted from the LAST ')'.
std::optional<Stat> ParseStat(std::string_view text);

/// Reads and parses /proc/PID/stat (or /proc/PID/task/TID/stat when tid > 0).
/// Error code ESRCH when the process is gone.
Expected<Stat> ReadStat(int pid, int tid = 0);

/// Appends the children of every thread of `pid` to `out` (from
/// /proc/PID/task/TID/children). `num_threads`, when known from its stat,
/// saves a look at the task directory; pass 0 when unknown.
void ReadChildren(int pid, int num_threads, std::vector<int>* out);

}  // namespace dormant::platform::procfs
