// Power sources against real components: logind and UPower served by
// python3-dbusmock on a private dbus-daemon, a sysfs tree in a temporary
// directory, and the real clocks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "platform/linux/power_sources_linux.h"
#include "platform/power_source.h"
#include "tests/idle_test_env.h"

namespace dormant::platform {
namespace {

using namespace std::chrono_literals;
using testing::DbusDaemon;
using testing::DbusMock;
using testing::PowerRecorder;
using testing::RunUntil;
using testing::ScopedEnv;

constexpr const char* kLogind = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";
constexpr const char* kSessionPath = "/org/freedesktop/login1/session/c1";
constexpr const char* kSession = "org.freedesktop.login1.Session";

void CloseLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(loop), 0);
}

// The delay inhibitors logind (the mock) holds now: "what/who/mode" each.
std::vector<std::string> Inhibitors(sd_bus* bus) {
  std::vector<std::string> out;
  sd_bus_message* reply = nullptr;
  if (sd_bus_call_method(bus, kLogind, kLogindPath, kManager, "ListInhibitors", nullptr, &reply,
                         "") < 0) {
    return {"<call failed>"};
  }
  sd_bus_message_enter_container(reply, 'a', "(ssssuu)");
  const char *what, *who, *why, *mode;
  uint32_t uid, pid;
  while (sd_bus_message_read(reply, "(ssssuu)", &what, &who, &why, &mode, &uid, &pid) > 0) {
    out.push_back(std::string(what) + "/" + who + "/" + mode);
  }
  sd_bus_message_unref(reply);
  return out;
}

class LogindPower : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bus_.ok());
    logind_ = std::make_unique<DbusMock>(bus_, true, kLogind,
                                         std::vector<std::string>{"--template", "logind"});
    ASSERT_TRUE(logind_->ok());
    ASSERT_GE(sd_bus_call_method(bus_.client(), kLogind, kLogindPath, "org.freedesktop.DBus.Mock",
                                 "AddSession", nullptr, nullptr, "ssusb", "c1", "seat0",
                                 static_cast<uint32_t>(getuid()), "tester", 1),
              0);
    uv_loop_init(&loop_);
  }
  void TearDown() override {
    source_.reset();
    logind_.reset();
    CloseLoop(&loop_);
  }

  DbusDaemon bus_;
  ScopedEnv system_{"DBUS_SYSTEM_BUS_ADDRESS", bus_.address()};
  ScopedEnv session_id_{"XDG_SESSION_ID", std::string("c1")};
  std::unique_ptr<DbusMock> logind_;
  uv_loop_t loop_;
  std::unique_ptr<PowerSource> source_;
  PowerRecorder rec_;
};

TEST_F(LogindPower, SleepHoldsDelayInhibitorUntilReleasedThenRetakesIt) {
  source_ = NewLogindPowerSource();
  auto started = source_->Start(&loop_, &rec_);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_TRUE(source_->HoldsSleepLock());
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Inhibitors(bus_.client()).size() == 1; }));
  EXPECT_EQ(Inhibitors(bus_.client())[0], "sleep/dormant/delay");

  ASSERT_TRUE(testing::MockEmitBool(bus_.client(), kLogind, kLogindPath, kManager,
                                    "PrepareForSleep", true));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.Saw("sleep 1"); }));
  // Still held: logind waits for it before sleeping.
  EXPECT_TRUE(source_->HoldsSleepLock());
  EXPECT_EQ(Inhibitors(bus_.client()).size(), 1u);
  source_->ReleaseSleepLock();
  EXPECT_FALSE(source_->HoldsSleepLock());
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Inhibitors(bus_.client()).empty(); }));

  ASSERT_TRUE(testing::MockEmitBool(bus_.client(), kLogind, kLogindPath, kManager,
                                    "PrepareForSleep", false));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.Saw("wake"); }));
  EXPECT_TRUE(rec_.Saw("sleep 0"));
  EXPECT_TRUE(source_->HoldsSleepLock());
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Inhibitors(bus_.client()).size() == 1; }));
}

TEST_F(LogindPower, LockAndUnlockSignalsAndLockedHint) {
  source_ = NewLogindPowerSource();
  ASSERT_TRUE(source_->Start(&loop_, &rec_));
  ASSERT_EQ(rec_.events, std::vector<std::string>{"lock 0"});  // the state at start
  ASSERT_TRUE(testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Lock"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.events.back() == "lock 1"; }));
  ASSERT_TRUE(testing::CallVoid(bus_.client(), kLogind, kSessionPath, kSession, "Unlock"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.events.back() == "lock 0"; }));
  ASSERT_GE(sd_bus_call_method(bus_.client(), kLogind, kSessionPath, kSession, "SetLockedHint",
                               nullptr, nullptr, "b", 1),
            0);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.events.back() == "lock 1"; }));
  EXPECT_EQ(rec_.events, (std::vector<std::string>{"lock 0", "lock 1", "lock 0", "lock 1"}));
}

TEST_F(LogindPower, LogindLeavingIsAFailure) {
  source_ = NewLogindPowerSource();
  ASSERT_TRUE(source_->Start(&loop_, &rec_));
  logind_->Kill();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return rec_.Saw("failed"); }));
  EXPECT_NE(rec_.failure.find("login1"), std::string::npos) << rec_.failure;
}

TEST(UpowerPower, OnBatteryFollowsTheProperty) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv system("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
  DbusMock upower(bus, true, "org.freedesktop.UPower", {"--template", "upower"});
  ASSERT_TRUE(upower.ok());
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewUpowerPowerSource();
  PowerRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(rec.events, std::vector<std::string>{"battery 0"});
  ASSERT_TRUE(testing::MockUpdateBool(bus.client(), "org.freedesktop.UPower",
                                      "/org/freedesktop/UPower", "org.freedesktop.UPower",
                                      "OnBattery", true));
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.events.back() == "battery 1"; }));
  ASSERT_TRUE(testing::MockUpdateBool(bus.client(), "org.freedesktop.UPower",
                                      "/org/freedesktop/UPower", "org.freedesktop.UPower",
                                      "OnBattery", false));
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.events.back() == "battery 0"; }));
  source.reset();
  CloseLoop(&loop);
}

TEST(UpowerPower, NoUpowerIsAnErrorAndAutoStillStarts) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv system("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
  uv_loop_t loop;
  uv_loop_init(&loop);
  PowerRecorder rec;
  auto upower = NewUpowerPowerSource();
  EXPECT_FALSE(upower->Start(&loop, &rec));
  upower.reset();
  // auto: no logind, no upower; sysfs (the real /sys) and the clock remain.
  auto source = CreatePowerSource("auto");
  ASSERT_TRUE(source);
  auto started = (*source)->Start(&loop, &rec);
  EXPECT_TRUE(started) << started.error().message;
  (*source)->Stop();
  source->reset();
  CloseLoop(&loop);
}

void WriteFile(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << s << "\n";
}

TEST(SysfsPower, OnlineFileOfMainsSupply) {
  char tmpl[] = "/tmp/dormant-sysfs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path root(tmpl);
  auto supplies = root / "class/power_supply";
  WriteFile(supplies / "AC/type", "Mains");
  WriteFile(supplies / "AC/online", "1");
  WriteFile(supplies / "BAT0/type", "Battery");
  WriteFile(supplies / "BAT0/status", "Charging");
  ScopedEnv sysfs("DORMANT_SYSFS_ROOT", root.string());
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewSysfsPowerSource("", enforcer::Duration(20));
  PowerRecorder rec;
  ASSERT_TRUE(source->Start(&loop, &rec));
  EXPECT_EQ(rec.events, std::vector<std::string>{"battery 0"});
  WriteFile(supplies / "AC/online", "0");
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.events.back() == "battery 1"; }));
  WriteFile(supplies / "AC/online", "1");
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.events.back() == "battery 0"; }));
  EXPECT_EQ(rec.events.size(), 3u);
  source.reset();
  CloseLoop(&loop);
  std::filesystem::remove_all(root);
}

TEST(SysfsPower, MissingTreeIsAnError) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewSysfsPowerSource("/nonexistent-dormant-sysfs");
  PowerRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("power_supply"), std::string::npos);
  source.reset();
  CloseLoop(&loop);
}

TEST(SleepGap, BoottimeRunningAheadIsASleep) {
  SleepGapDetector d(enforcer::Duration(2000));
  EXPECT_FALSE(d.Sample(10000, 5000));    // primes
  EXPECT_FALSE(d.Sample(20000, 15000));   // both advanced 10 s: running (or stopped by SIGSTOP)
  EXPECT_FALSE(d.Sample(21500, 16000));   // 1 s ahead: under the threshold
  auto slept = d.Sample(3621500, 16500);  // boottime jumped an hour
  ASSERT_TRUE(slept);
  EXPECT_EQ(*slept, enforcer::Duration(3621500 - 16500 - (21500 - 16000)));
  EXPECT_FALSE(d.Sample(3631500, 26500));  // and then runs along again
}

TEST(ClockPower, RealClocksShowNoSleepWhileRunning) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewClockPowerSource(enforcer::Duration(20), enforcer::Duration(2000));
  PowerRecorder rec;
  ASSERT_TRUE(source->Start(&loop, &rec));
  testing::RunFor(&loop, 300ms);
  EXPECT_TRUE(rec.events.empty());
  source.reset();
  CloseLoop(&loop);
}

}  // namespace
}  // namespace dormant::platform
