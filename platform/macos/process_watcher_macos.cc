// kqueue EVFILT_PROC (macOS). A kqueue hears only the pids registered with
// it, and NOTE_FORK names the parent but not the child, so on a fork we list
// the parent's children and register the new ones. A child that forks and
// exits before we list it is missed; the periodic walk is the safety net.
// Not built on Linux.
#include <sys/event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "platform/macos/libproc_util.h"
#include "platform/process_watcher.h"

namespace dormant::platform {
namespace {

class KqueueWatcher final : public ProcessWatcher {
 public:
  explicit KqueueWatcher(int kq) : kq_(kq) {}
  ~KqueueWatcher() override { close(kq_); }
  KqueueWatcher(const KqueueWatcher&) = delete;
  KqueueWatcher& operator=(const KqueueWatcher&) = delete;

  int fd() const override { return kq_; }

  Expected<void> Watch(int pid) override {
    struct kevent change;
    EV_SET(&change, pid, EVFILT_PROC, EV_ADD | EV_CLEAR, NOTE_FORK | NOTE_EXEC | NOTE_EXIT, 0, nullptr);
    if (kevent(kq_, &change, 1, nullptr, 0, nullptr) != 0) {
      return Error{errno, "kevent(EVFILT_PROC, " + std::to_string(pid) + "): " + std::strerror(errno)};
    }
    watched_.insert(pid);
    return {};
  }

  std::vector<ProcEvent> Drain(bool* lost) override {
    if (lost) *lost = false;
    std::vector<ProcEvent> events;
    struct kevent got[64];
    const timespec zero{0, 0};
    for (;;) {
      int n = kevent(kq_, nullptr, 0, got, 64, &zero);
      if (n <= 0) break;
      for (int i = 0; i < n; ++i) Handle(got[i], &events);
    }
    return events;
  }

 private:
  void Handle(const struct kevent& ev, std::vector<ProcEvent>* out) {
    const int pid = static_cast<int>(ev.ident);
    if (ev.fflags & NOTE_FORK) {
      for (int child : macos::ChildPids(pid)) {
        if (watched_.count(child) || !Watch(child).ok()) continue;
        out->push_back({ProcEvent::Kind::kFork, child, pid});
      }
    }
    if (ev.fflags & NOTE_EXEC) out->push_back({ProcEvent::Kind::kExec, pid, 0});
    if (ev.fflags & NOTE_EXIT) {
      out->push_back({ProcEvent::Kind::kExit, pid, 0});
      watched_.erase(pid);  // the kernel drops the registration itself
    }
  }

  int kq_;
  std::unordered_set<int> watched_;
};

}  // namespace

Expected<std::unique_ptr<ProcessWatcher>> CreateProcessWatcher() {
  int kq = kqueue();
  if (kq < 0) return Error{errno, std::string("kqueue: ") + std::strerror(errno)};
  return std::unique_ptr<ProcessWatcher>(std::make_unique<KqueueWatcher>(kq));
}

}  // namespace dormant::platform
