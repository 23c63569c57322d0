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
//
// With a journal, the watchdog thread also beats (GateJournal::Beat) at least
// every kBeatMs, and the loop before each receive. A stopped dormant stops
// both; the guardian then stands in (see launcher/guardian.cc). Two readers
// must never both try to receive: SECCOMP_IOCTL_NOTIF_RECV blocks when the
// other took the notification first, and we would hold `mu` until the next
// one. So before receiving we beat, then look at the guardian's flag; the
// guardian sets its flag, then looks at our beat (both sequentially
// consistent): at least one of us sees the other, and backs off. The loop
// backs off by stopping its poll for kYieldMs; the guardian hands back at its
// next look once we beat.
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
  GateJournal* journal = nullptr;
  int64_t watchdog_ms = 500;
  UvHandle<uv_poll_t> poll;
  UvHandle<uv_timer_t> yield;  // restarts the poll after the guardian stood in
  bool finished = false;
  bool in_callback = false;
  bool close_requested = false;

  // Shared with the watchdog thread.
  mutable std::mutex mu;
  std::deque<Held> held;
  GateCounters counters;
  std::atomic<uint64_t> received{0};  // the loop's heartbeat
  UniqueFd stop;                      // eventfd: tells the watchdog to exit
  UniqueFd wake;                      // eventfd: something is held now
  std::atomic<bool> watchdog_idle{false};  // it sleeps with no deadline
  std::thread watchdog;

  // At most this many notifications per poll callback, so that a busy tree
  // cannot starve the rest of the loop.
  static constexpr int kBatch = 64;
  // How long the loop leaves the listener to a guardian standing in before it
  // looks again (the guardian hands back within its own check period).
  static constexpr int kYieldMs = 50;

  // Beats, then says whether the guardian stands in (see the top of the file).
  bool GuardianServing() {
    if (journal == nullptr) return false;
    journal->Beat();
    return journal->guardian_serving();
  }

  int StartPolling() {
    return uv_poll_start(poll.get(), UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int status, int events) {
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
  }

  // The guardian is answering: stop polling (the listener stays readable) and
  // look again shortly.
  void Yield() {
    uv_poll_stop(poll.get());
    uv_timer_start(yield.get(), [](uv_timer_t* t) {
      auto* self = static_cast<Impl*>(t->data);
      if (self != nullptr && self->poll && self->StartPolling() != 0) self->Count(&GateCounters::errors);
    }, kYieldMs, 0);
  }

  // --- the loop's side ------------------------------------------------------

  void OnReadable() {
    in_callback = true;
    for (int i = 0; i < kBatch && !close_requested && listener; ++i) {
      if (GuardianServing()) {
        Yield();
        break;
      }
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
          if (journal != nullptr) journal->Add(n.id);
        } else if (r == -ENOENT) {
          ++counters.stale;
        } else if (r != -EAGAIN && r != -EPIPE) {
          ++counters.errors;
        }
      }
      if (r == 0 && watchdog_idle.exchange(false)) {
        // It may have missed this notification (we received it before it
        // looked) and now needs a deadline.
        uint64_t one = 1;
        (void)!write(wake.get(), &one, sizeof one);
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
      if (journal != nullptr) journal->Remove(id);
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
        if (journal != nullptr) journal->Remove(held.front().id);
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
      if (GuardianServing()) return;
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

  // The deadline to sleep to; with nothing held, none, and the loop wakes us
  // when it holds something (see OnReadable).
  int IdleOrDue() {
    int due = NextDueMs();
    if (due >= 0) return due;
    watchdog_idle = true;
    due = NextDueMs();  // held meanwhile? then the loop may not have seen the flag
    if (due >= 0) watchdog_idle = false;
    return due;
  }

  void WatchdogMain() {
    bool hung_up = false;
    bool watching = false;  // a notification waited at the last look
    uint64_t seen = 0;      // the loop's heartbeat then
    int64_t stuck_at = 0;   // the loop is stuck if the heartbeat has not moved by then
    for (;;) {
      if (journal != nullptr) journal->Beat();  // this process runs
      int timeout = IdleOrDue();
      if (watching) {
        int left = static_cast<int>(std::max<int64_t>(0, stuck_at - MonotonicMs()));
        timeout = timeout < 0 ? left : std::min(timeout, left);
      }
      if (journal != nullptr) timeout = timeout < 0 ? GateJournal::kBeatMs : std::min(timeout, GateJournal::kBeatMs);
      // The listener stays readable while we watch it: poll it only to learn
      // that something waits, or we would spin.
      bool poll_listener = !hung_up && !watching;
      pollfd p[3] = {{stop.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}, {listener.get(), POLLIN, 0}};
      int r = ::poll(p, poll_listener ? 3 : 2, timeout);
      watchdog_idle = false;
      if (r < 0 && errno != EINTR) return;
      if (p[0].revents != 0) return;
      if (p[1].revents != 0) {
        uint64_t v;
        (void)!read(wake.get(), &v, sizeof v);
      }
      ExpireHeld();
      if (hung_up) continue;
      pollfd l{listener.get(), POLLIN, 0};
      ::poll(&l, 1, 0);
      if ((l.revents & POLLIN) == 0 && (l.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
        hung_up = true;
        watching = false;
        continue;
      }
      int64_t now = MonotonicMs();
      uint64_t heartbeat = received.load(std::memory_order_relaxed);
      if (!watching) {
        // Woken by traffic: look again once the limit has passed, not at
        // every notification (each wake-up costs the tree a CPU it may need).
        if (poll_listener && (p[2].revents & POLLIN) != 0) {
          watching = true;
          seen = heartbeat;
          stuck_at = now + watchdog_ms;
        }
        continue;
      }
      if (now < stuck_at) continue;  // woken early, for a held deadline
      if ((l.revents & POLLIN) != 0 && heartbeat == seen) {
        TakeOverWaiting();  // something waits and the loop took nothing for the whole limit
        watching = false;
      } else if ((l.revents & POLLIN) != 0) {
        seen = heartbeat;  // busy, and the loop keeps up
        stuck_at = now + watchdog_ms;
      } else {
        watching = false;  // quiet: wait on the listener again
      }
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
      for (const auto& h : held) {
        if (journal != nullptr) journal->Remove(h.id);
      }
      held.clear();
    }
    yield.reset();
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
      for (const auto& h : left) {
        if (journal != nullptr) journal->Remove(h.id);
        Reply(h.id, 0);
      }
    }
    yield.reset();
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
  g.wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!g.stop || !g.wake) return Error{errno, std::string("eventfd: ") + std::strerror(errno)};
  auto poll = MakePoll(g.loop, g.listener.get(), &g);
  if (!poll) return poll.error();
  g.poll = std::move(*poll);
  g.yield = MakeTimer(g.loop, &g);
  if (int r = g.StartPolling(); r != 0) {
    g.poll.reset();
    g.yield.reset();
    return Error{-r, std::string("uv_poll_start(seccomp listener): ") + uv_strerror(r)};
  }
  if (g.journal != nullptr) g.journal->Beat();  // before the guardian can find us silent
  g.watchdog = std::thread([&g] { g.WatchdogMain(); });
  return {};
}

void Gate::SetJournal(GateJournal* journal) { impl_->journal = journal; }

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
  GateCounters c = impl_->counters;
  if (impl_->journal != nullptr) c.guardian = impl_->journal->guardian_answers();
  return c;
}

}  // namespace dormant::platform
