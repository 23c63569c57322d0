// The cgroup v2 freezer as a Freezer backend, for where dormant has a
// delegated cgroup v2 directory it may write (systemd `Delegate=yes`, or root).
#pragma once

#include <memory>
#include <string>

#include "enforcer/expected.h"
#include "platform/freezer.h"
#include "platform/process_table.h"

namespace dormant::platform {

/// A Freezer named "cgroup". On first use for a provider it creates a child
/// cgroup `dormant-PID-STARTTICKS` under `base_dir` and moves the provider's
/// subtree into it; descendants forked later are born inside, so processes that
/// double-fork or are re-parented stay with their provider. Stop writes
/// cgroup.freeze and returns once cgroup.events says `frozen 1`; Continue
/// thaws; Signal(SIGKILL) uses cgroup.kill. The freezer thaws every cgroup it
/// made, and removes the empty ones, when destroyed.
/// Errors: ENOTDIR/EACCES/EROFS when `base_dir` is not a writable cgroup v2
/// directory; ENOSYS where there is no cgroup v2 (macOS).
Expected<std::unique_ptr<Freezer>> CreateCgroupFreezer(ProcessTable& table, std::string base_dir);

/// dormant's own cgroup v2 directory: the "0::" line of /proc/self/cgroup
/// under the cgroup2 mount of /proc/self/mountinfo.
/// Errors: ENOSYS without a cgroup v2 hierarchy or mount.
Expected<std::string> OwnCgroupDir();

/// Whether the cgroup freezer can work under `dir`: a cgroup v2 directory in
/// which dormant may create a child cgroup (probed with a real mkdir and
/// rmdir), whose child has cgroup.freeze, and into which processes may be
/// moved (`dir`'s and the child's cgroup.procs writable: a process moves only
/// when the common ancestor's cgroup.procs is writable, and both live in `dir`).
/// The error says why not, naming the file.
Expected<void> CheckDelegated(const std::string& dir);

}  // namespace dormant::platform
