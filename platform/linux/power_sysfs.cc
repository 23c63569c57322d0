// AC/battery from /sys/class/power_supply, for machines without UPower.
// sysfs attributes raise no inotify events, so the directory is re-read every
// `poll`; reading a handful of tiny files costs microseconds.
#include <dirent.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "platform/linux/power_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {
namespace {

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

class SysfsPowerSource final : public PowerSource {
 public:
  SysfsPowerSource(std::string root, enforcer::Duration poll)
      : root_(std::move(root)), poll_(poll) {}
  ~SysfsPowerSource() override { Stop(); }

  std::string_view name() const override { return "sysfs"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void Stop() override { timer_.reset(); }

 private:
  Expected<bool> OnBattery() const;
  void Poll();

  std::string root_;
  enforcer::Duration poll_;
  std::string dir_;
  Listener* listener_ = nullptr;
  int on_battery_ = -1;
  UvHandle<uv_timer_t> timer_;
};

Expected<void> SysfsPowerSource::Start(uv_loop_t* loop, Listener* listener) {
  if (root_.empty()) {
    const char* env = std::getenv("DORMANT_SYSFS_ROOT");
    root_ = env != nullptr && *env != '\0' ? env : "/sys";
  }
  dir_ = root_ + "/class/power_supply";
  auto now = OnBattery();
  if (!now) return now.error();
  listener_ = listener;
  timer_ = MakeTimer(loop, this);
  uint64_t every = static_cast<uint64_t>(poll_.count());
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<SysfsPowerSource*>(t->data)->Poll();
      },
      every, every);
  on_battery_ = *now;
  listener_->OnBatteryChanged(*now);
  return {};
}

// On battery when some supply can say it is online and none is.
Expected<bool> SysfsPowerSource::OnBattery() const {
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) {
    int e = errno;
    return Error{e, "sysfs: opendir(" + dir_ + "): " + std::strerror(e)};
  }
  bool any_external = false;
  bool any_online = false;
  while (dirent* entry = readdir(d)) {
    if (entry->d_name[0] == '.') continue;
    std::string supply = dir_ + "/" + entry->d_name;
    if (ReadLine(supply + "/type") == "Battery") continue;
    std::string online = ReadLine(supply + "/online");
    if (online.empty()) continue;
    any_external = true;
    if (online == "1") any_online = true;
  }
  closedir(d);
  return any_external && !any_online;
}

void SysfsPowerSource::Poll() {
  auto now = OnBattery();
  if (!now || static_cast<int>(*now) == on_battery_) return;  // a vanished dir keeps the last state
  on_battery_ = *now;
  listener_->OnBatteryChanged(*now);
}

class ClockPowerSource final : public PowerSource {
 public:
  ClockPowerSource(enforcer::Duration every, enforcer::Duration threshold)
      : every_(every), detector_(threshold) {}
  ~ClockPowerSource() override { Stop(); }

  std::string_view name() const override { return "clock"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override {
    listener_ = listener;
    detector_.Sample(BoottimeMs(), MonotonicMs());
    timer_ = MakeTimer(loop, this);
    uint64_t every = static_cast<uint64_t>(every_.count());
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          if (t->data != nullptr) static_cast<ClockPowerSource*>(t->data)->Check();
        },
        every, every);
    return {};
  }
  void Stop() override { timer_.reset(); }

 private:
  void Check() {
    if (auto slept = detector_.Sample(BoottimeMs(), MonotonicMs())) {
      listener_->OnPrepareForSleep(false);
      listener_->OnWake(*slept);
    }
  }

  enforcer::Duration every_;
  SleepGapDetector detector_;
  Listener* listener_ = nullptr;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace

std::unique_ptr<PowerSource> NewSysfsPowerSource(std::string sysfs_root, enforcer::Duration poll) {
  return std::make_unique<SysfsPowerSource>(std::move(sysfs_root), poll);
}

std::unique_ptr<PowerSource> NewClockPowerSource(enforcer::Duration every,
                                                 enforcer::Duration threshold) {
  return std::make_unique<ClockPowerSource>(every, threshold);
}

}  // namespace dormant::platform
