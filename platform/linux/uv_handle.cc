// Small libuv helpers shared by the Linux idle and power sources.
#include "platform/linux/uv_handle.h"

#include <time.h>

#include <cstring>
#include <string>

namespace dormant::platform {

UvHandle<uv_timer_t> MakeTimer(uv_loop_t* loop, void* data) {
  auto* t = new uv_timer_t{};
  uv_timer_init(loop, t);  // cannot fail on Linux
  t->data = data;
  return UvHandle<uv_timer_t>::Adopt(t);
}

Expected<UvHandle<uv_poll_t>> MakePoll(uv_loop_t* loop, int fd, void* data) {
  auto* p = new uv_poll_t{};
  int r = uv_poll_init(loop, p, fd);
  if (r != 0) {
    delete p;  // never initialised: nothing to close
    return Error{-r, "uv_poll_init(fd " + std::to_string(fd) + "): " + uv_strerror(r)};
  }
  p->data = data;
  return UvHandle<uv_poll_t>::Adopt(p);
}

void Deferred::Init(uv_loop_t* loop, std::function<void()> fn) {
  timer_ = MakeTimer(loop, this);
  fn_ = std::move(fn);
}

void Deferred::Fire() {
  if (!timer_ || uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get()))) return;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Deferred*>(t->data);
        // Copied: the call may destroy `self` and with it fn_.
        std::function<void()> fn = self->fn_;
        fn();
      },
      0, 0);
}

static int64_t ClockMs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t MonotonicMs() { return ClockMs(CLOCK_MONOTONIC); }
int64_t BoottimeMs() { return ClockMs(CLOCK_BOOTTIME); }
int64_t RealtimeMs() { return ClockMs(CLOCK_REALTIME); }

}  // namespace dormant::platform
