// KDE's screen saver service answers GetSessionIdleTime (milliseconds) but
// offers no watch over D-Bus, so it is polled: lazy_poll normally, eager_poll
// while providers wait to be resumed. Each poll is one asynchronous call.
#include <cerrno>

#include "platform/linux/bus_idle_source.h"
#include "platform/linux/idle_sources_linux.h"

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.freedesktop.ScreenSaver";
constexpr const char* kPath = "/org/freedesktop/ScreenSaver";
constexpr const char* kInterface = "org.freedesktop.ScreenSaver";

class KdeIdleSource final : public BusIdleSource {
 public:
  explicit KdeIdleSource(IdleTiming timing) : timing_(timing) {}
  ~KdeIdleSource() override { Stop(); }

  std::string_view name() const override { return "kde"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void SetEager(bool eager) override;
  void Stop() override;

 private:
  static int OnIdleTime(sd_bus_message* m, void* self, sd_bus_error*);
  void Poll();
  void Schedule();
  void OnFailed() override { timer_.reset(); }

  IdleTiming timing_;
  bool eager_ = false;
  BusSlot call_slot_;
  UvHandle<uv_timer_t> timer_;
};

Expected<void> KdeIdleSource::Start(uv_loop_t* loop, Listener* listener) {
  if (auto r = OpenBus(loop, listener, UvBus::Kind::kSession, kService); !r) return r;
  // One synchronous call proves the service implements the method.
  auto idle = CallForValue<uint32_t>(bus_->get(), kService, kPath, kInterface, "GetSessionIdleTime",
                                     'u', "GetSessionIdleTime");
  if (!idle) {
    Stop();
    return Error{idle.error().code, "kde: " + idle.error().message};
  }
  timer_ = MakeTimer(loop, this);
  Schedule();
  Report(enforcer::Duration(*idle));
  return {};
}

void KdeIdleSource::Poll() {
  if (failed_ || call_slot_) return;  // one call in flight at most
  if (auto r = CallAsync(&call_slot_, kPath, kInterface, "GetSessionIdleTime",
                         &KdeIdleSource::OnIdleTime);
      !r) {
    Fail(r.error());
  }
}

int KdeIdleSource::OnIdleTime(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<KdeIdleSource*>(userdata);
  self->call_slot_.reset();
  if (self->FailOnError(m, "GetSessionIdleTime")) return 0;
  uint32_t ms = 0;
  if (sd_bus_message_read(m, "u", &ms) <= 0) {
    self->Fail(Error{EBADMSG, "kde: GetSessionIdleTime: unexpected reply"});
    return 0;
  }
  self->Schedule();
  self->Report(enforcer::Duration(ms));
  return 0;
}

void KdeIdleSource::Schedule() {
  auto period = eager_ ? timing_.eager_poll : timing_.lazy_poll;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<KdeIdleSource*>(t->data)->Poll();
      },
      static_cast<uint64_t>(period.count()), 0);
}

void KdeIdleSource::SetEager(bool eager) {
  if (eager == eager_) return;
  eager_ = eager;
  if (timer_ && !failed_ && !call_slot_) Schedule();
}

void KdeIdleSource::Stop() {
  timer_.reset();
  call_slot_.reset();
  CloseBus();
}

}  // namespace

std::unique_ptr<IdleSource> NewKdeIdleSource(IdleTiming timing) {
  return std::make_unique<KdeIdleSource>(timing);
}

}  // namespace dormant::platform
