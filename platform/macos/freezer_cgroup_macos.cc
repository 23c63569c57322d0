// macOS has no cgroup freezer: the SIGSTOP freezer is the only backend there.
#include <cerrno>

#include "platform/cgroup_freezer.h"

namespace dormant::platform {

Expected<std::unique_ptr<Freezer>> CreateCgroupFreezer(ProcessTable&, std::string base_dir) {
  return Error{ENOSYS, "cgroup freezer (" + base_dir + "): not available on macOS"};
}

}  // namespace dormant::platform
