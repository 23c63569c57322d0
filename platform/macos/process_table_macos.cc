// The process table from libproc and sysctl (macOS). Not built on Linux.
#include <libproc.h>
#include <signal.h>
#include <sys/proc_info.h>
#include <sys/sysctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "platform/macos/libproc_util.h"
#include "platform/process_table.h"

namespace dormant::platform {
namespace {

// KERN_PROCARGS2 is: int argc, the exec path, NUL padding, argc strings of
// argv, then the environment strings. Both argv and the environment come
// from it; another user's process refuses (EINVAL/EPERM).
struct ProcArgs {
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

Expected<ProcArgs> ReadProcArgs(int pid) {
  int mib[3] = {CTL_KERN, KERN_ARGMAX, 0};
  int argmax = 0;
  size_t size = sizeof argmax;
  if (sysctl(mib, 2, &argmax, &size, nullptr, 0) != 0) argmax = 1 << 20;
  std::vector<char> buf(static_cast<size_t>(argmax));
  mib[1] = KERN_PROCARGS2;
  mib[2] = pid;
  size = buf.size();
  if (sysctl(mib, 3, buf.data(), &size, nullptr, 0) != 0 || size < sizeof(int)) {
    return Error{errno, "sysctl(KERN_PROCARGS2, " + std::to_string(pid) + "): " + std::strerror(errno)};
  }
  int argc = 0;
  std::memcpy(&argc, buf.data(), sizeof argc);
  const char* p = buf.data() + sizeof argc;
  const char* end = buf.data() + size;
  p = static_cast<const char*>(std::memchr(p, '\0', end - p));  // skip the exec path
  ProcArgs args;
  if (!p) return args;
  while (p < end && *p == '\0') ++p;  // and its padding
  for (int i = 0; p < end; ++i) {
    const char* nul = static_cast<const char*>(std::memchr(p, '\0', end - p));
    if (!nul) nul = end;
    if (i < argc) {
      args.argv.emplace_back(p, nul);
    } else if (nul == p) {
      break;  // an empty string ends the environment
    } else {
      args.env.emplace_back(p, nul);
    }
    p = nul + 1;
  }
  return args;
}

class LibprocTable final : public ProcessTable {
 public:
  std::vector<int> Children(int pid) override { return macos::ChildPids(pid); }

  Expected<ProcessInfo> Read(int pid) override {
    proc_bsdinfo bsd{};
    if (proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &bsd, sizeof bsd) != sizeof bsd) {
      return macos::GoneOr(pid, "proc_pidinfo");
    }
    ProcessInfo info;
    info.pid = pid;
    info.ppid = static_cast<int>(bsd.pbi_ppid);
    info.state = macos::StateLetter(bsd.pbi_status);
    // Microseconds since the epoch: with the pid, it names one process.
    info.start_ticks = bsd.pbi_start_tvsec * 1000000ull + bsd.pbi_start_tvusec;
    char path[PROC_PIDPATHINFO_MAXSIZE];
    if (proc_pidpath(pid, path, sizeof path) > 0) info.exe = path;
    if (auto args = ReadProcArgs(pid); args.ok()) info.argv = std::move(args->argv);
    return info;
  }

  Expected<std::string> Env(int pid, const std::string& key) override {
    auto args = ReadProcArgs(pid);
    if (!args.ok()) {
      if (kill(pid, 0) != 0 && errno == ESRCH) return macos::GoneOr(pid, "sysctl");
      return args.error();
    }
    for (const std::string& item : args->env) {
      if (item.size() > key.size() && item[key.size()] == '=' && item.compare(0, key.size(), key) == 0) {
        return item.substr(key.size() + 1);
      }
    }
    return Error{ENOENT, "process " + std::to_string(pid) + ": no " + key + " in its environment"};
  }
};

}  // namespace

std::unique_ptr<ProcessTable> CreateProcessTable() { return std::make_unique<LibprocTable>(); }

}  // namespace dormant::platform
