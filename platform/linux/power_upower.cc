// UPower's OnBattery, pushed as PropertiesChanged; reported on change only.
#include <cstring>

#include "platform/linux/power_sources_linux.h"

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.freedesktop.UPower";
constexpr const char* kPath = "/org/freedesktop/UPower";
constexpr const char* kInterface = "org.freedesktop.UPower";

class UpowerPowerSource final : public BusPowerSource {
 public:
  ~UpowerPowerSource() override { Stop(); }

  std::string_view name() const override { return "upower"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void Stop() override {
    props_slot_.reset();
    CloseBus();
  }

 private:
  static int OnProperties(sd_bus_message* m, void* self, sd_bus_error*);
  void Set(bool on_battery) {
    if (on_battery_ == static_cast<int>(on_battery)) return;
    on_battery_ = on_battery;
    listener_->OnBatteryChanged(on_battery);
  }

  int on_battery_ = -1;  // unknown
  BusSlot props_slot_;
};

Expected<void> UpowerPowerSource::Start(uv_loop_t* loop, Listener* listener) {
  if (auto r = OpenBus(loop, listener, kService); !r) return r;
  auto props = MatchPropertiesChanged(bus_->get(), kPath, &UpowerPowerSource::OnProperties, this);
  if (!props) {
    Stop();
    return Error{props.error().code, "upower: " + props.error().message};
  }
  props_slot_ = std::move(*props);
  int on_battery = 0;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int r = sd_bus_get_property_trivial(bus_->get(), kService, kPath, kInterface, "OnBattery", &err,
                                      'b', &on_battery);
  if (r < 0) {
    Error e = BusError("upower: reading OnBattery", &err, r);
    sd_bus_error_free(&err);
    Stop();
    return e;
  }
  Set(on_battery != 0);
  return {};
}

int UpowerPowerSource::OnProperties(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<UpowerPowerSource*>(userdata);
  if (!SenderIs(m, self->owner_) || self->failed_) return 0;
  const char* interface = nullptr;
  if (sd_bus_message_read(m, "s", &interface) <= 0 || std::strcmp(interface, kInterface) != 0)
    return 0;
  if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0) return 0;
  while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
    const char* prop = nullptr;
    if (sd_bus_message_read(m, "s", &prop) <= 0) return 0;
    if (std::strcmp(prop, "OnBattery") == 0) {
      int on_battery = 0;
      if (sd_bus_message_read(m, "v", "b", &on_battery) > 0) self->Set(on_battery != 0);
    } else {
      sd_bus_message_skip(m, "v");
    }
    sd_bus_message_exit_container(m);
  }
  return 0;
}

}  // namespace

std::unique_ptr<PowerSource> NewUpowerPowerSource() {
  return std::make_unique<UpowerPowerSource>();
}

}  // namespace dormant::platform
