// Attributing usage to a supervised provider process. A usage line names a
// session and a client, not a process; dormant knows processes. The links:
//   1. the log file is open in the process (/proc/PID/fd): Codex keeps its
//      rollout open while the session lives;
//   2. the file lies under the process's own log root (its CODEX_HOME or
//      CLAUDE_CONFIG_DIR, read from /proc/PID/environ), and among several such
//      processes the one whose working directory or expected client matches;
//   3. otherwise the usage belongs to "other clients" (no pid).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "meter/usage.h"

namespace dormant::meter {

/// Where a process's logs go: "$CODEX_HOME/sessions" (default ~/.codex) or
/// "$CLAUDE_CONFIG_DIR/projects" (default ~/.claude), from its environment.
/// Empty when /proc/PID/environ cannot be read.
std::string LogRootOf(int pid, ProviderKind kind);
/// The same from an environment given as NAME=VALUE strings.
std::string LogRootFromEnv(const std::vector<std::string>& env, ProviderKind kind);
/// "*.jsonl" files the process has open, as absolute paths.
std::vector<std::string> OpenLogFiles(int pid);
/// The process's working directory ("" when unknown).
std::string CwdOf(int pid);

class Attributor {
 public:
  /// A supervised provider. `client` is the originator it is expected to
  /// write (Codex), or empty when unknown.
  void AddProvider(int pid, ProviderKind kind, std::string client = {});
  /// Same, with the facts given rather than read from /proc (tests, macOS).
  void AddProvider(int pid, ProviderKind kind, std::string log_root, std::string cwd,
                   std::string client);
  void RemoveProvider(int pid);

  /// The supervised pid that wrote `event` (read from `source`), if any.
  std::optional<int> Attribute(const UsageEvent& event, const std::string& source);

 private:
  struct Provider {
    ProviderKind kind;
    std::string log_root;
    std::string cwd;
    std::string client;
  };
  std::optional<int> ByOpenFile(ProviderKind kind, const std::string& source);

  std::map<int, Provider> providers_;
  std::map<std::string, int> file_owner_;  // source path -> pid, learnt from /proc/PID/fd
};

}  // namespace dormant::meter
