// Suspending, resuming and ending a process subtree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "enforcer/expected.h"
#include "platform/process_table.h"

namespace dormant::platform {

/// Acts on a provider's whole subtree (the provider and everything below it).
class Freezer {
 public:
  virtual ~Freezer() = default;
  /// "sigstop" or "cgroup".
  virtual std::string_view name() const = 0;
  /// Stops `root` and every descendant, including ones forked during the walk,
  /// and returns once each is seen stopped. Returns the pids stopped.
  virtual Expected<std::vector<int>> Stop(int root) = 0;
  /// Continues `root` and every descendant. Returns the pids continued.
  virtual Expected<std::vector<int>> Continue(int root) = 0;
  /// Sends SIGCONT and then `sig` to every process of the subtree (a stopped
  /// process runs its SIGTERM handler only once continued). Returns the pids signalled.
  virtual Expected<std::vector<int>> Signal(int root, int sig) = 0;
  /// The cgroup directory that Stop(root) freezes, for the root whose start
  /// time is `start_ticks`; known before the Stop so that the guardian can be
  /// told first. Empty for backends that freeze no cgroup.
  virtual std::string CgroupFor(int root, uint64_t start_ticks) const {
    (void)root;
    (void)start_ticks;
    return {};
  }
};

/// SIGSTOP/SIGCONT on each process: works everywhere, for processes of our uid.
std::unique_ptr<Freezer> CreateSignalFreezer(ProcessTable& table);

}  // namespace dormant::platform
