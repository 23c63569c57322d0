// Terminal idleness as `w` computes it: the kernel updates a tty's access time
// when input is read from it (to 8-second granularity), so now minus atime is
// how long nobody typed there. A stat() per poll; a terminal that vanishes
// (the session hung up) is a failure.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "platform/linux/idle_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {

/// This process's controlling terminal ("" when it has none).
std::string ControllingTerminal() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 2));
  std::string state;
  long ppid = 0, pgrp = 0, session = 0, tty_nr = 0;
  fields >> state >> ppid >> pgrp >> session >> tty_nr;
  if (tty_nr == 0) return "";
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat st {};
    if (isatty(fd) && fstat(fd, &st) == 0 && st.st_rdev == static_cast<dev_t>(tty_nr)) {
      const char* name = ttyname(fd);
      if (name != nullptr) return name;
    }
  }
  unsigned major = gnu_dev_major(static_cast<dev_t>(tty_nr));
  unsigned minor = gnu_dev_minor(static_cast<dev_t>(tty_nr));
  if (major >= 136 && major <= 143)
    return "/dev/pts/" + std::to_string((major - 136) * 256 + minor);
  if (major == 4 && minor < 64) return "/dev/tty" + std::to_string(minor);
  return "";
}

namespace {

class TtyIdleSource final : public IdleSource {
 public:
  TtyIdleSource(std::string path, IdleTiming timing) : path_(std::move(path)), timing_(timing) {}
  ~TtyIdleSource() override { Stop(); }

  std::string_view name() const override { return "tty"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void SetEager(bool eager) override;
  void Stop() override {
    timer_.reset();
    fail_report_.Reset();
  }

 private:
  Expected<enforcer::Duration> Idle() const;
  void Poll();
  void Schedule();

  std::string path_;
  IdleTiming timing_;
  Listener* listener_ = nullptr;
  bool eager_ = false;
  UvHandle<uv_timer_t> timer_;
  Deferred fail_report_;
  Error fail_why_;
};

Expected<void> TtyIdleSource::Start(uv_loop_t* loop, Listener* listener) {
  if (path_.empty()) path_ = ControllingTerminal();
  if (path_.empty()) return Error{ENOTTY, "tty: this process has no controlling terminal"};
  auto idle = Idle();
  if (!idle) return idle.error();
  listener_ = listener;
  timer_ = MakeTimer(loop, this);
  fail_report_.Init(loop, [this] {
    Listener* l = listener_;
    Error why = fail_why_;
    l->OnIdleSourceFailed(why);  // last: the listener may delete us
  });
  Schedule();
  listener_->OnIdleSample(*idle);
  return {};
}

Expected<enforcer::Duration> TtyIdleSource::Idle() const {
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) {
    int e = errno;
    return Error{e, "tty: stat(" + path_ + "): " + std::strerror(e)};
  }
  int64_t atime_ms = static_cast<int64_t>(st.st_atim.tv_sec) * 1000 + st.st_atim.tv_nsec / 1000000;
  int64_t idle = RealtimeMs() - atime_ms;
  return enforcer::Duration(idle > 0 ? idle : 0);
}

void TtyIdleSource::Poll() {
  auto idle = Idle();
  if (!idle) {
    fail_why_ = idle.error();
    timer_.reset();
    fail_report_.Fire();
    return;
  }
  Schedule();
  listener_->OnIdleSample(*idle);
}

void TtyIdleSource::Schedule() {
  auto period = eager_ ? timing_.eager_poll : timing_.lazy_poll;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<TtyIdleSource*>(t->data)->Poll();
      },
      static_cast<uint64_t>(period.count()), 0);
}

void TtyIdleSource::SetEager(bool eager) {
  if (eager == eager_) return;
  eager_ = eager;
  if (timer_) Schedule();
}

class ManualIdleSource final : public IdleSource {
 public:
  std::string_view name() const override { return "manual"; }
  Expected<void> Start(uv_loop_t*, Listener*) override { return {}; }
  void Stop() override {}
};

}  // namespace

std::unique_ptr<IdleSource> NewTtyIdleSource(std::string tty_path, IdleTiming timing) {
  return std::make_unique<TtyIdleSource>(std::move(tty_path), timing);
}

std::unique_ptr<IdleSource> NewManualIdleSource() { return std::make_unique<ManualIdleSource>(); }

}  // namespace dormant::platform
