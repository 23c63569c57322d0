// The D-Bus idle sources (gnome, kde, logind) against a private dbus-daemon
// with python3-dbusmock services: real bus traffic, real signals, real loss.
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include "platform/idle_factory.h"
#include "platform/linux/idle_sources_linux.h"
#include "tests/idle_test_env.h"

namespace dormant::platform {
namespace {

using namespace std::chrono_literals;
using testing::DbusDaemon;
using testing::DbusMock;
using testing::IdleRecorder;
using testing::RunUntil;
using testing::ScopedEnv;

constexpr const char* kMutter = "org.gnome.Mutter.IdleMonitor";
constexpr const char* kMutterPath = "/org/gnome/Mutter/IdleMonitor/Core";

// A Mutter idle monitor in a few lines of dbusmock: watches are kept in lists
// and fired by the test-only methods TestIdle (idle time reached) and
// TestInput (the user came back), as Mutter fires them.
bool AddMutterMethods(sd_bus* bus) {
  auto add = [&](const char* name, const char* in, const char* out, const std::string& code) {
    return testing::MockAddMethod(bus, kMutter, kMutterPath, kMutter, name, in, out, code);
  };
  return add("GetIdletime", "", "t", "ret = getattr(self, 'idletime', 0)") &&
         add("AddIdleWatch", "t", "u",
             "self.next_id = getattr(self, 'next_id', 0) + 1\n"
             "self.idle_watches = getattr(self, 'idle_watches', []) + [self.next_id]\n"
             "ret = self.next_id") &&
         add("AddUserActiveWatch", "", "u",
             "self.next_id = getattr(self, 'next_id', 0) + 1\n"
             "self.active_watches = getattr(self, 'active_watches', []) + [self.next_id]\n"
             "ret = self.next_id") &&
         add("RemoveWatch", "u", "",
             "self.idle_watches = [w for w in getattr(self, 'idle_watches', []) if w != args[0]]\n"
             "self.active_watches = [w for w in getattr(self, 'active_watches', []) if w != "
             "args[0]]") &&
         add("TestActiveWatches", "", "u", "ret = len(getattr(self, 'active_watches', []))") &&
         add("TestIdle", "t", "",
             "self.idletime = args[0]\n"
             "for w in getattr(self, 'idle_watches', []):\n"
             "    self.EmitSignal('org.gnome.Mutter.IdleMonitor', 'WatchFired', 'u', [w])") &&
         add("TestInput", "", "",
             "self.idletime = 0\n"
             "for w in getattr(self, 'active_watches', []):\n"
             "    self.EmitSignal('org.gnome.Mutter.IdleMonitor', 'WatchFired', 'u', [w])\n"
             "self.active_watches = []");
}

uint32_t ActiveWatches(sd_bus* bus) {
  sd_bus_message* reply = nullptr;
  uint32_t n = 0;
  if (sd_bus_call_method(bus, kMutter, kMutterPath, kMutter, "TestActiveWatches", nullptr, &reply,
                         "") >= 0) {
    sd_bus_message_read(reply, "u", &n);
  }
  sd_bus_message_unref(reply);
  return n;
}

void CloseLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(loop), 0);
}

TEST(IdleGnome, WatchesDriveSamplesAndNameLossFails) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
  ASSERT_TRUE(mutter.ok());
  ASSERT_TRUE(AddMutterMethods(bus.client()));

  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.active_refresh = enforcer::Duration(100);
  auto source = NewGnomeIdleSource(timing);
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  ASSERT_EQ(rec.samples.size(), 1u);
  EXPECT_EQ(rec.samples[0].idle_for, enforcer::Duration(0));
  // Active: the local refresh re-reports 0.
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.samples.size() >= 3; }));

  // The idle watch fires: the source reports the gate and arms an active watch.
  ASSERT_GE(sd_bus_call_method(bus.client(), kMutter, kMutterPath, kMutter, "TestIdle", nullptr,
                               nullptr, "t", uint64_t{60000}),
            0);
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.samples.back().idle_for == timing.idle_gate; }));
  ASSERT_TRUE(RunUntil(&loop, [&] { return ActiveWatches(bus.client()) == 1; }));
  // Idle: nothing is polled or refreshed.
  size_t idle_count = rec.samples.size();
  testing::RunFor(&loop, 500ms);
  EXPECT_EQ(rec.samples.size(), idle_count);

  // Input: WatchFired on the active watch gives a sample of 0.
  ASSERT_TRUE(testing::CallVoid(bus.client(), kMutter, kMutterPath, kMutter, "TestInput"));
  ASSERT_TRUE(RunUntil(&loop, [&] {
    return rec.samples.size() > idle_count && rec.samples.back().idle_for == enforcer::Duration(0);
  }));
  EXPECT_TRUE(rec.failures.empty());

  // The monitor leaves the bus: one failure.
  mutter.Kill();
  ASSERT_TRUE(RunUntil(&loop, [&] { return !rec.failures.empty(); }));
  EXPECT_NE(rec.failures[0].find("left the bus"), std::string::npos) << rec.failures[0];
  source.reset();
  CloseLoop(&loop);
}

TEST(IdleGnome, NoMonitorOnTheBusIsAnError) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewGnomeIdleSource();
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("not on the session bus"), std::string::npos);
  source.reset();
  CloseLoop(&loop);
}

TEST(IdleKde, PollsGetSessionIdleTime) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  const char* kName = "org.freedesktop.ScreenSaver";
  const char* kPath = "/org/freedesktop/ScreenSaver";
  DbusMock saver(bus, false, kName, {kName, kPath, kName});
  ASSERT_TRUE(saver.ok());
  ASSERT_TRUE(testing::MockAddMethod(bus.client(), kName, kPath, kName, "GetSessionIdleTime", "",
                                     "u", "ret = getattr(self, 'idle', 42000)"));
  ASSERT_TRUE(testing::MockAddMethod(bus.client(), kName, kPath, kName, "TestInput", "", "",
                                     "self.idle = 0"));

  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.lazy_poll = enforcer::Duration(100);
  auto source = NewKdeIdleSource(timing);
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(rec.samples.at(0).idle_for, enforcer::Duration(42000));
  ASSERT_TRUE(testing::CallVoid(bus.client(), kName, kPath, kName, "TestInput"));
  ASSERT_TRUE(
      RunUntil(&loop, [&] { return rec.samples.back().idle_for == enforcer::Duration(0); }));
  saver.Kill();
  ASSERT_TRUE(RunUntil(&loop, [&] { return !rec.failures.empty(); }));
  source.reset();
  CloseLoop(&loop);
}

int64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

TEST(IdleLogind, FollowsSessionIdleHint) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv system("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
  ScopedEnv session_id("XDG_SESSION_ID", std::string("c1"));
  DbusMock logind(bus, true, "org.freedesktop.login1", {"--template", "logind"});
  ASSERT_TRUE(logind.ok());
  ASSERT_GE(sd_bus_call_method(bus.client(), "org.freedesktop.login1", "/org/freedesktop/login1",
                               "org.freedesktop.DBus.Mock", "AddSession", nullptr, nullptr, "ssusb",
                               "c1", "seat0", static_cast<uint32_t>(getuid()), "tester", 1),
            0);
  const char* kSessionPath = "/org/freedesktop/login1/session/c1";

  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.active_refresh = enforcer::Duration(100);
  auto source = NewLogindIdleSource(timing);
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(rec.samples.at(0).idle_for, enforcer::Duration(0));

  ASSERT_TRUE(testing::MockUpdateIdle(bus.client(), "org.freedesktop.login1", kSessionPath, true,
                                      MonotonicUsec() - 60 * 1000000));
  ASSERT_TRUE(
      RunUntil(&loop, [&] { return rec.samples.back().idle_for >= enforcer::Duration(60000); }));
  EXPECT_LT(rec.samples.back().idle_for, enforcer::Duration(120000));
  ASSERT_TRUE(
      testing::MockUpdateIdle(bus.client(), "org.freedesktop.login1", kSessionPath, false, 0));
  ASSERT_TRUE(
      RunUntil(&loop, [&] { return rec.samples.back().idle_for == enforcer::Duration(0); }));
  logind.Kill();
  ASSERT_TRUE(RunUntil(&loop, [&] { return !rec.failures.empty(); }));
  source.reset();
  CloseLoop(&loop);
}

}  // namespace
}  // namespace dormant::platform
