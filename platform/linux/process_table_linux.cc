// The process table from /proc. Each read is a snapshot of one file: a process
// may exit (or, rarely, its pid be reused) between two reads, which callers
// detect by comparing (pid, start_ticks).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "platform/linux/procfs.h"
#include "platform/process_table.h"

namespace dormant::platform {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

Error GoneOr(int err, int pid, const char* what) {
  if (err == ENOENT || err == ESRCH) {
    return Error{ESRCH, "/proc/" + std::to_string(pid) + ": no such process"};
  }
  return Error{err, "/proc/" + std::to_string(pid) + "/" + what + ": " + std::strerror(err)};
}

// Splits NUL-separated text (cmdline, environ); a trailing NUL ends the last item.
std::vector<std::string> SplitNul(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    items.emplace_back(text, start, end - start);
    start = end + 1;
  }
  return items;
}

std::string ReadExe(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/exe", pid);
  char buf[4096];
  ssize_t n = ::readlink(path, buf, sizeof buf);
  // Kernel threads, zombies and other users' processes have no readable exe.
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return {};
  std::string exe(buf, static_cast<size_t>(n));
  // An executable replaced on disk (an upgrade) still names the program.
  if (exe.ends_with(kDeletedSuffix)) exe.resize(exe.size() - kDeletedSuffix.size());
  return exe;
}

class ProcTable final : public ProcessTable {
 public:
  std::vector<int> Children(int pid) override {
    std::vector<int> children;
    procfs::ReadChildren(pid, 0, &children);
    return children;
  }

  Expected<ProcessInfo> Read(int pid) override {
    auto st = procfs::ReadStat(pid);
    if (!st) return st.error();
    ProcessInfo info;
    info.pid = pid;
    info.ppid = st->ppid;
    info.state = st->state;
    info.start_ticks = st->start_ticks;
    info.exe = ReadExe(pid);
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    std::string text;
    int err = procfs::ReadFile(path, &text);
    if (err == ENOENT || err == ESRCH) return GoneOr(err, pid, "cmdline");
    if (err == 0) info.argv = SplitNul(text);
    return info;
  }

  Expected<std::string> Env(int pid, const std::string& key) override {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/environ", pid);
    std::string text;
    if (int err = procfs::ReadFile(path, &text); err != 0) return GoneOr(err, pid, "environ");
    for (const std::string& item : SplitNul(text)) {
      if (item.size() > key.size() && item[key.size()] == '=' && item.starts_with(key)) {
        return item.substr(key.size() + 1);
      }
    }
    return Error{ENOENT, "/proc/" + std::to_string(pid) + "/environ: no " + key};
  }
};

}  // namespace

std::unique_ptr<ProcessTable> CreateProcessTable() { return std::make_unique<ProcTable>(); }

}  // namespace dormant::platform
