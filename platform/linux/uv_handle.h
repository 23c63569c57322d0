// Owning handles for libuv. libuv frees nothing itself: a handle's memory must
// outlive its close callback, so UvHandle::reset() closes the handle and the
// close callback deletes it. The owner may therefore be destroyed at once,
// even from inside one of the handle's own callbacks.
#pragma once

#include <uv.h>

#include <functional>
#include <utility>

#include "enforcer/expected.h"

namespace dormant::platform {

template <typename T>
class UvHandle {
 public:
  UvHandle() = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~UvHandle() { reset(); }

  /// Takes a handle that a uv_*_init call has initialised.
  static UvHandle Adopt(T* h) {
    UvHandle u;
    u.h_ = h;
    return u;
  }
  T* get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  /// Closes the handle; its callbacks run no more.
  void reset() {
    if (h_ == nullptr) return;
    auto* h = reinterpret_cast<uv_handle_t*>(std::exchange(h_, nullptr));
    h->data = nullptr;
    uv_close(h, [](uv_handle_t* c) { delete reinterpret_cast<T*>(c); });
  }

 private:
  T* h_ = nullptr;
};

/// A timer whose `data` is `data`.
UvHandle<uv_timer_t> MakeTimer(uv_loop_t* loop, void* data);
/// A poll handle on `fd` whose `data` is `data`.
Expected<UvHandle<uv_poll_t>> MakePoll(uv_loop_t* loop, int fd, void* data);

/// Runs a function from a fresh loop callback (a zero timer), so the function
/// may destroy whatever asked for it: used to report failures, after which a
/// listener commonly deletes the source.
class Deferred {
 public:
  void Init(uv_loop_t* loop, std::function<void()> fn);
  /// Schedules one run; further calls before it runs are folded into it.
  void Fire();
  void Reset() { timer_.reset(); }

 private:
  UvHandle<uv_timer_t> timer_;
  std::function<void()> fn_;
};

/// Milliseconds on CLOCK_MONOTONIC / CLOCK_BOOTTIME / CLOCK_REALTIME.
int64_t MonotonicMs();
int64_t BoottimeMs();
int64_t RealtimeMs();

}  // namespace dormant::platform
