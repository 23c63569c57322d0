// The guardian: a tiny process that outlives dormant. dormant tells it which
// provider trees it is about to stop and which it has continued; if dormant dies
// (even by SIGKILL) its end of the pipe closes and the guardian continues every
// tree still recorded (thawing its cgroup, when the cgroup freezer froze it),
// so no provider is left stopped and the app runs on.
// It also holds a copy of the gate's listener: it answers the gate once dormant
// is gone, and while dormant lives but has stopped beating (SIGSTOP, a
// debugger), until it beats again.
#pragma once

#include <cstdint>
#include <string>

#include "enforcer/expected.h"
#include "platform/gate.h"
#include "platform/unique_fd.h"

namespace dormant::launcher {

class Guardian {
 public:
  /// Double-forks the guardian so it is nobody's child in the supervised tree.
  /// Call before becoming a subreaper and before any thread starts. With a
  /// gate journal (created before this call, so the guardian shares its
  /// memory), the guardian can also take over the gate once dormant is gone.
  static Expected<Guardian> Start(platform::GateJournal* journal = nullptr);

  Guardian() = default;
  Guardian(Guardian&&) = default;
  Guardian& operator=(Guardian&&) = default;

  /// Before stopping the tree rooted at `pid` (whose start time is `start_ticks`).
  /// `cgroup` is the cgroup v2 directory the freezer will freeze, if any: a
  /// frozen task ignores SIGCONT, so the guardian must thaw that too.
  void WillStop(int pid, uint64_t start_ticks, const std::string& cgroup = {});
  /// After continuing (or ending) the tree rooted at `pid`.
  void Released(int pid);
  /// Hands the guardian a copy of the gate's listener. It holds it unread
  /// while dormant lives and beats in the journal (a reader is the only one
  /// who can answer what it reads), answers every call "continue" while
  /// dormant's beat is silent for GateJournal::kSilentMs, and once dormant is
  /// gone. Without a journal it waits for dormant's death only.
  void GiveListener(int listener_fd);
  int pid() const { return pid_; }
  /// Closes the pipe: the guardian continues what is still recorded and exits.
  void Close() { fd_.reset(); }

 private:
  void Send(const char* line, int len);
  platform::UniqueFd fd_;
  platform::UniqueFd gate_sock_;
  int pid_ = 0;
};

/// The guardian's own main loop (exposed for tests): reads records from `fd`
/// until EOF, then thaws every recorded cgroup and continues every recorded
/// tree that still exists. Returns the number of processes it continued (a
/// thawed cgroup counts its members). Meanwhile it stands in for a silent
/// dormant on the gate, as GiveListener says.
int GuardianMain(int fd, int gate_sock = -1, platform::GateJournal* journal = nullptr);

}  // namespace dormant::launcher
