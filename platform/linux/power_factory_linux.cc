// "auto" runs every power source that starts here. Two of them can see the
// same wake (logind's PrepareForSleep(false), then the clock gap at its next
// tick): a wake within kWakeFold of the previous one is folded into it. A part
// that fails is dropped and logged; a failed upower is replaced by sysfs.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <vector>

#include "platform/linux/power_sources_linux.h"
#include "platform/linux/uv_handle.h"

namespace dormant::platform {
namespace {

constexpr int64_t kWakeFoldMs = 30000;

class AutoPowerSource final : public PowerSource {
 public:
  ~AutoPowerSource() override { Stop(); }

  std::string_view name() const override { return "auto"; }
  Expected<void> Start(uv_loop_t* loop, Listener* listener) override;
  void ReleaseSleepLock() override {
    for (auto& p : parts_) p->source->ReleaseSleepLock();
  }
  bool HoldsSleepLock() const override {
    for (const auto& p : parts_) {
      if (p->source->HoldsSleepLock()) return true;
    }
    return false;
  }
  void Stop() override { parts_.clear(); }

 private:
  // Forwards one part's reports, folding repeated wakes.
  class Part : public Listener {
   public:
    Part(AutoPowerSource* owner, std::unique_ptr<PowerSource> source)
        : owner_(owner), source(std::move(source)) {}
    void OnPrepareForSleep(bool sleeping) override {
      if (sleeping || !owner_->WakeIsRepeat(false)) owner_->listener_->OnPrepareForSleep(sleeping);
    }
    void OnWake(enforcer::Duration slept) override {
      if (!owner_->WakeIsRepeat(true)) owner_->listener_->OnWake(slept);
    }
    void OnBatteryChanged(bool on_battery) override {
      owner_->listener_->OnBatteryChanged(on_battery);
    }
    void OnLockChanged(bool locked) override { owner_->listener_->OnLockChanged(locked); }
    void OnPowerSourceFailed(const Error& why) override { owner_->PartFailed(this, why); }

    AutoPowerSource* owner_;
    std::unique_ptr<PowerSource> source;
  };

  bool TryStart(std::unique_ptr<PowerSource> source);
  bool WakeIsRepeat(bool commit);
  void PartFailed(Part* part, const Error& why);

  uv_loop_t* loop_ = nullptr;
  Listener* listener_ = nullptr;
  std::vector<std::unique_ptr<Part>> parts_;
  int64_t last_wake_boot_ms_ = -kWakeFoldMs * 2;
};

Expected<void> AutoPowerSource::Start(uv_loop_t* loop, Listener* listener) {
  loop_ = loop;
  listener_ = listener;
  TryStart(NewLogindPowerSource());
  if (!TryStart(NewUpowerPowerSource())) TryStart(NewSysfsPowerSource());
  if (!TryStart(NewClockPowerSource())) return Error{EIO, "power: no source started"};
  return {};
}

bool AutoPowerSource::TryStart(std::unique_ptr<PowerSource> source) {
  auto part = std::make_unique<Part>(this, std::move(source));
  Part* raw = part.get();
  parts_.push_back(std::move(part));
  if (auto r = raw->source->Start(loop_, raw); !r) {
    spdlog::info("power: {} unavailable: {}", raw->source->name(), r.error().message);
    parts_.pop_back();
    return false;
  }
  spdlog::info("power: using {}", raw->source->name());
  return true;
}

// logind reports PrepareForSleep(false) then OnWake: the pair is one wake.
bool AutoPowerSource::WakeIsRepeat(bool commit) {
  int64_t now = BoottimeMs();
  bool repeat = now - last_wake_boot_ms_ < kWakeFoldMs;
  if (commit) {
    if (!repeat) last_wake_boot_ms_ = now;
    return repeat;
  }
  return repeat;
}

void AutoPowerSource::PartFailed(Part* part, const Error& why) {
  spdlog::warn("power: {} failed: {}", part->source->name(), why.message);
  bool was_upower = part->source->name() == "upower";
  for (auto it = parts_.begin(); it != parts_.end(); ++it) {
    if (it->get() == part) {
      parts_.erase(it);  // reported from a fresh loop callback: safe to delete
      break;
    }
  }
  if (was_upower) TryStart(NewSysfsPowerSource());
}

}  // namespace

Expected<std::unique_ptr<PowerSource>> CreatePowerSource(const std::string& name) {
  if (name == "logind") return NewLogindPowerSource();
  if (name == "upower") return NewUpowerPowerSource();
  if (name == "sysfs") return NewSysfsPowerSource();
  if (name == "clock") return NewClockPowerSource();
  if (name == "auto") return std::unique_ptr<PowerSource>(std::make_unique<AutoPowerSource>());
  return Error{EINVAL, "unknown power source \"" + name +
                           "\" (expected logind, upower, sysfs, clock or auto)"};
}

}  // namespace dormant::platform
