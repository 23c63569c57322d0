// logind tells of a coming sleep with PrepareForSleep(true) and waits for
// delay inhibitors (at most InhibitDelayMaxSec) before sleeping: holding one
// lets providers be suspended first. The lock is the fd Inhibit() returns;
// closing it releases it. It is taken again after every wake.
//
// The lock screen shows as the session's Lock/Unlock signals (logind asks the
// desktop to lock) and its LockedHint property (the desktop says it locked).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/linux/power_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.freedesktop.login1";
constexpr const char* kManagerPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";
constexpr const char* kSession = "org.freedesktop.login1.Session";

class LogindPowerSource final : public BusPowerSource {
 public:
  ~LogindPowerSource() override { Stop(); }

  std::string_view name() const override { return "logind"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void ReleaseSleepLock() override;
  bool HoldsSleepLock() const override { return lock_fd_ >= 0; }
  void Stop() override;

 private:
  static int OnPrepareForSleep(sd_bus_message* m, void* self, sd_bus_error*);
  static int OnLock(sd_bus_message* m, void* self, sd_bus_error*);
  static int OnUnlock(sd_bus_message* m, void* self, sd_bus_error*);
  static int OnSessionProperties(sd_bus_message* m, void* self, sd_bus_error*);
  Expected<void> TakeSleepLock();
  Expected<void> WatchSession();
  void SetLocked(bool locked);

  int lock_fd_ = -1;
  std::string session_path_;
  int locked_ = -1;  // unknown
  int64_t sleep_boot_ms_ = 0;
  int64_t sleep_mono_ms_ = 0;
  bool sleeping_ = false;
  BusSlot sleep_slot_;
  BusSlot lock_slot_;
  BusSlot unlock_slot_;
  BusSlot props_slot_;
};

Expected<void> LogindPowerSource::Start(uv_loop_t* loop, Listener* listener) {
  if (auto r = OpenBus(loop, listener, kService); !r) return r;
  auto fail = [this](const Error& e) {
    Stop();
    return Error{e.code, "logind: " + e.message};
  };
  auto slot = MatchSignal(bus_->get(), kManagerPath, kManager, "PrepareForSleep",
                          &LogindPowerSource::OnPrepareForSleep, this);
  if (!slot) return fail(slot.error());
  sleep_slot_ = std::move(*slot);
  if (auto r = TakeSleepLock(); !r) return fail(r.error());
  // Without a session (a system service, say) sleep still works; lock does not.
  if (auto r = WatchSession(); !r) session_path_.clear();
  return {};
}

Expected<void> LogindPowerSource::TakeSleepLock() {
  if (lock_fd_ >= 0) return {};
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_->get(), kService, kManagerPath, kManager, "Inhibit", &err, &reply,
                             "ssss", "sleep", "dormant", "suspend providers before sleep", "delay");
  if (r < 0) {
    Error e = BusError("Inhibit(sleep, delay)", &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  int fd = -1;
  r = sd_bus_message_read_basic(reply, 'h', &fd);
  // The message owns its fd: keep a duplicate.
  int own = r > 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
  sd_bus_message_unref(reply);
  if (own < 0) return Error{EBADMSG, "Inhibit(sleep, delay): no fd in the reply"};
  lock_fd_ = own;
  return {};
}

void LogindPowerSource::ReleaseSleepLock() {
  if (lock_fd_ < 0) return;
  close(lock_fd_);
  lock_fd_ = -1;
}

Expected<void> LogindPowerSource::WatchSession() {
  auto path = LogindSessionPath(bus_->get());
  if (!path) return path.error();
  session_path_ = *path;
  const char* p = session_path_.c_str();
  auto lock = MatchSignal(bus_->get(), p, kSession, "Lock", &LogindPowerSource::OnLock, this);
  if (!lock) return lock.error();
  lock_slot_ = std::move(*lock);
  auto unlock = MatchSignal(bus_->get(), p, kSession, "Unlock", &LogindPowerSource::OnUnlock, this);
  if (!unlock) return unlock.error();
  unlock_slot_ = std::move(*unlock);
  auto props =
      MatchPropertiesChanged(bus_->get(), p, &LogindPowerSource::OnSessionProperties, this);
  if (!props) return props.error();
  props_slot_ = std::move(*props);
  int hint = 0;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int r = sd_bus_get_property_trivial(bus_->get(), kService, p, kSession, "LockedHint", &err, 'b',
                                      &hint);
  sd_bus_error_free(&err);
  if (r >= 0) SetLocked(hint != 0);
  return {};
}

void LogindPowerSource::SetLocked(bool locked) {
  if (locked_ == static_cast<int>(locked)) return;
  locked_ = locked;
  listener_->OnLockChanged(locked);
}

int LogindPowerSource::OnPrepareForSleep(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<LogindPowerSource*>(userdata);
  if (!SenderIs(m, self->owner_) || self->failed_) return 0;
  int start = 0;
  if (sd_bus_message_read_basic(m, 'b', &start) <= 0) return 0;
  if (start) {
    self->sleeping_ = true;
    self->sleep_boot_ms_ = BoottimeMs();
    self->sleep_mono_ms_ = MonotonicMs();
    self->listener_->OnPrepareForSleep(true);
    return 0;
  }
  int64_t slept = 0;
  if (self->sleeping_) {
    slept = (BoottimeMs() - self->sleep_boot_ms_) - (MonotonicMs() - self->sleep_mono_ms_);
    if (slept < 0) slept = 0;
  }
  self->sleeping_ = false;
  if (auto r = self->TakeSleepLock(); !r) {
    self->Fail(Error{r.error().code, "logind: after wake: " + r.error().message});
  }
  self->listener_->OnPrepareForSleep(false);
  self->listener_->OnWake(enforcer::Duration(slept));
  return 0;
}

int LogindPowerSource::OnLock(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<LogindPowerSource*>(userdata);
  if (SenderIs(m, self->owner_) && !self->failed_) self->SetLocked(true);
  return 0;
}

int LogindPowerSource::OnUnlock(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<LogindPowerSource*>(userdata);
  if (SenderIs(m, self->owner_) && !self->failed_) self->SetLocked(false);
  return 0;
}

int LogindPowerSource::OnSessionProperties(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<LogindPowerSource*>(userdata);
  if (!SenderIs(m, self->owner_) || self->failed_) return 0;
  const char* interface = nullptr;
  if (sd_bus_message_read(m, "s", &interface) <= 0 || std::strcmp(interface, kSession) != 0)
    return 0;
  if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0) return 0;
  while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
    const char* prop = nullptr;
    if (sd_bus_message_read(m, "s", &prop) <= 0) return 0;
    if (std::strcmp(prop, "LockedHint") == 0) {
      int hint = 0;
      if (sd_bus_message_read(m, "v", "b", &hint) > 0) self->SetLocked(hint != 0);
    } else {
      sd_bus_message_skip(m, "v");
    }
    sd_bus_message_exit_container(m);
  }
  return 0;
}

void LogindPowerSource::Stop() {
  sleep_slot_.reset();
  lock_slot_.reset();
  unlock_slot_.reset();
  props_slot_.reset();
  ReleaseSleepLock();
  CloseBus();
}

}  // namespace

std::unique_ptr<PowerSource> NewLogindPowerSource() {
  return std::make_unique<LogindPowerSource>();
}

}  // namespace dormant::platform
