// logind's session idle hint. The desktop sets IdleHint after its own idle
// delay (often minutes), so this source is coarse: "active" until the desktop
// says otherwise, then idle since IdleSinceHintMonotonic. Changes arrive as
// PropertiesChanged; nothing is polled.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "platform/linux/bus_idle_source.h"
#include "platform/linux/idle_sources_linux.h"

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.freedesktop.login1";
constexpr const char* kManagerPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";
constexpr const char* kSession = "org.freedesktop.login1.Session";

int64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

class LogindIdleSource final : public BusIdleSource {
 public:
  explicit LogindIdleSource(IdleTiming timing) : timing_(timing) {}
  ~LogindIdleSource() override { Stop(); }

  std::string_view name() const override { return "logind"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void Stop() override;

 private:
  static int OnPropertiesChanged(sd_bus_message* m, void* self, sd_bus_error*);
  Expected<void> ReadAndReport();
  void OnFailed() override { refresh_.reset(); }

  IdleTiming timing_;
  std::string session_path_;
  BusSlot props_slot_;
  UvHandle<uv_timer_t> refresh_;
};

}  // namespace

/// The object path of this process's logind session.
Expected<std::string> LogindSessionPath(sd_bus* bus) {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  const char* id = std::getenv("XDG_SESSION_ID");
  int r = id != nullptr && *id != '\0'
              ? sd_bus_call_method(bus, kService, kManagerPath, kManager, "GetSession", &err,
                                   &reply, "s", id)
              : sd_bus_call_method(bus, kService, kManagerPath, kManager, "GetSessionByPID", &err,
                                   &reply, "u", static_cast<uint32_t>(getpid()));
  if (r < 0) {
    Error e = BusError(id != nullptr ? std::string("GetSession(") + id + ")" : "GetSessionByPID",
                       &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  const char* path = nullptr;
  r = sd_bus_message_read(reply, "o", &path);
  std::string out = r > 0 && path != nullptr ? path : "";
  sd_bus_message_unref(reply);
  if (out.empty()) return Error{EBADMSG, "GetSession: unexpected reply"};
  return out;
}

namespace {

Expected<void> LogindIdleSource::Start(uv_loop_t* loop, Listener* listener) {
  if (auto r = OpenBus(loop, listener, UvBus::Kind::kSystem, kService); !r) return r;
  auto fail = [this](const Error& e) {
    Stop();
    return Error{e.code, "logind: " + e.message};
  };
  auto path = LogindSessionPath(bus_->get());
  if (!path) return fail(path.error());
  session_path_ = *path;
  auto slot = MatchPropertiesChanged(bus_->get(), session_path_.c_str(),
                                     &LogindIdleSource::OnPropertiesChanged, this);
  if (!slot) return fail(slot.error());
  props_slot_ = std::move(*slot);
  refresh_ = MakeTimer(loop, this);
  if (auto r = ReadAndReport(); !r) return fail(r.error());
  return {};
}

Expected<void> LogindIdleSource::ReadAndReport() {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int hint = 0;
  uint64_t since_usec = 0;
  int r = sd_bus_get_property_trivial(bus_->get(), kService, session_path_.c_str(), kSession,
                                      "IdleHint", &err, 'b', &hint);
  if (r >= 0) {
    r = sd_bus_get_property_trivial(bus_->get(), kService, session_path_.c_str(), kSession,
                                    "IdleSinceHintMonotonic", &err, 't', &since_usec);
  }
  if (r < 0) {
    Error e = BusError("reading IdleHint of " + session_path_, &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  if (!hint) {
    uint64_t every = static_cast<uint64_t>(timing_.active_refresh.count());
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(refresh_.get()))) {
      uv_timer_start(
          refresh_.get(),
          [](uv_timer_t* t) {
            if (t->data != nullptr)
              static_cast<LogindIdleSource*>(t->data)->Report(enforcer::Duration(0));
          },
          every, every);
    }
    Report(enforcer::Duration(0));
    return {};
  }
  uv_timer_stop(refresh_.get());
  int64_t idle_usec = MonotonicUsec() - static_cast<int64_t>(since_usec);
  Report(enforcer::Duration(idle_usec > 0 ? idle_usec / 1000 : 0));
  return {};
}

int LogindIdleSource::OnPropertiesChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<LogindIdleSource*>(userdata);
  if (!SenderIs(m, self->owner_) || self->failed_) return 0;
  const char* interface = nullptr;
  if (sd_bus_message_read(m, "s", &interface) <= 0 || std::string(interface) != kSession) return 0;
  if (auto r = self->ReadAndReport(); !r)
    self->Fail(Error{r.error().code, "logind: " + r.error().message});
  return 0;
}

void LogindIdleSource::Stop() {
  refresh_.reset();
  props_slot_.reset();
  CloseBus();
}

}  // namespace

std::unique_ptr<IdleSource> NewLogindIdleSource(IdleTiming timing) {
  return std::make_unique<LogindIdleSource>(timing);
}

}  // namespace dormant::platform
