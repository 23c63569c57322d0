// The Gate on a libuv loop, with a watchdog thread.
//
// The loop polls the listener: readable while a notification waits, hung up
// (libuv: UV_DISCONNECT) once every process under the filter is gone, and
// stays so: we must stop polling then or the loop spins. Receive() checks
// readability itself before the receiving ioctl, which would otherwise block.
//
// Why a thread: the app waits in the kernel for as long as nobody answers, and
// the loop may be what is slow (a blocking decide, a stalled disk write). The
// watchdog does not depend on the loop: it answers continue to anything held
// (deferred, or still being decided) longer than the limit, and when the loop
// has not received anything for that long while a notification waits, it
// receives and continues it itself. Who answers a request is settled under
// one mutex: whoever removes it from `held` answers it, exactly once.
#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "platform/gate.h"
#include "platform/linux/gate_notify.h"
#include "platform/linux/uv_handle.h"
#include "platform/unique_fd.h"

namespace dormant::platform {

using namespace gate_internal;

struct Gate::Impl {
  struct Held {
    uint64_t id;
    GateRequest::Kind kind;
    int64_t since_ms;  // CLOCK_MONOTONIC, when received
  };

  uv_loop_t* loop = nullptr;
  UniqueFd listener;
  GateDecider decide;
  int64_t watchdog_ms = 500;
  UvHandle<uv_poll_t> poll;
  bool finished = false;
  bool in_callback = false;
  bool close_requested = false;

  // Shared with the watchdog thread.
  mutable std::mutex mu;
  std::deque<Held> held;
  GateCounters counters;
  std::atomic<uint64_t> received{0};  // the loop's heartbeat
  UniqueFd stop;                      // eventfd: tells the watchdog to exit
  std::thread watchdog;

  // At most this many notifications per poll callback, so that a busy tree
  // cannot starve the rest of the loop.
  static constexpr int kBatch = 64;

  // --- the loop's side ------------------------------------------------------

  void OnReadable() {
    in_callback = true;
    for (int i = 0; i < kBatch && !close_requested && listener; ++i) {
      seccomp_notif n{};
      int r;
      {
        std::lock_guard<std::mutex> lock(mu);
        r = Receive(listener.get(), &n);
        if (r == 0) {
          received.fetch_add(1, std::memory_order_relaxed);
          // Held from now on: a decide that blocks is bounded too.
          held.push_back({n.id, IsExec(n.data.nr) ? GateRequest::Kind::kExec : GateRequest::Kind::kConnect,
                          MonotonicMs()});
        } else if (r == -ENOENT) {
          ++counters.stale;
        } else if (r != -EAGAIN && r != -EPIPE) {
          ++counters.errors;
        }
      }
      if (r == -ENOENT) continue;
      if (r == -EPIPE) Finish();
      if (r != 0) break;
      Handle(n);
    }
    in_callback = false;
    if (close_requested) DoClose();
  }

  void Handle(const seccomp_notif& n) {
    GateRequest req;
    ReadResult rr = ReadRequest(listener.get(), n, &req);
    if (rr == ReadResult::kStale) {
      if (Take(n.id)) Count(&GateCounters::stale);
      return;
    }
    if (rr != ReadResult::kRequest) {
      if (Take(n.id)) {
        Count(rr == ReadResult::kPass ? &GateCounters::passed : &GateCounters::errors);
        Reply(n.id, 0);
      }
      return;
    }
    Count(req.kind == GateRequest::Kind::kExec ? &GateCounters::exec : &GateCounters::connect);
    Verdict v = decide ? decide(req) : Verdict::kContinue;
    if (v == Verdict::kDefer) return;  // stays held, received time unchanged
    // Else answer it, unless the watchdog already has.
    if (Take(n.id)) Reply(n.id, v == Verdict::kRefuse ? RefusalErrno(req.kind) : 0);
  }

  // --- either side ----------------------------------------------------------

  // Removes `id` from `held`; true when it was there (the caller answers).
  bool Take(uint64_t id, GateRequest::Kind* kind = nullptr) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = held.begin(); it != held.end(); ++it) {
      if (it->id != id) continue;
      if (kind != nullptr) *kind = it->kind;
      held.erase(it);
      return true;
    }
    return false;
  }

  void Count(uint64_t GateCounters::*field, uint64_t by = 1) {
    std::lock_guard<std::mutex> lock(mu);
    counters.*field += by;
  }

  void Reply(uint64_t id, int error) {
    int r = Respond(listener.get(), id, error);
    if (r == -ENOENT) {
      Count(&GateCounters::stale);
    } else if (r < 0) {
      Count(&GateCounters::errors);
    } else {
      Count(error == 0 ? &GateCounters::continued : &GateCounters::refused);
    }
  }

  bool Answer(uint64_t id, Verdict v) {
    GateRequest::Kind kind;
    if (!listener || !Take(id, &kind)) return false;
    Reply(id, v == Verdict::kRefuse ? RefusalErrno(kind) : 0);
    return true;
  }

  // --- the watchdog thread --------------------------------------------------

  // Milliseconds until the oldest held request is due (-1: none held).
  int NextDueMs() {
    std::lock_guard<std::mutex> lock(mu);
    if (held.empty()) return -1;
    return static_cast<int>(std::max<int64_t>(0, held.front().since_ms + watchdog_ms - MonotonicMs()));
  }

  void ExpireHeld() {
    std::vector<uint64_t> due;
    {
      std::lock_guard<std::mutex> lock(mu);
      int64_t now = MonotonicMs();
      while (!held.empty() && held.front().since_ms + watchdog_ms <= now) {
        due.push_back(held.front().id);
        held.pop_front();
      }
      counters.watchdog += due.size();
    }
    for (uint64_t id : due) Reply(id, 0);
  }

  // The loop received nothing while a notification waited: continue what
  // waits, undecided.
  void TakeOverWaiting() {
    for (;;) {
      seccomp_notif n{};
      int r;
      {
        std::lock_guard<std::mutex> lock(mu);
        r = Receive(listener.get(), &n);
        if (r == 0) ++counters.watchdog;
      }
      if (r == -ENOENT) continue;
      if (r != 0) return;
      Reply(n.id, 0);
    }
  }

  // Waits for `stop` or `ms`; false when told to stop.
  bool Sleep(int ms) {
    pollfd p{stop.get(), POLLIN, 0};
    return ::poll(&p, 1, ms) == 0;
  }

  void WatchdogMain() {
    bool hung_up = false;
    for (;;) {
      pollfd p[2] = {{stop.get(), POLLIN, 0}, {listener.get(), POLLIN, 0}};
      int r = ::poll(p, hung_up ? 1 : 2, NextDueMs());
      if (r < 0 && errno != EINTR) return;
      if (p[0].revents != 0) return;
      ExpireHeld();
      if (hung_up) continue;
      if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        hung_up = (p[1].revents & POLLIN) == 0;
        if (hung_up) continue;
      }
      if ((p[1].revents & POLLIN) == 0) continue;
      // A notification waits. Give the loop the limit to receive something.
      uint64_t seen = received.load(std::memory_order_relaxed);
      int wait = static_cast<int>(watchdog_ms);
      if (int due = NextDueMs(); due >= 0 && due < wait) wait = due;
      if (!Sleep(wait)) return;
      ExpireHeld();
      if (received.load(std::memory_order_relaxed) == seen) TakeOverWaiting();
    }
  }

  void StopWatchdog() {
    if (!watchdog.joinable()) return;
    uint64_t one = 1;
    (void)!write(stop.get(), &one, sizeof one);
    watchdog.join();
  }

  // --- ending ---------------------------------------------------------------

  void Finish() {
    StopWatchdog();
    finished = true;
    {
      std::lock_guard<std::mutex> lock(mu);
      counters.stale += held.size();  // their callers are gone with the rest
      held.clear();
    }
    poll.reset();
    listener.reset();
  }

  void DoClose() {
    close_requested = false;
    StopWatchdog();
    if (listener) {
      std::deque<Held> left;
      {
        std::lock_guard<std::mutex> lock(mu);
        left.swap(held);
      }
      for (const auto& h : left) Reply(h.id, 0);
    }
    poll.reset();
    listener.reset();
  }
};

Gate::Gate(uv_loop_t* loop, int listener_fd, GateDecider decide, int watchdog_ms)
    : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->listener.reset(listener_fd);
  impl_->decide = std::move(decide);
  impl_->watchdog_ms = watchdog_ms < 0 ? 0 : watchdog_ms;
}

Gate::~Gate() {
  impl_->in_callback = false;  // destroyed: nothing runs after this
  Close();
}

Expected<void> Gate::Start() {
  Impl& g = *impl_;
  if (!g.listener) return Error{EBADF, "the gate's listener is closed"};
  if (g.poll) return {};
  g.stop.reset(eventfd(0, EFD_CLOEXEC));
  if (!g.stop) return Error{errno, std::string("eventfd: ") + std::strerror(errno)};
  auto poll = MakePoll(g.loop, g.listener.get(), &g);
  if (!poll) return poll.error();
  g.poll = std::move(*poll);
  int r = uv_poll_start(g.poll.get(), UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int status, int events) {
    auto* self = static_cast<Impl*>(p->data);
    if (self == nullptr) return;
    if (status < 0) {
      self->Count(&GateCounters::errors);
      self->Finish();
      return;
    }
    // A hang-up shows as readable and disconnected at once: Receive() tells
    // a waiting notification from none.
    if (events & (UV_READABLE | UV_DISCONNECT)) self->OnReadable();
  });
  if (r != 0) {
    g.poll.reset();
    return Error{-r, std::string("uv_poll_start(seccomp listener): ") + uv_strerror(r)};
  }
  g.watchdog = std::thread([&g] { g.WatchdogMain(); });
  return {};
}

bool Gate::Answer(uint64_t id, Verdict verdict) { return impl_->Answer(id, verdict); }

void Gate::Close() {
  if (impl_->in_callback) {
    impl_->close_requested = true;
    return;
  }
  impl_->DoClose();
}

bool Gate::finished() const { return impl_->finished; }

size_t Gate::held() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->held.size();
}

GateCounters Gate::counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counters;
}

}  // namespace dormant::platform
