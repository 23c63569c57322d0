// XScreenSaver idle time, polled every lazy_poll while the user matters
// little. While eager (providers wait to be resumed) an XSync alarm on the
// server's IDLETIME counter, armed to fire when the counter falls (input),
// wakes us at once with no polling; servers without the counter are polled
// every eager_poll instead. Each poll is one round trip to the X server. The
// connection fd is watched too, so a server that goes away is noticed at once
// rather than at the next poll.
//
// Xlib treats a lost connection as fatal (it calls exit()) unless an IO error
// exit handler returns instead, and writing to a dead server raises SIGPIPE;
// every Xlib call here therefore runs with SIGPIPE blocked and a handler that
// only records the loss.
#include <X11/Xlib.h>
#include <X11/extensions/scrnsaver.h>
#include <X11/extensions/sync.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "platform/linux/idle_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {
namespace {

// Blocks SIGPIPE for its scope and swallows one raised meanwhile.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

int QuietIOError(Display*) { return 0; }

class X11IdleSource final : public IdleSource {
 public:
  X11IdleSource(std::string display, IdleTiming timing)
      : display_(std::move(display)), timing_(timing) {}
  ~X11IdleSource() override { Stop(); }

  std::string_view name() const override { return "x11"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void SetEager(bool eager) override;
  void Stop() override;

 private:
  static void OnIOError(Display*, void* self) {
    static_cast<X11IdleSource*>(self)->io_error_ = true;
  }
  void Poll();
  void Schedule();
  void FindIdleCounter();
  void ArmAlarm(unsigned long idle_ms);
  void OnReadable();
  void Fail(Error why);

  std::string display_;
  IdleTiming timing_;
  Listener* listener_ = nullptr;
  Display* dpy_ = nullptr;
  XScreenSaverInfo* info_ = nullptr;
  bool io_error_ = false;
  int sync_event_base_ = -1;
  XSyncCounter idle_counter_ = None;
  XSyncAlarm alarm_ = None;
  bool eager_ = false;
  bool failed_ = false;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_poll_t> poll_;
  Deferred fail_report_;
  Error fail_why_;
};

Expected<void> X11IdleSource::Start(uv_loop_t* loop, Listener* listener) {
  std::string name = display_;
  if (name.empty()) {
    const char* env = std::getenv("DISPLAY");
    if (env == nullptr || *env == '\0') return Error{ENOENT, "x11: DISPLAY is not set"};
    name = env;
  }
  SigpipeGuard guard;
  XSetIOErrorHandler(&QuietIOError);
  dpy_ = XOpenDisplay(name.c_str());
  if (dpy_ == nullptr) return Error{ECONNREFUSED, "x11: cannot open display " + name};
  XSetIOErrorExitHandler(dpy_, &X11IdleSource::OnIOError, this);
  int event_base = 0;
  int error_base = 0;
  if (!XScreenSaverQueryExtension(dpy_, &event_base, &error_base)) {
    Stop();
    return Error{ENOTSUP, "x11: display " + name + " lacks the MIT-SCREEN-SAVER extension"};
  }
  info_ = XScreenSaverAllocInfo();
  if (timing_.use_xsync) FindIdleCounter();
  listener_ = listener;
  failed_ = false;
  auto poll = MakePoll(loop, ConnectionNumber(dpy_), this);
  if (!poll) {
    Stop();
    return Error{poll.error().code, "x11: " + poll.error().message};
  }
  poll_ = std::move(*poll);
  uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int, int) {
    if (p->data != nullptr) static_cast<X11IdleSource*>(p->data)->OnReadable();
  });
  timer_ = MakeTimer(loop, this);
  fail_report_.Init(loop, [this] {
    Listener* l = listener_;
    Error why = fail_why_;
    l->OnIdleSourceFailed(why);  // last: the listener may delete us
  });
  Poll();
  return {};
}

void X11IdleSource::FindIdleCounter() {
  int event_base = 0;
  int error_base = 0;
  int major = 0;
  int minor = 0;
  if (!XSyncQueryExtension(dpy_, &event_base, &error_base) ||
      !XSyncInitialize(dpy_, &major, &minor))
    return;
  int n = 0;
  XSyncSystemCounter* counters = XSyncListSystemCounters(dpy_, &n);
  for (int i = 0; i < n; ++i) {
    if (std::strcmp(counters[i].name, "IDLETIME") == 0) idle_counter_ = counters[i].counter;
  }
  if (counters != nullptr) XSyncFreeSystemCounterList(counters);
  if (idle_counter_ != None) sync_event_base_ = event_base;
}

// Fires once when IDLETIME falls below its value now: the next input.
void X11IdleSource::ArmAlarm(unsigned long idle_ms) {
  XSyncAlarmAttributes attr{};
  attr.trigger.counter = idle_counter_;
  attr.trigger.value_type = XSyncAbsolute;
  XSyncIntToValue(&attr.trigger.wait_value, idle_ms > 1 ? static_cast<int>(idle_ms - 1) : 1);
  attr.trigger.test_type = XSyncNegativeTransition;
  XSyncIntToValue(&attr.delta, 0);
  attr.events = True;
  unsigned long mask = XSyncCACounter | XSyncCAValueType | XSyncCAValue | XSyncCATestType |
                       XSyncCADelta | XSyncCAEvents;
  if (alarm_ == None) {
    alarm_ = XSyncCreateAlarm(dpy_, mask, &attr);
  } else {
    XSyncChangeAlarm(dpy_, alarm_, mask, &attr);
  }
  XFlush(dpy_);
}

void X11IdleSource::Poll() {
  if (failed_ || dpy_ == nullptr) return;
  Status ok;
  {
    SigpipeGuard guard;
    ok = XScreenSaverQueryInfo(dpy_, DefaultRootWindow(dpy_), info_);
    if (ok && eager_ && idle_counter_ != None) ArmAlarm(info_->idle);
  }
  if (io_error_ || !ok) return Fail(Error{ECONNRESET, "x11: lost the X server connection"});
  Schedule();
  listener_->OnIdleSample(enforcer::Duration(info_->idle));
}

void X11IdleSource::Schedule() {
  auto period = eager_ && idle_counter_ == None ? timing_.eager_poll : timing_.lazy_poll;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<X11IdleSource*>(t->data)->Poll();
      },
      static_cast<uint64_t>(period.count()), 0);
}

void X11IdleSource::SetEager(bool eager) {
  if (eager == eager_) return;
  eager_ = eager;
  if (!timer_ || failed_) return;
  if (eager && idle_counter_ != None) {
    Poll();  // arms the alarm
  } else {
    Schedule();
  }
}

void X11IdleSource::OnReadable() {
  char byte;
  ssize_t n = recv(ConnectionNumber(dpy_), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    return Fail(Error{ECONNRESET, "x11: the X server closed the connection"});
  }
  bool input = false;
  {
    SigpipeGuard guard;
    while (!io_error_ && XPending(dpy_) > 0) {
      XEvent ev;
      XNextEvent(dpy_, &ev);
      if (sync_event_base_ >= 0 && ev.type == sync_event_base_ + XSyncAlarmNotify) input = true;
    }
  }
  if (io_error_) return Fail(Error{ECONNRESET, "x11: lost the X server connection"});
  if (input && eager_) Poll();
}

void X11IdleSource::Fail(Error why) {
  if (failed_) return;
  failed_ = true;
  fail_why_ = std::move(why);
  timer_.reset();
  poll_.reset();
  fail_report_.Fire();
}

void X11IdleSource::Stop() {
  timer_.reset();
  poll_.reset();
  fail_report_.Reset();
  if (info_ != nullptr) {
    XFree(info_);
    info_ = nullptr;
  }
  if (dpy_ != nullptr) {
    SigpipeGuard guard;
    if (alarm_ != None && !io_error_ && !failed_) XSyncDestroyAlarm(dpy_, alarm_);
    alarm_ = None;
    XCloseDisplay(dpy_);
    dpy_ = nullptr;
  }
}

}  // namespace

std::unique_ptr<IdleSource> NewX11IdleSource(std::string display, IdleTiming timing) {
  return std::make_unique<X11IdleSource>(std::move(display), timing);
}

}  // namespace dormant::platform
