// Recognising provider processes, and knowing which provider a process belongs to.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "enforcer/policy.h"

namespace dormant::enforcer {

/// The facts about one process that matching needs.
struct ProcessFacts {
  int pid = 0;
  int ppid = 0;
  std::string exe;                // executable path, may be empty
  std::vector<std::string> argv;  // may be empty (kernel thread, zombie)
};

/// The names a process goes by: the base name of its executable, of argv[0],
/// and, when an interpreter (node, python, ...) runs a script, the script's base
/// name with and without its extension.
std::vector<std::string> ProgramNames(const ProcessFacts& p);

/// Index of the first matcher that matches `p`, if any.
std::optional<size_t> MatchProvider(const std::vector<ProviderMatcher>& matchers,
                                    const ProcessFacts& p);

/// The supervised tree as dormant knows it: for each process, its parent and
/// the provider it belongs to. The topmost matching process is the provider;
/// everything below it belongs to it, even if it matches again.
class ProcessTree {
 public:
  struct Change {
    enum class Kind { kNone, kProviderStarted, kProviderExited } kind = Kind::kNone;
    int pid = 0;
    size_t matcher = 0;
  };

  explicit ProcessTree(int root) : root_(root) {}

  /// A process appeared or exec'd (facts freshly read). Returns a provider start
  /// when it is a new provider root. Processes whose parent is unknown are ignored
  /// unless their parent is the root.
  Change Update(const ProcessFacts& p, const std::vector<ProviderMatcher>& matchers);
  /// A process is gone. Returns a provider exit when it was a provider root,
  /// and a provider start for each orphan below it that matches on its own.
  std::vector<Change> Remove(int pid, const std::vector<ProviderMatcher>& matchers);
  /// Re-matches every known process (after a policy reload). Returns changes.
  std::vector<Change> Rematch(const std::vector<ProviderMatcher>& matchers);

  bool Contains(int pid) const { return pid == root_ || nodes_.count(pid) > 0; }
  /// The provider root `pid` belongs to, or 0.
  int ProviderOf(int pid) const;
  size_t size() const { return nodes_.size(); }
  std::vector<int> Pids() const;

 private:
  struct Node {
    int ppid = 0;
    ProcessFacts facts;
    std::optional<size_t> matcher;  // set when this node is a provider root
  };
  int root_;
  std::unordered_map<int, Node> nodes_;
};

}  // namespace dormant::enforcer
