// Real process trees for the platform tests: spawn the test binary in a helper
// mode as the leader of its own process group, read /proc independently of
// the code under test, and kill and reap every process of the group at the end.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/helper.h"

extern char** environ;

namespace dormant::testing {

/// Forks and execs `argv` as the leader of a new process group. `env` adds
/// NAME=VALUE entries; `stdout_fd` (when >= 0) becomes the child's stdout.
inline pid_t SpawnArgv(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                       int stdout_fd = -1) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (stdout_fd >= 0) dup2(stdout_fd, 1);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);  // both sides, so neither order races
  return pid;
}

inline pid_t SpawnHelper(const std::string& name, const std::vector<std::string>& args = {},
                         const std::vector<std::string>& env = {}, int stdout_fd = -1) {
  return SpawnArgv(HelperArgv(name, args), env, stdout_fd);
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// The fields of /proc/PID/stat after the command name, as strings (index 0 is
/// the state, field 3 in proc(5)); empty when the process is gone.
inline std::vector<std::string> StatFields(int pid) {
  // Plain read(): a process that exits between open and read makes read()
  // fail with ESRCH, which iostreams would turn into an exception.
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string text(buf, static_cast<size_t>(n));
  size_t close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

/// The state letter of a process, or 0 when it is gone.
inline char StateOf(int pid) {
  auto f = StatFields(pid);
  return f.empty() ? 0 : f[0][0];
}

inline int ParentOf(int pid) {
  auto f = StatFields(pid);
  return f.size() > 1 ? std::stoi(f[1]) : 0;
}

/// utime + stime in clock ticks.
inline long CpuTicksOf(int pid) {
  auto f = StatFields(pid);
  return f.size() > 12 ? std::stol(f[11]) + std::stol(f[12]) : -1;
}

/// Live (not zombie) members of process group `pgid`, by a scan of /proc.
inline std::set<int> GroupMembers(int pgid) {
  std::set<int> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int pid = std::stoi(name);
    auto f = StatFields(pid);
    if (f.size() > 2 && f[0] != "Z" && f[0] != "X" && std::stoi(f[2]) == pgid) pids.insert(pid);
  }
  return pids;
}

/// Makes this process the subreaper of what it spawns (orphans come back to
/// it, not to PID 1, which here reaps nothing), and at the end kills and
/// reaps every process of each tracked group. Tests stay leak-free.
class GroupReaper {
 public:
  GroupReaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~GroupReaper() {
    KillAll();
    prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  GroupReaper(const GroupReaper&) = delete;
  GroupReaper& operator=(const GroupReaper&) = delete;

  pid_t Track(pid_t pgid) {
    if (pgid > 0) groups_.push_back(pgid);
    return pgid;
  }

  /// SIGKILL to each group until no member (zombie or not) is left.
  void KillAll() {
    for (pid_t pgid : groups_) {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      for (;;) {
        kill(-pgid, SIGKILL);
        while (waitpid(-pgid, nullptr, WNOHANG) > 0) {
        }
        if (kill(-pgid, 0) != 0 && errno == ESRCH) break;
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "process group %d would not die\n", pgid);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    groups_.clear();
  }

 private:
  std::vector<pid_t> groups_;
};

}  // namespace dormant::testing
