// Desktop notifications: the Linux notifier against a private dbus-daemon with
// python3-dbusmock's notification_daemon template (real calls, read back from
// the mock's call log), and the rule of what the supervisor notifies, fed by
// the real enforcer.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "enforcer/enforcer.h"
#include "launcher/notify.h"
#include "launcher/policy_loader.h"
#include "platform/linux/notifier_dbus.h"
#include "tests/idle_test_env.h"

namespace dormant::platform {
namespace {

using namespace std::chrono_literals;
using testing::DbusDaemon;
using testing::DbusMock;
using testing::RunUntil;
using testing::ScopedEnv;

constexpr const char* kName = "org.freedesktop.Notifications";
constexpr const char* kPath = "/org/freedesktop/Notifications";

// One Notify call as the mock daemon recorded it.
struct Recorded {
  std::string app_name;
  uint32_t replaces_id = 0;
  std::string summary;
  std::string body;
  int urgency = -1;  // the "urgency" hint; -1 when absent
  int32_t expire_timeout = 0;
};

std::string ReadStringVariant(sd_bus_message* m) {
  const char* s = nullptr;
  sd_bus_message_read(m, "v", "s", &s);
  return s ? s : "";
}

// org.freedesktop.DBus.Mock.GetMethodCalls("Notify"): a(tav), the av being
// Notify's eight arguments as sent.
std::vector<Recorded> NotifyCalls(sd_bus* bus) {
  std::vector<Recorded> out;
  sd_bus_message* reply = nullptr;
  sd_bus_error err = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method(bus, kName, kPath, "org.freedesktop.DBus.Mock", "GetMethodCalls", &err,
                             &reply, "s", "Notify");
  sd_bus_error_free(&err);
  if (r < 0) {
    ADD_FAILURE() << "GetMethodCalls: " << strerror(-r);
    return out;
  }
  sd_bus_message_enter_container(reply, 'a', "(tav)");
  while (sd_bus_message_enter_container(reply, 'r', "tav") > 0) {
    uint64_t when = 0;
    sd_bus_message_read(reply, "t", &when);
    sd_bus_message_enter_container(reply, 'a', "v");
    Recorded c;
    c.app_name = ReadStringVariant(reply);
    sd_bus_message_read(reply, "v", "u", &c.replaces_id);
    ReadStringVariant(reply);  // app_icon
    c.summary = ReadStringVariant(reply);
    c.body = ReadStringVariant(reply);
    sd_bus_message_skip(reply, "v");  // actions
    sd_bus_message_enter_container(reply, 'v', "a{sv}");
    sd_bus_message_enter_container(reply, 'a', "{sv}");
    while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
      const char* key = nullptr;
      sd_bus_message_read(reply, "s", &key);
      if (key && std::string(key) == "urgency") {
        uint8_t u = 0;
        sd_bus_message_read(reply, "v", "y", &u);
        c.urgency = u;
      } else {
        sd_bus_message_skip(reply, "v");
      }
      sd_bus_message_exit_container(reply);
    }
    sd_bus_message_exit_container(reply);
    sd_bus_message_exit_container(reply);
    sd_bus_message_read(reply, "v", "i", &c.expire_timeout);
    sd_bus_message_exit_container(reply);
    sd_bus_message_exit_container(reply);
    out.push_back(c);
  }
  sd_bus_message_unref(reply);
  return out;
}

// Captures dormant's log lines for the scope.
class LogCapture {
 public:
  LogCapture() : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  size_t Count(const std::string& needle) const {
    std::string s = text_.str();
    size_t n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> old_;
};

void CloseLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(loop), 0);
}

TEST(DbusNotifier, DeliversAppNameSummaryBodyUrgencyAndReplacesBySubject) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  DbusMock daemon(bus, false, kName, {"--template", "notification_daemon"});
  ASSERT_TRUE(daemon.ok());

  uv_loop_t loop;
  uv_loop_init(&loop);
  DbusNotifier n(&loop);
  ASSERT_TRUE(n.Notify("idle", "dormant", "idle for 8m >= 5m & <b>", Urgency::kNormal));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.delivered() == 1; })) << n.unavailable();
  ASSERT_TRUE(n.Notify("budget 'daily'", "dormant", "budget 'daily' exhausted", Urgency::kCritical));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.delivered() == 2; })) << n.unavailable();
  ASSERT_TRUE(n.Notify("idle", "dormant", "idle again", Urgency::kLow));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.delivered() == 3; })) << n.unavailable();
  EXPECT_EQ(n.unavailable(), "");

  auto calls = NotifyCalls(bus.client());
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].app_name, "dormant");
  EXPECT_EQ(calls[0].replaces_id, 0u);
  EXPECT_EQ(calls[0].summary, "dormant");
  // The template announces body-markup: the body is escaped as markup.
  EXPECT_EQ(calls[0].body, "idle for 8m &gt;= 5m &amp; &lt;b&gt;");
  EXPECT_EQ(calls[0].urgency, 1);
  EXPECT_EQ(calls[0].expire_timeout, -1);
  // Another subject: a bubble of its own (the mock numbers them 1, 2, ...).
  EXPECT_EQ(calls[1].replaces_id, 0u);
  EXPECT_EQ(calls[1].urgency, 2);
  // The same subject again replaces the first bubble.
  EXPECT_EQ(calls[2].replaces_id, 1u);
  EXPECT_EQ(calls[2].urgency, 0);
  EXPECT_EQ(calls[2].body, "idle again");

  n.Close();
  EXPECT_FALSE(n.Notify("idle", "dormant", "after close", Urgency::kNormal));
  CloseLoop(&loop);
}

TEST(DbusNotifier, PlainBodyWhenTheDaemonHasNoMarkup) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  DbusMock daemon(bus, false, kName,
                  {"--template", "notification_daemon", "--parameters", R"({"capabilities": "body"})"});
  ASSERT_TRUE(daemon.ok());
  uv_loop_t loop;
  uv_loop_init(&loop);
  DbusNotifier n(&loop);
  RunUntil(&loop, [&] { return n.pending() == 0; });  // the capabilities answer first
  ASSERT_TRUE(n.Notify("idle", "dormant", "a < b & c", Urgency::kNormal));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.delivered() == 1; })) << n.unavailable();
  auto calls = NotifyCalls(bus.client());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body, "a < b & c");
  n.Close();
  CloseLoop(&loop);
}

TEST(DbusNotifier, NoDaemonIsReportedOnceThenRecovers) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  LogCapture log;
  uv_loop_t loop;
  uv_loop_init(&loop);
  DbusNotifier n(&loop);
  // The probe at creation finds no daemon.
  ASSERT_TRUE(RunUntil(&loop, [&] { return !n.unavailable().empty(); }));
  EXPECT_NE(n.unavailable().find("no notification daemon"), std::string::npos) << n.unavailable();
  // Further notifications are queued, refused by the bus, and not logged again.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.Notify("idle", "dormant", "warning", Urgency::kNormal));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.pending() == 0; }));
  EXPECT_EQ(n.delivered(), 0u);
  EXPECT_EQ(log.Count("desktop notifications unavailable"), 1u) << log.text();
  EXPECT_EQ(log.Count("[info]"), 1u) << log.text();

  // A daemon appears: the next notification gets through, and that is said once.
  DbusMock daemon(bus, false, kName, {"--template", "notification_daemon"});
  ASSERT_TRUE(daemon.ok());
  ASSERT_TRUE(n.Notify("idle", "dormant", "warning", Urgency::kNormal));
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.delivered() == 1; })) << n.unavailable();
  EXPECT_EQ(n.unavailable(), "");
  EXPECT_EQ(log.Count("desktop notifications available again"), 1u) << log.text();
  EXPECT_EQ(NotifyCalls(bus.client()).size(), 1u);
  n.Close();
  CloseLoop(&loop);
}

TEST(DbusNotifier, NoSessionBusIsAnErrorLoggedOnce) {
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", std::string("unix:path=/nonexistent/dormant-test-bus"));
  LogCapture log;
  uv_loop_t loop;
  uv_loop_init(&loop);
  DbusNotifier n(&loop);
  EXPECT_NE(n.unavailable().find("no session bus"), std::string::npos) << n.unavailable();
  for (int i = 0; i < 3; ++i) {
    auto r = n.Notify("idle", "dormant", "warning", Urgency::kNormal);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("session bus"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(log.Count("desktop notifications unavailable"), 1u) << log.text();
  n.Close();
  CloseLoop(&loop);
}

// A daemon that does not answer: Notify returns at once, the loop keeps
// running (a timer on it fires while the call is out), and the call ends in
// the bus timeout, reported as unavailability.
TEST(DbusNotifier, AHungDaemonNeverStallsTheLoop) {
  DbusDaemon bus;
  ASSERT_TRUE(bus.ok());
  ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  DbusMock daemon(bus, false, kName, {"--template", "notification_daemon"});
  ASSERT_TRUE(daemon.ok());
  ASSERT_TRUE(testing::MockAddMethod(bus.client(), kName, kPath, kName, "Notify", "susssasa{sv}i", "u",
                                     "import time\ntime.sleep(6)\nret = 1"));
  uv_loop_t loop;
  uv_loop_init(&loop);
  DbusNotifier n(&loop);
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.pending() == 0; }));  // the probe is answered
  ASSERT_TRUE(n.Notify("idle", "dormant", "warning", Urgency::kNormal));
  EXPECT_EQ(n.pending(), 1u);
  int ticks = 0;
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = &ticks;
  uv_timer_start(&timer, [](uv_timer_t* t) { ++*static_cast<int*>(t->data); }, 100, 100);
  ASSERT_TRUE(RunUntil(&loop, [&] { return n.pending() == 0; }));
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  EXPECT_GT(ticks, 1);  // the loop ran while the daemon sat on the call
  EXPECT_EQ(n.delivered(), 0u);
  EXPECT_FALSE(n.unavailable().empty());
  n.Close();
  CloseLoop(&loop);
}

}  // namespace
}  // namespace dormant::platform

namespace dormant::launcher {
namespace {

using namespace std::chrono_literals;
using enforcer::Action;
using enforcer::Enforcer;
using enforcer::Event;
using enforcer::TimePoint;
using platform::Urgency;

enforcer::Policy TestPolicy() {
  enforcer::Policy p;
  p.idle.suspend_after = 10min;
  p.idle.kill_after = 2h;
  p.idle.warn_after = 8min;
  p.providers = {{"codex", "codex", {"app-server"}, {}, {}}};
  return p;
}

// Feeds `e` to the enforcer and returns what the supervisor would notify.
std::vector<Notice> Fed(Enforcer& en, const Event& e, TimePoint at) {
  return NoticesFor(&e, en.OnEvent(e, at));
}

TEST(NotifyRule, IdleWarningIsNotifiedButNotTheIdleSuspendOrResume) {
  TimePoint t0{};
  Enforcer en(TestPolicy(), t0);
  EXPECT_TRUE(Fed(en, Event::ProviderStarted(100, 0), t0).empty());
  auto warn = Fed(en, Event::Tick(), t0 + 8min);
  ASSERT_EQ(warn.size(), 1u);
  EXPECT_EQ(warn[0].subject, "idle");
  EXPECT_EQ(warn[0].summary, "dormant");
  EXPECT_EQ(warn[0].urgency, Urgency::kNormal);
  EXPECT_NE(warn[0].body.find("providers will be suspended"), std::string::npos) << warn[0].body;
  // The suspend at 10m and the resume on activity: actions, but no notices.
  Event tick = Event::Tick();
  auto suspend = en.OnEvent(tick, t0 + 10min);
  ASSERT_EQ(suspend.size(), 1u);
  EXPECT_TRUE(NoticesFor(&tick, suspend).empty());
  Event activity = Event::Activity();
  auto resume = en.OnEvent(activity, t0 + 11min);
  ASSERT_EQ(resume.size(), 1u);
  EXPECT_TRUE(NoticesFor(&activity, resume).empty());
  // A control command's actions (no cause) are judged by kind only.
  EXPECT_TRUE(NoticesFor(nullptr, resume).empty());
}

TEST(NotifyRule, BudgetWarningHasTheBudgetAsSubject) {
  TimePoint t0{};
  Enforcer en(TestPolicy(), t0);
  auto n = Fed(en, Event::BudgetWarn("budget 'daily' passed 80%: 81% of its limit this day"), t0);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].subject, "budget 'daily'");
  EXPECT_EQ(n[0].body, "budget 'daily' passed 80%: 81% of its limit this day");
  EXPECT_EQ(n[0].urgency, Urgency::kNormal);
}

TEST(NotifyRule, BudgetKillSaysWhyAndWhatWasEnded) {
  TimePoint t0{};
  Enforcer en(TestPolicy(), t0);
  Fed(en, Event::ProviderStarted(100, 0), t0);
  const std::string why = "budget 'daily' exhausted: 100% of its limit this day";
  auto n = Fed(en, Event::BudgetExhausted(why, /*kill=*/true, /*lockout=*/true), t0 + 1min);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].subject, "budget 'daily'");
  EXPECT_EQ(n[0].urgency, Urgency::kCritical);
  EXPECT_EQ(n[0].body, why + "\ncodex (pid 100): ended"
                           "\nuntil the next window, a provider that starts is ended at once");
  // The SIGKILL after kill_grace that follows is not notified again.
  Event tick = Event::Tick();
  auto kill = en.OnEvent(tick, t0 + 2min);
  ASSERT_EQ(kill.size(), 1u);
  EXPECT_EQ(kill[0].kind, Action::Kind::kKill);
  EXPECT_TRUE(NoticesFor(&tick, kill).empty());
  // A provider started while locked out is ended on sight, and the user told.
  auto again = Fed(en, Event::ProviderStarted(200, 0), t0 + 3min);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].subject, "budget 'daily'");
  EXPECT_EQ(again[0].body, "codex (pid 200) ended: started while locked out: " + why);
  EXPECT_EQ(again[0].urgency, Urgency::kCritical);
}

TEST(NotifyRule, BudgetSuspendAndIdleSpendAreNotified) {
  TimePoint t0{};
  Enforcer en(TestPolicy(), t0);
  Fed(en, Event::ProviderStarted(100, 0), t0);
  auto held = Fed(en, Event::BudgetExhausted("plan usage 91% >= max_used_percent 90", false, true), t0);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].subject, "plan");
  EXPECT_NE(held[0].body.find("codex (pid 100): stopped"), std::string::npos) << held[0].body;

  Enforcer idle(TestPolicy(), t0);
  Fed(idle, Event::ProviderStarted(100, 0), t0);
  auto spent = Fed(idle, Event::IdleSpendExceeded("spend while idle passed [budget_idle]: 5000 tokens"),
                   t0 + 3min);
  ASSERT_EQ(spent.size(), 1u);
  EXPECT_EQ(spent[0].subject, "budget_idle");
  EXPECT_EQ(spent[0].urgency, Urgency::kCritical);
  EXPECT_NE(spent[0].body.find("codex (pid 100): stopped"), std::string::npos) << spent[0].body;
}

TEST(NotifyRule, ProviderStartedWhileIdleHeldIsNotNotified) {
  TimePoint t0{};
  Enforcer en(TestPolicy(), t0);
  Fed(en, Event::Sleep(), t0);  // held: a provider is stopped on sight, routinely
  Event start = Event::ProviderStarted(100, 0);
  auto a = en.OnEvent(start, t0 + 1s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, Action::Kind::kSuspend);
  EXPECT_TRUE(NoticesFor(&start, a).empty());
}

// [notify] desktop through the real policy stack: users may turn it off, but
// not against an admin's lock (on is the stricter side).
TEST(NotifyPolicy, UsersTurnItOffUnlessAnAdminLockedItOn) {
  char tmpl[] = "/tmp/dormant-notify-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  dormant::testing::ScopedEnv sys("DORMANT_SYSTEM_DIR", root + "/etc");
  dormant::testing::ScopedEnv cfg("XDG_CONFIG_HOME", root + "/config");
  std::filesystem::create_directories(root + "/etc");
  std::filesystem::create_directories(root + "/config/dormant");
  std::string user = root + "/config/dormant/policy.toml";
  std::ofstream(user) << "[notify]\ndesktop = false\n";
  LoadedPolicy p = LoadPolicy({});
  EXPECT_TRUE(p.errors.empty());
  EXPECT_FALSE(p.policy.notify.desktop);

  std::string admin = root + "/etc/policy.toml";
  std::ofstream(admin) << "[notify]\ndesktop = true\n[lock]\nkeys = [\"notify.*\"]\n";
  p = LoadPolicy({});
  EXPECT_TRUE(p.errors.empty());
  EXPECT_TRUE(p.policy.notify.desktop);
  ASSERT_EQ(p.notices.size(), 1u);
  EXPECT_EQ(p.notices[0].ToString(), user + ":2:11: notify.desktop: not applied: false is looser than true, "
                                            "and notify.desktop is locked by " + admin + ":4:9");
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace dormant::launcher
