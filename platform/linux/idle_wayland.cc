// ext-idle-notify-v1: the compositor sends `idled` once the user has been idle
// for idle_gate and `resumed` at the next input, so nothing is polled. While
// active (no `idled` pending) a local timer re-reports 0 every active_refresh.
// The protocol has no idle-time query: at start the user is taken as active
// until `idled` arrives (at most idle_gate later).
#include <wayland-client.h>

#include <cerrno>
#include <cstring>

#include "ext-idle-notify-v1-client-protocol.h"
#include "platform/linux/idle_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {
namespace {

class WaylandIdleSource final : public IdleSource {
 public:
  explicit WaylandIdleSource(IdleTiming timing) : timing_(timing) {}
  ~WaylandIdleSource() override { Stop(); }

  std::string_view name() const override { return "wayland"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void Stop() override;

  // Protocol callbacks (public for the listener tables below).
  static void OnGlobal(void* self, wl_registry* registry, uint32_t id, const char* interface,
                       uint32_t version);
  static void OnGlobalRemove(void*, wl_registry*, uint32_t) {}
  static void OnIdled(void* self, ext_idle_notification_v1*);
  static void OnResumed(void* self, ext_idle_notification_v1*);

 private:
  void OnReadable(int status, int events);
  void EnterActive();
  void Fail(Error why);
  void Report(enforcer::Duration d) {
    if (!failed_) listener_->OnIdleSample(d);
  }

  IdleTiming timing_;
  Listener* listener_ = nullptr;
  wl_display* display_ = nullptr;
  wl_registry* registry_ = nullptr;
  wl_seat* seat_ = nullptr;
  ext_idle_notifier_v1* notifier_ = nullptr;
  ext_idle_notification_v1* notification_ = nullptr;
  bool failed_ = false;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> refresh_;
  Deferred fail_report_;
  Error fail_why_;
};

const wl_registry_listener kRegistryListener = {&WaylandIdleSource::OnGlobal,
                                                &WaylandIdleSource::OnGlobalRemove};
const ext_idle_notification_v1_listener kNotificationListener = {&WaylandIdleSource::OnIdled,
                                                                 &WaylandIdleSource::OnResumed};

void WaylandIdleSource::OnGlobal(void* userdata, wl_registry* registry, uint32_t id,
                                 const char* interface, uint32_t) {
  auto* self = static_cast<WaylandIdleSource*>(userdata);
  if (std::strcmp(interface, ext_idle_notifier_v1_interface.name) == 0 &&
      self->notifier_ == nullptr) {
    self->notifier_ = static_cast<ext_idle_notifier_v1*>(
        wl_registry_bind(registry, id, &ext_idle_notifier_v1_interface, 1));
  } else if (std::strcmp(interface, wl_seat_interface.name) == 0 && self->seat_ == nullptr) {
    self->seat_ = static_cast<wl_seat*>(wl_registry_bind(registry, id, &wl_seat_interface, 1));
  }
}

Expected<void> WaylandIdleSource::Start(uv_loop_t* loop, Listener* listener) {
  display_ = wl_display_connect(nullptr);  // $WAYLAND_DISPLAY
  if (display_ == nullptr) {
    return Error{ECONNREFUSED,
                 std::string("wayland: cannot connect to the compositor: ") + std::strerror(errno)};
  }
  registry_ = wl_display_get_registry(display_);
  wl_registry_add_listener(registry_, &kRegistryListener, this);
  if (wl_display_roundtrip(display_) < 0) {
    Stop();
    return Error{ECONNRESET, "wayland: the compositor closed the connection"};
  }
  if (notifier_ == nullptr || seat_ == nullptr) {
    Stop();
    return Error{ENOTSUP, "wayland: the compositor offers no ext-idle-notify-v1 (or no seat)"};
  }
  notification_ = ext_idle_notifier_v1_get_idle_notification(
      notifier_, static_cast<uint32_t>(timing_.idle_gate.count()), seat_);
  ext_idle_notification_v1_add_listener(notification_, &kNotificationListener, this);
  wl_display_flush(display_);
  listener_ = listener;
  failed_ = false;
  auto poll = MakePoll(loop, wl_display_get_fd(display_), this);
  if (!poll) {
    Stop();
    return Error{poll.error().code, "wayland: " + poll.error().message};
  }
  poll_ = std::move(*poll);
  uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int status, int events) {
    if (p->data != nullptr) static_cast<WaylandIdleSource*>(p->data)->OnReadable(status, events);
  });
  refresh_ = MakeTimer(loop, this);
  fail_report_.Init(loop, [this] {
    Listener* l = listener_;
    Error why = fail_why_;
    l->OnIdleSourceFailed(why);  // last: the listener may delete us
  });
  EnterActive();
  return {};
}

void WaylandIdleSource::OnReadable(int status, int events) {
  if (status < 0 || wl_display_dispatch(display_) < 0) {
    return Fail(Error{ECONNRESET, "wayland: lost the compositor connection"});
  }
  if ((events & UV_DISCONNECT) != 0 && wl_display_get_error(display_) != 0) {
    return Fail(Error{ECONNRESET, "wayland: lost the compositor connection"});
  }
  wl_display_flush(display_);
}

void WaylandIdleSource::EnterActive() {
  uint64_t every = static_cast<uint64_t>(timing_.active_refresh.count());
  uv_timer_start(
      refresh_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr)
          static_cast<WaylandIdleSource*>(t->data)->Report(enforcer::Duration(0));
      },
      every, every);
  Report(enforcer::Duration(0));
}

void WaylandIdleSource::OnIdled(void* userdata, ext_idle_notification_v1*) {
  auto* self = static_cast<WaylandIdleSource*>(userdata);
  uv_timer_stop(self->refresh_.get());
  self->Report(self->timing_.idle_gate);
}

void WaylandIdleSource::OnResumed(void* userdata, ext_idle_notification_v1*) {
  static_cast<WaylandIdleSource*>(userdata)->EnterActive();
}

void WaylandIdleSource::Fail(Error why) {
  if (failed_) return;
  failed_ = true;
  fail_why_ = std::move(why);
  poll_.reset();
  refresh_.reset();
  fail_report_.Fire();
}

void WaylandIdleSource::Stop() {
  poll_.reset();
  refresh_.reset();
  fail_report_.Reset();
  if (notification_ != nullptr) ext_idle_notification_v1_destroy(notification_);
  if (notifier_ != nullptr) ext_idle_notifier_v1_destroy(notifier_);
  if (seat_ != nullptr) wl_seat_destroy(seat_);
  if (registry_ != nullptr) wl_registry_destroy(registry_);
  notification_ = nullptr;
  notifier_ = nullptr;
  seat_ = nullptr;
  registry_ = nullptr;
  if (display_ != nullptr) {
    wl_display_flush(display_);
    wl_display_disconnect(display_);
    display_ = nullptr;
  }
}

}  // namespace

std::unique_ptr<IdleSource> NewWaylandIdleSource(IdleTiming timing) {
  return std::make_unique<WaylandIdleSource>(timing);
}

}  // namespace dormant::platform
