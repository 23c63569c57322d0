// GNOME's idle monitor, with no polling. A persistent idle watch (fires when
// idle reaches idle_gate) says the user left; a one-shot user-active watch,
// added only then, says they are back. In between the user is known active, so
// a local timer re-reports 0 every active_refresh and the desktop is not asked.
#include <cerrno>

#include "platform/linux/bus_idle_source.h"
#include "platform/linux/idle_sources_linux.h"

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.gnome.Mutter.IdleMonitor";
constexpr const char* kPath = "/org/gnome/Mutter/IdleMonitor/Core";
constexpr const char* kInterface = "org.gnome.Mutter.IdleMonitor";

class GnomeIdleSource final : public BusIdleSource {
 public:
  explicit GnomeIdleSource(IdleTiming timing) : timing_(timing) {}
  ~GnomeIdleSource() override { Stop(); }

  std::string_view name() const override { return "gnome"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void SetEager(bool eager) override;
  void Stop() override;

 private:
  static int OnWatchFired(sd_bus_message* m, void* self, sd_bus_error*);
  static int OnActiveWatchAdded(sd_bus_message* m, void* self, sd_bus_error*);
  static int OnIdletime(sd_bus_message* m, void* self, sd_bus_error*);
  void EnterActive(enforcer::Duration idle_for);
  void EnterIdle(enforcer::Duration idle_for);
  void OnFailed() override { refresh_.reset(); }

  IdleTiming timing_;
  bool active_ = true;
  bool eager_ = false;
  void ArmActiveWatch();
  uint32_t idle_watch_ = 0;
  uint32_t active_watch_ = 0;
  BusSlot fired_slot_;
  BusSlot call_slot_;
  UvHandle<uv_timer_t> refresh_;
};

Expected<void> GnomeIdleSource::Start(uv_loop_t* loop, Listener* listener) {
  if (auto r = OpenBus(loop, listener, UvBus::Kind::kSession, kService); !r) return r;
  auto fail = [this](Error e) {
    Stop();
    return Error{e.code, "gnome: " + e.message};
  };
  auto slot = MatchSignal(bus_->get(), kPath, kInterface, "WatchFired",
                          &GnomeIdleSource::OnWatchFired, this);
  if (!slot) return fail(slot.error());
  fired_slot_ = std::move(*slot);
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_->get(), kService, kPath, kInterface, "AddIdleWatch", &err, &reply,
                             "t", static_cast<uint64_t>(timing_.idle_gate.count()));
  if (r < 0) {
    Error e = BusError("AddIdleWatch", &err, r);
    sd_bus_error_free(&err);
    return fail(e);
  }
  r = sd_bus_message_read(reply, "u", &idle_watch_);
  sd_bus_message_unref(reply);
  if (r <= 0) return fail(Error{EBADMSG, "AddIdleWatch: unexpected reply"});
  auto idle = CallForValue<uint64_t>(bus_->get(), kService, kPath, kInterface, "GetIdletime", 't',
                                     "GetIdletime");
  if (!idle) return fail(idle.error());
  refresh_ = MakeTimer(loop, this);
  enforcer::Duration now_idle(static_cast<int64_t>(*idle));
  if (now_idle >= timing_.idle_gate) {
    EnterIdle(now_idle);
  } else {
    EnterActive(now_idle);
  }
  return {};
}

void GnomeIdleSource::ArmActiveWatch() {
  if (active_watch_ == 0 && !call_slot_) {
    if (auto r = CallAsync(&call_slot_, kPath, kInterface, "AddUserActiveWatch",
                           &GnomeIdleSource::OnActiveWatchAdded);
        !r) {
      Fail(r.error());
    }
  }
}

void GnomeIdleSource::SetEager(bool eager) {
  if (eager == eager_) return;
  eager_ = eager;
  if (failed_ || !refresh_ || !active_) return;
  if (eager) {
    uv_timer_stop(refresh_.get());
    ArmActiveWatch();
  } else {
    uv_timer_start(
        refresh_.get(),
        [](uv_timer_t* t) {
          if (t->data != nullptr)
            static_cast<GnomeIdleSource*>(t->data)->Report(enforcer::Duration(0));
        },
        static_cast<uint64_t>(timing_.active_refresh.count()),
        static_cast<uint64_t>(timing_.active_refresh.count()));
  }
}

void GnomeIdleSource::EnterActive(enforcer::Duration idle_for) {
  active_ = true;
  if (eager_) {
    Report(idle_for);
    ArmActiveWatch();
    return;
  }
  uv_timer_start(
      refresh_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr)
          static_cast<GnomeIdleSource*>(t->data)->Report(enforcer::Duration(0));
      },
      static_cast<uint64_t>(timing_.active_refresh.count()),
      static_cast<uint64_t>(timing_.active_refresh.count()));
  Report(idle_for);
}

void GnomeIdleSource::EnterIdle(enforcer::Duration idle_for) {
  active_ = false;
  uv_timer_stop(refresh_.get());
  if (active_watch_ == 0 && !call_slot_) {
    if (auto r = CallAsync(&call_slot_, kPath, kInterface, "AddUserActiveWatch",
                           &GnomeIdleSource::OnActiveWatchAdded);
        !r) {
      return Fail(r.error());
    }
  }
  Report(idle_for);
}

int GnomeIdleSource::OnActiveWatchAdded(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<GnomeIdleSource*>(userdata);
  self->call_slot_.reset();
  if (self->FailOnError(m, "AddUserActiveWatch")) return 0;
  if (sd_bus_message_read(m, "u", &self->active_watch_) <= 0) {
    self->Fail(Error{EBADMSG, "gnome: AddUserActiveWatch: unexpected reply"});
    return 0;
  }
  // Input between the idle watch firing and this watch existing would go
  // unseen until the next input; one query closes that gap.
  if (auto r = self->CallAsync(&self->call_slot_, kPath, kInterface, "GetIdletime",
                               &GnomeIdleSource::OnIdletime);
      !r) {
    self->Fail(r.error());
  }
  return 0;
}

int GnomeIdleSource::OnIdletime(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<GnomeIdleSource*>(userdata);
  self->call_slot_.reset();
  if (self->FailOnError(m, "GetIdletime")) return 0;
  uint64_t ms = 0;
  if (sd_bus_message_read(m, "t", &ms) <= 0) return 0;
  if (!self->active_ && enforcer::Duration(static_cast<int64_t>(ms)) < self->timing_.idle_gate) {
    self->Report(enforcer::Duration(static_cast<int64_t>(ms)));
  }
  return 0;
}

int GnomeIdleSource::OnWatchFired(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<GnomeIdleSource*>(userdata);
  if (!SenderIs(m, self->owner_) || self->failed_) return 0;
  uint32_t id = 0;
  if (sd_bus_message_read(m, "u", &id) <= 0) return 0;
  if (id != 0 && id == self->active_watch_) {
    self->active_watch_ = 0;  // user-active watches fire once
    self->EnterActive(enforcer::Duration(0));
  } else if (id != 0 && id == self->idle_watch_ && self->active_) {
    self->EnterIdle(self->timing_.idle_gate);
  }
  return 0;
}

void GnomeIdleSource::Stop() {
  refresh_.reset();
  fired_slot_.reset();
  call_slot_.reset();
  if (bus_ && !failed_) {
    // Best effort, no reply wanted; flushed when the bus closes.
    for (uint32_t id : {idle_watch_, active_watch_}) {
      if (id != 0) {
        sd_bus_call_method_async(bus_->get(), nullptr, kService, kPath, kInterface, "RemoveWatch",
                                 nullptr, nullptr, "u", id);
      }
    }
  }
  idle_watch_ = active_watch_ = 0;
  CloseBus();
}

}  // namespace

std::unique_ptr<IdleSource> NewGnomeIdleSource(IdleTiming timing) {
  return std::make_unique<GnomeIdleSource>(timing);
}

}  // namespace dormant::platform
