// Small libproc helpers shared by the macOS backends. Not built on Linux.
#pragma once

#include <libproc.h>
#include <signal.h>
#include <sys/proc.h>
#include <sys/proc_info.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "enforcer/expected.h"

namespace dormant::platform::macos {

/// Direct children of `pid`; empty when it has none or is gone.
inline std::vector<int> ChildPids(int pid) {
  std::vector<pid_t> buf(256);
  for (;;) {
    int n = proc_listchildpids(pid, buf.data(), static_cast<int>(buf.size() * sizeof(pid_t)));
    if (n <= 0) return {};
    // The count may be in pids or bytes across releases: never read past the
    // buffer (it was zeroed, and pid 0 is dropped below), grow when full.
    if (static_cast<size_t>(n) < buf.size()) break;
    buf.assign(buf.size() * 2, 0);
  }
  std::vector<int> children;
  for (pid_t p : buf) {
    if (p > 0) children.push_back(p);
  }
  return children;
}

/// The /proc-style state letter of a BSD process status.
inline char StateLetter(uint32_t status) {
  switch (status) {
    case SRUN:
    case SIDL:
      return 'R';
    case SSLEEP:
      return 'S';
    case SSTOP:
      return 'T';
    case SZOMB:
      return 'Z';
    default:
      return '?';
  }
}

/// ESRCH when `pid` is gone, else the errno of `what`.
inline Error GoneOr(int pid, const char* what) {
  int err = errno;
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    return Error{ESRCH, "process " + std::to_string(pid) + ": no such process"};
  }
  if (err == 0) err = EPERM;
  return Error{err, std::string(what) + "(" + std::to_string(pid) + "): " + std::strerror(err)};
}

/// The BSD status of `pid` (SSTOP, SZOMB...), or 0 when it is gone.
inline uint32_t Status(int pid) {
  proc_bsdinfo bsd{};
  if (proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &bsd, sizeof bsd) != sizeof bsd) return 0;
  return bsd.pbi_status;
}

}  // namespace dormant::platform::macos
