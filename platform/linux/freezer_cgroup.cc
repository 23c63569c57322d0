// The cgroup v2 freezer. Unlike SIGSTOP, a frozen task cannot be thawed by
// anyone sending SIGCONT, its parent sees no stop, and membership follows
// every descendant (a double-forked daemon stays in the cgroup). The price is
// one migration per process the first time a provider is frozen.
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_set>

#include "platform/cgroup_freezer.h"
#include "platform/linux/procfs.h"

namespace dormant::platform {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFreezeTimeout = std::chrono::seconds(5);
// Walks of the subtree while moving it in; each walk can only find processes
// forked by ones not yet moved, so a few suffice.
constexpr int kMaxEncloseRounds = 64;

Error Errno(int err, const std::string& what) { return Error{err, what + ": " + std::strerror(err)}; }

std::vector<int> ReadPids(const std::string& file) {
  std::vector<int> pids;
  std::string text;
  if (procfs::ReadFile(file.c_str(), &text) != 0) return pids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    int pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec != std::errc()) {
      ++p;
      continue;
    }
    pids.push_back(pid);
    p = next;
  }
  return pids;
}

// The value of `key` ("frozen", "populated") in a cgroup.events text, or -1.
int EventValue(std::string_view text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string_view::npos) {
    bool line_start = at == 0 || text[at - 1] == '\n';
    size_t value = at + key.size();
    if (line_start && value + 1 < text.size() && text[value] == ' ') {
      return text[value + 1] - '0';
    }
    at = value;
  }
  return -1;
}

class CgroupFreezer final : public Freezer {
 public:
  CgroupFreezer(ProcessTable& table, std::string base) : table_(table), base_(std::move(base)) {}

  ~CgroupFreezer() override {
    // Never leave a provider frozen behind us.
    for (auto& [root, group] : groups_) procfs::WriteFile((group.dir + "/cgroup.freeze").c_str(), "0");
    for (const std::string& dir : retired_) procfs::WriteFile((dir + "/cgroup.freeze").c_str(), "0");
    // The supervisor has ended what was left of the tree before this; a
    // process still dying keeps its cgroup populated for a moment (longer on
    // a loaded machine), so give them up to a second before leaving the
    // empty cgroups behind.
    for (int i = 0; i < 100; ++i) {
      Prune();
      if (groups_.empty() && retired_.empty()) break;
      ::usleep(10'000);
    }
  }

  std::string_view name() const override { return "cgroup"; }

  std::string CgroupFor(int root, uint64_t start_ticks) const override {
    return GroupDir(root, start_ticks);
  }

  Expected<std::vector<int>> Stop(int root) override {
    Prune();
    // A process already inside one of our cgroups (a child forked as its
    // provider was stopped) is stopped with that cgroup: a cgroup of its own
    // would take it away from its provider, and no Continue would thaw it.
    if (!groups_.count(root)) {
      if (std::string dir = DirHolding(root); !dir.empty()) {
        if (auto ok = SetFrozen(dir, true); !ok) return ok.error();
        return ReadPids(dir + "/cgroup.procs");
      }
    }
    auto dir = Enclose(root);
    if (!dir) return dir.error();
    if (auto ok = SetFrozen(*dir, true); !ok) return ok.error();
    return ReadPids(*dir + "/cgroup.procs");
  }

  Expected<std::vector<int>> Continue(int root) override {
    Prune();
    auto it = groups_.find(root);
    if (it == groups_.end()) {
      // Never frozen by us: nothing to thaw.
      if (!procfs::ReadStat(root)) return GoneRoot(root);
      return std::vector<int>{};
    }
    if (auto ok = SetFrozen(it->second.dir, false); !ok) return ok.error();
    std::vector<int> pids = ReadPids(it->second.dir + "/cgroup.procs");
    // Continue means the tree runs: a SIGSTOP sent meanwhile (the gate stops
    // a provider's exec that way) would otherwise outlive the thaw.
    for (int pid : pids) {
      if (auto st = procfs::ReadStat(pid); st && st->state == 'T') ::kill(pid, SIGCONT);
    }
    return pids;
  }

  Expected<std::vector<int>> Signal(int root, int sig) override {
    if (sig == SIGSTOP) return Stop(root);
    if (sig == SIGCONT) return Continue(root);
    // Frozen first, so the set is closed while `sig` goes out.
    auto frozen = Stop(root);
    auto it = groups_.find(root);
    if (!frozen && frozen.error().code == ESRCH && it != groups_.end()) {
      // The root died; what it left in its cgroup is still the provider's.
      if (auto ok = SetFrozen(it->second.dir, true); !ok) return ok.error();
      frozen = ReadPids(it->second.dir + "/cgroup.procs");
    }
    if (!frozen) return frozen.error();
    auto own = groups_.find(root);
    if (own == groups_.end()) {
      // A root inside another provider's cgroup (a child that became a
      // provider of its own when its parent went): Stop() froze that cgroup;
      // only the root's own subtree gets `sig`, then the cgroup is thawed.
      std::string dir = DirHolding(root);
      std::vector<int> sent;
      for (int pid : Subtree(table_, root)) {
        if (::kill(pid, sig) == 0) sent.push_back(pid);
        ::kill(pid, SIGCONT);
      }
      if (!dir.empty()) {
        if (auto ok = SetFrozen(dir, false); !ok) return ok.error();
      }
      return sent;
    }
    const std::string dir = own->second.dir;
    std::vector<int> sent;
    if (sig == SIGKILL && ::access((dir + "/cgroup.kill").c_str(), W_OK) == 0) {
      if (int err = procfs::WriteFile((dir + "/cgroup.kill").c_str(), "1"); err != 0) {
        return Errno(err, "write " + dir + "/cgroup.kill");
      }
      sent = *frozen;
    } else {
      // A frozen task keeps `sig` pending; SIGCONT undoes any SIGSTOP someone
      // else sent, so that each handler runs once thawed.
      for (int pid : *frozen) {
        if (::kill(pid, sig) == 0) sent.push_back(pid);
        ::kill(pid, SIGCONT);
      }
    }
    if (auto ok = SetFrozen(dir, false); !ok) return ok.error();
    return sent;
  }

 private:
  struct Group {
    std::string dir;
    uint64_t start_ticks = 0;
    bool enclosed = false;  // the whole subtree was seen inside once
  };

  // The cgroup of ours that holds `pid` ("" when none does).
  std::string DirHolding(int pid) const {
    for (const auto& [other, group] : groups_) {
      std::vector<int> in = ReadPids(group.dir + "/cgroup.procs");
      if (std::find(in.begin(), in.end(), pid) != in.end()) return group.dir;
    }
    return "";
  }

  static Error GoneRoot(int root) {
    return Error{ESRCH, "process " + std::to_string(root) + ": no such process"};
  }

  std::string GroupDir(int root, uint64_t start_ticks) const {
    return base_ + "/dormant-" + std::to_string(root) + "-" + std::to_string(start_ticks);
  }

  // The cgroup of `root`, made on first use.
  Expected<std::string> GroupOf(int root) {
    auto st = procfs::ReadStat(root);
    if (!st) return GoneRoot(root);
    auto it = groups_.find(root);
    if (it != groups_.end() && it->second.start_ticks == st->start_ticks) return it->second.dir;
    // The pid now names another process: the old cgroup may still hold what
    // the old provider left; keep it for thawing and removal.
    if (it != groups_.end()) retired_.push_back(it->second.dir);
    Group group{GroupDir(root, st->start_ticks), st->start_ticks, false};
    if (::mkdir(group.dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno(errno, "mkdir " + group.dir);
    }
    if (::access((group.dir + "/cgroup.freeze").c_str(), W_OK) != 0) {
      ::rmdir(group.dir.c_str());
      return Error{ENOSYS, group.dir + ": no cgroup.freeze (kernel before 5.2?)"};
    }
    groups_[root] = group;
    return group.dir;
  }

  // Moves `root`'s subtree into its cgroup. Children born inside stay inside,
  // so only processes forked by not-yet-moved parents need another walk, and
  // once a walk found nothing outside, every later descendant is born inside:
  // later calls need no walk at all (unless the root was moved out).
  Expected<std::string> Enclose(int root) {
    auto dir = GroupOf(root);
    if (!dir) return dir;
    const std::string procs_path = *dir + "/cgroup.procs";
    Group& group = groups_.at(root);
    if (group.enclosed) {
      std::vector<int> in = ReadPids(procs_path);
      if (std::find(in.begin(), in.end(), root) != in.end()) return dir;
    }
    procfs::Fd procs(::open(procs_path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) return Errno(errno, "open " + procs_path);
    std::unordered_set<int> tried;
    for (int round = 0; round < kMaxEncloseRounds; ++round) {
      std::vector<int> pids = Subtree(table_, root);
      if (pids.empty()) return GoneRoot(root);
      std::vector<int> in = ReadPids(procs_path);
      std::unordered_set<int> inside(in.begin(), in.end());
      bool moved = false;
      for (int pid : pids) {
        if (inside.count(pid) || !tried.insert(pid).second) continue;
        moved = true;
        std::string text = std::to_string(pid);
        // ESRCH (gone) and zombies, which cannot move, are not errors.
        if (::write(procs.get(), text.data(), text.size()) < 0 && errno != ESRCH &&
            errno != EINVAL) {
          return Errno(errno, "write " + text + " to " + procs_path);
        }
      }
      if (!moved) {
        group.enclosed = true;
        return dir;
      }
    }
    return Error{EAGAIN, "process " + std::to_string(root) + ": subtree kept growing"};
  }

  // Writes cgroup.freeze and waits for cgroup.events to agree.
  Expected<void> SetFrozen(const std::string& dir, bool frozen) {
    const std::string freeze = dir + "/cgroup.freeze";
    if (int err = procfs::WriteFile(freeze.c_str(), frozen ? "1" : "0"); err != 0) {
      return Errno(err, "write " + freeze);
    }
    const std::string events_path = dir + "/cgroup.events";
    procfs::Fd events(::open(events_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!events.valid()) return Errno(errno, "open " + events_path);
    const auto deadline = Clock::now() + kFreezeTimeout;
    char buf[256];
    for (;;) {
      ssize_t n = ::pread(events.get(), buf, sizeof buf - 1, 0);
      if (n < 0) return Errno(errno, "read " + events_path);
      if (EventValue(std::string_view(buf, static_cast<size_t>(n)), "frozen") == (frozen ? 1 : 0)) {
        return {};
      }
      if (Clock::now() > deadline) {
        return Error{ETIMEDOUT, dir + ": not " + (frozen ? "frozen" : "thawed") + " in time"};
      }
      // cgroup.events signals a change with POLLPRI; the short timeout covers
      // a change that landed between the read and the poll.
      pollfd pfd{events.get(), POLLPRI, 0};
      ::poll(&pfd, 1, 10);
    }
  }

  // Whether `dir` is empty (or gone) and could be removed; removes it.
  static bool RemoveIfEmpty(const std::string& dir) {
    std::string text;
    bool empty = procfs::ReadFile((dir + "/cgroup.events").c_str(), &text) != 0 ||
                 EventValue(text, "populated") == 0;
    return empty && (::rmdir(dir.c_str()) == 0 || errno == ENOENT);
  }

  // Forgets cgroups whose processes are all gone, and removes them.
  void Prune() {
    std::erase_if(groups_, [](const auto& entry) { return RemoveIfEmpty(entry.second.dir); });
    std::erase_if(retired_, RemoveIfEmpty);
  }

  ProcessTable& table_;
  std::string base_;
  std::map<int, Group> groups_;        // by root pid
  std::vector<std::string> retired_;  // cgroups of roots whose pid was reused
};

}  // namespace

Expected<std::unique_ptr<Freezer>> CreateCgroupFreezer(ProcessTable& table, std::string base_dir) {
  while (base_dir.size() > 1 && base_dir.back() == '/') base_dir.pop_back();
  struct statfs fs;
  if (::statfs(base_dir.c_str(), &fs) != 0) return Errno(errno, "statfs " + base_dir);
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    return Error{ENOTDIR, base_dir + ": not a cgroup v2 directory"};
  }
  if (::access(base_dir.c_str(), W_OK) != 0) return Errno(errno, "access " + base_dir);
  if (::access((base_dir + "/cgroup.procs").c_str(), W_OK) != 0) {
    return Errno(errno, "access " + base_dir + "/cgroup.procs");
  }
  return std::unique_ptr<Freezer>(std::make_unique<CgroupFreezer>(table, std::move(base_dir)));
}

Expected<std::string> OwnCgroupDir() {
  std::string text;
  if (int err = procfs::ReadFile("/proc/self/cgroup", &text); err != 0) {
    return Errno(err, "read /proc/self/cgroup");
  }
  std::string own;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + at, nl - at);
    if (line.starts_with("0::")) own = std::string(line.substr(3));
    at = nl + 1;
  }
  if (own.empty()) return Error{ENOSYS, "/proc/self/cgroup: no cgroup v2 hierarchy (no \"0::\" line)"};
  if (int err = procfs::ReadFile("/proc/self/mountinfo", &text); err != 0) {
    return Errno(err, "read /proc/self/mountinfo");
  }
  // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - TYPE SOURCE SUPER
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(at, nl - at);
    at = nl + 1;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::vector<std::string> fields;
    for (size_t f = 0; f < dash && fields.size() < 5;) {
      size_t sp = line.find(' ', f);
      if (sp == std::string::npos || sp > dash) sp = dash;
      fields.push_back(line.substr(f, sp - f));
      f = sp + 1;
    }
    if (fields.size() < 5) continue;
    const std::string& root = fields[3];
    const std::string& point = fields[4];
    // The mount shows the part of the hierarchy below `root`; our cgroup must lie in it.
    if (root != "/" && own != root && !own.starts_with(root + "/")) continue;
    std::string rel = root == "/" ? own : own.substr(root.size());
    if (rel == "/") rel.clear();
    return point + rel;
  }
  return Error{ENOSYS, "/proc/self/mountinfo: no cgroup2 mount holds our cgroup " + own};
}

Expected<void> CheckDelegated(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0) return Errno(errno, "statfs " + dir);
  if (fs.f_type != CGROUP2_SUPER_MAGIC) return Error{ENOTDIR, dir + ": not a cgroup v2 directory"};
  if (::access((dir + "/cgroup.procs").c_str(), W_OK) != 0) {
    return Errno(errno, "cannot move processes: " + dir + "/cgroup.procs");
  }
  const std::string probe = dir + "/dormant-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(errno, "cannot create a child cgroup: mkdir " + probe);
  }
  std::optional<Error> why;
  if (::access((probe + "/cgroup.freeze").c_str(), W_OK) != 0) {
    why = Error{ENOSYS, probe + ": no writable cgroup.freeze (kernel before 5.2?)"};
  } else if (::access((probe + "/cgroup.procs").c_str(), W_OK) != 0) {
    why = Errno(errno, "cannot move processes: " + probe + "/cgroup.procs");
  }
  ::rmdir(probe.c_str());
  if (why) return *why;
  return {};
}

}  // namespace dormant::platform
