// The auto choice across environments, the factory's names, the tty source
// against a real pseudo-terminal, and the manual source.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/idle_factory.h"
#include "platform/linux/idle_sources_linux.h"
#include "tests/idle_test_env.h"

namespace dormant::platform {
namespace {

using namespace std::chrono_literals;
using testing::IdleRecorder;
using testing::RunUntil;

std::vector<std::string> Names(const AutoChoice& c) {
  std::vector<std::string> out;
  for (const auto& x : c.candidates) {
    EXPECT_FALSE(x.reason.empty()) << x.name;
    out.push_back(x.name);
  }
  return out;
}

TEST(IdleAuto, X11Only) {
  Environment env;
  env.vars = {{"DISPLAY", ":0"}, {"XDG_SESSION_TYPE", "x11"}};
  env.session_bus = true;
  EXPECT_EQ(Names(ChooseIdleSource(env)), (std::vector<std::string>{"x11", "logind", "manual"}));
  EXPECT_NE(ChooseIdleSource(env).candidates[0].reason.find("DISPLAY=:0"), std::string::npos);
}

TEST(IdleAuto, GnomeBusComesFirstOnX11AndWayland) {
  Environment env;
  env.vars = {{"DISPLAY", ":0"}};
  env.session_bus_names = {"org.gnome.Mutter.IdleMonitor", "org.gnome.Shell"};
  EXPECT_EQ(Names(ChooseIdleSource(env)),
            (std::vector<std::string>{"gnome", "x11", "logind", "manual"}));
  env.vars = {{"WAYLAND_DISPLAY", "wayland-0"}, {"DISPLAY", ":0"}, {"XDG_SESSION_TYPE", "wayland"}};
  // Under Wayland, XWayland sees only X clients' input: no x11.
  EXPECT_EQ(Names(ChooseIdleSource(env)),
            (std::vector<std::string>{"gnome", "wayland", "logind", "manual"}));
}

TEST(IdleAuto, KdeWaylandPrefersIdleNotifyThenScreenSaver) {
  Environment env;
  env.vars = {{"WAYLAND_DISPLAY", "wayland-0"}, {"XDG_CURRENT_DESKTOP", "KDE"}};
  env.session_bus_names = {"org.freedesktop.ScreenSaver", "org.kde.KWin"};
  EXPECT_EQ(Names(ChooseIdleSource(env)),
            (std::vector<std::string>{"wayland", "kde", "logind", "manual"}));
}

TEST(IdleAuto, NoDisplay) {
  Environment env;
  EXPECT_EQ(Names(ChooseIdleSource(env)), (std::vector<std::string>{"logind", "manual"}));
  env.has_tty = true;
  EXPECT_EQ(Names(ChooseIdleSource(env)), (std::vector<std::string>{"tty", "logind", "manual"}));
}

TEST(IdleAuto, CurrentEnvironmentSeesTheSessionBusNames) {
  testing::DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  testing::ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  testing::ScopedEnv display("DISPLAY", std::string(":5"));
  testing::ScopedEnv wayland("WAYLAND_DISPLAY", std::nullopt);
  testing::ScopedEnv type("XDG_SESSION_TYPE", std::nullopt);
  Environment before = CurrentEnvironment();
  EXPECT_TRUE(before.session_bus);
  EXPECT_EQ(Names(ChooseIdleSource(before))[0], "x11");
  testing::DbusMock mutter(bus, false, "org.gnome.Mutter.IdleMonitor",
                           {"org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
                            "org.gnome.Mutter.IdleMonitor"});
  ASSERT_TRUE(mutter.ok());
  Environment after = CurrentEnvironment();
  EXPECT_TRUE(after.HasBusName("org.gnome.Mutter.IdleMonitor"));
  EXPECT_EQ(Names(ChooseIdleSource(after)),
            (std::vector<std::string>{"gnome", "x11", "logind", "manual"}));
}

TEST(IdleAuto, NoSessionBus) {
  testing::ScopedEnv session("DBUS_SESSION_BUS_ADDRESS",
                             std::string("unix:path=/nonexistent/dormant-bus"));
  testing::ScopedEnv runtime("XDG_RUNTIME_DIR", std::string("/nonexistent"));
  Environment env = CurrentEnvironment();
  EXPECT_FALSE(env.session_bus);
  EXPECT_TRUE(env.session_bus_names.empty());
}

TEST(IdleFactory, KnowsEveryNameAndRefusesOthers) {
  for (const auto& name : IdleSourceNames()) {
    auto s = CreateIdleSource(name);
    ASSERT_TRUE(s) << name;
    EXPECT_EQ((*s)->name(), name);
  }
  auto bad = CreateIdleSource("screensaver");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown idle source"), std::string::npos);
}

TEST(IdleManual, ReportsNothingAndHoldsNoHandle) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto s = CreateIdleSource("manual");
  ASSERT_TRUE(s);
  IdleRecorder rec;
  ASSERT_TRUE((*s)->Start(&loop, &rec));
  EXPECT_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);  // nothing keeps the loop alive
  EXPECT_TRUE(rec.samples.empty());
  (*s)->Stop();
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(IdleWayland, NoCompositorIsAnError) {
  testing::ScopedEnv wayland("WAYLAND_DISPLAY", std::string("dormant-test-none"));
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto s = NewWaylandIdleSource();
  IdleRecorder rec;
  auto started = s->Start(&loop, &rec);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("cannot connect"), std::string::npos)
      << started.error().message;
  s.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(IdleTty, AccessTimeOfARealPseudoTerminal) {
  int master = -1;
  int slave = -1;
  char name[256];
  ASSERT_EQ(openpty(&master, &slave, name, nullptr, nullptr), 0);
  // As if nobody typed for an hour.
  timespec times[2] = {{time(nullptr) - 3600, 0}, {time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, name, times, 0), 0);

  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.lazy_poll = enforcer::Duration(50);
  auto source = NewTtyIdleSource(name, timing);
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_GE(rec.samples.at(0).idle_for, enforcer::Duration(3599000));

  // Input: the line discipline delivers it and a read on the terminal takes
  // it, which is what updates the access time.
  ASSERT_EQ(write(master, "ls\n", 3), 3);
  char buf[16];
  ASSERT_GT(read(slave, buf, sizeof buf), 0);
  ASSERT_TRUE(
      RunUntil(&loop, [&] { return rec.samples.back().idle_for < enforcer::Duration(60000); }));

  // The terminal goes away: a failure.
  close(slave);
  close(master);
  ASSERT_TRUE(RunUntil(&loop, [&] { return !rec.failures.empty(); }));
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace dormant::platform
