// The x11 source against a real X server (Xvfb) with real input (xdotool).
#include <gtest/gtest.h>

#include "platform/idle_factory.h"
#include "platform/linux/idle_sources_linux.h"
#include "tests/idle_test_env.h"

namespace dormant::platform {
namespace {

using namespace std::chrono_literals;
using testing::IdleRecorder;
using testing::RunUntil;

TEST(IdleX11, IdleGrowsInputResetsItServerLossFails) {
  testing::Xvfb x;
  ASSERT_TRUE(x.ok()) << "Xvfb did not start";
  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.lazy_poll = enforcer::Duration(200);
  timing.eager_poll = enforcer::Duration(50);
  auto source = NewX11IdleSource(x.display(), timing);
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(source->name(), "x11");
  ASSERT_FALSE(rec.samples.empty());  // the first sample comes with Start

  // No input: idle grows past a second.
  ASSERT_TRUE(
      RunUntil(&loop, [&] { return rec.samples.back().idle_for >= enforcer::Duration(1500); }));
  // Real input through XTEST resets it; eager polling reports it soon.
  source->SetEager(true);
  size_t before = rec.samples.size();
  ASSERT_TRUE(x.Xdotool({"mousemove", "100", "100"}));
  ASSERT_TRUE(RunUntil(&loop, [&] {
    return rec.samples.size() > before && rec.samples.back().idle_for < enforcer::Duration(1000);
  }));
  EXPECT_TRUE(rec.failures.empty());

  // The server goes away: one failure, and no more samples.
  x.Kill();
  ASSERT_TRUE(RunUntil(&loop, [&] { return !rec.failures.empty(); }));
  size_t after_fail = rec.samples.size();
  testing::RunFor(&loop, 300ms);
  EXPECT_EQ(rec.samples.size(), after_fail);
  EXPECT_EQ(rec.failures.size(), 1u);

  source->Stop();
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(IdleX11, EagerInputArrivesByXSyncAlarmWithoutPolling) {
  testing::Xvfb x;
  ASSERT_TRUE(x.ok());
  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.lazy_poll = enforcer::Duration(600000);  // no poll in this test's time
  timing.eager_poll = enforcer::Duration(600000);
  auto source = NewX11IdleSource(x.display(), timing);
  IdleRecorder rec;
  ASSERT_TRUE(source->Start(&loop, &rec));
  testing::RunFor(&loop, 500ms);  // let idle grow past the alarm's threshold
  source->SetEager(true);         // samples once and arms the alarm
  size_t armed = rec.samples.size();
  ASSERT_GE(armed, 2u);
  ASSERT_GE(rec.samples.back().idle_for, enforcer::Duration(400));
  testing::RunFor(&loop, 300ms);
  EXPECT_EQ(rec.samples.size(), armed);  // nothing polls
  ASSERT_TRUE(x.Xdotool({"mousemove", "200", "200"}));
  ASSERT_TRUE(RunUntil(&loop, [&] { return rec.samples.size() > armed; }));
  EXPECT_LT(rec.samples.back().idle_for, enforcer::Duration(400));
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(IdleX11, NoServerIsAnErrorAtStart) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewX11IdleSource(":987");
  IdleRecorder rec;
  auto started = source->Start(&loop, &rec);
  EXPECT_FALSE(started);
  EXPECT_NE(started.error().message.find("cannot open display"), std::string::npos)
      << started.error().message;
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(IdleX11, FactoryUsesDisplay) {
  testing::Xvfb x;
  ASSERT_TRUE(x.ok());
  testing::ScopedEnv display("DISPLAY", x.display());
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = CreateIdleSource("x11");
  ASSERT_TRUE(source);
  IdleRecorder rec;
  ASSERT_TRUE((*source)->Start(&loop, &rec));
  EXPECT_EQ(rec.samples.size(), 1u);
  (*source)->Stop();
  source->reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace dormant::platform
