// Idle-source figures on real components:
//  1. resume latency from real input to the listener callback: xdotool under
//     Xvfb (x11 source, eager polling) and a Mutter WatchFired signal (gnome
//     source, python3-dbusmock), p50/p99 in ms;
//  2. loop wake-ups per minute and CPU (% of one core) of each source over a
//     window (default 20 s; `bench_idle_sources SECONDS` to change it; the
//     target is stated over 60 s).
// Usage: bench_idle_sources [window_seconds] [latency_rounds]
#include <pty.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "platform/linux/idle_sources_linux.h"
// The test plumbing (Xvfb, dbus-daemon, dbusmock, loop runner) serves the
// benchmark as it is; it has no test-framework dependency.
#include "tests/idle_test_env.cc"

using namespace dormant;
using namespace dormant::platform;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void PrintPercentiles(const char* what, std::vector<double> v) {
  if (v.empty()) {
    std::printf("%-44s no samples\n", what);
    return;
  }
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
  };
  std::printf("%-44s n=%zu p50=%.1f ms p99=%.1f ms max=%.1f ms\n", what, v.size(), at(0.5),
              at(0.99), v.back());
}

struct Recorder : IdleSource::Listener {
  void OnIdleSample(enforcer::Duration d) override {
    last = d;
    at = Clock::now();
    ++count;
  }
  void OnIdleSourceFailed(const Error& e) override {
    std::fprintf(stderr, "source failed: %s\n", e.message.c_str());
  }
  enforcer::Duration last{0};
  Clock::time_point at;
  size_t count = 0;
};

// x11: from spawning xdotool, and from the input as the X server dates it.
void X11Latency(int rounds, bool xsync) {
  testing::Xvfb x;
  if (!x.ok()) return (void)std::printf("x11 latency: Xvfb did not start\n");
  uv_loop_t loop;
  uv_loop_init(&loop);
  IdleTiming timing;
  timing.use_xsync = xsync;
  auto source = NewX11IdleSource(x.display(), timing);
  Recorder rec;
  if (!source->Start(&loop, &rec)) return (void)std::printf("x11 latency: source did not start\n");
  source->SetEager(true);
  std::vector<double> from_spawn, from_input;
  for (int i = 0; i < rounds; ++i) {
    testing::RunUntil(&loop, [&] { return rec.last >= enforcer::Duration(300); });
    size_t before = rec.count;
    auto t0 = Clock::now();
    // Input lands at a random point of the poll period, as a person's would.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % 100));
    std::thread input([&] { x.Xdotool({"mousemove", std::to_string(10 + i % 2 * 50), "20"}); });
    bool seen = testing::RunUntil(
        &loop, [&] { return rec.count > before && rec.last < enforcer::Duration(300); },
        std::chrono::seconds(5));
    input.join();
    if (!seen) continue;
    from_spawn.push_back(Ms(rec.at - t0));
    from_input.push_back(static_cast<double>(rec.last.count()));
  }
  PrintPercentiles(xsync ? "x11 eager, XSync alarm, from xdotool spawn"
                         : "x11 eager, poll 100 ms, from xdotool spawn",
                   from_spawn);
  PrintPercentiles(
      xsync ? "x11 eager, XSync alarm, from input" : "x11 eager, poll 100 ms, from input",
      from_input);
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

constexpr const char* kMutter = "org.gnome.Mutter.IdleMonitor";
constexpr const char* kMutterPath = "/org/gnome/Mutter/IdleMonitor/Core";

bool AddMutter(sd_bus* bus) {
  auto add = [&](const char* name, const char* in, const char* out, const std::string& code) {
    return testing::MockAddMethod(bus, kMutter, kMutterPath, kMutter, name, in, out, code);
  };
  return add("GetIdletime", "", "t", "ret = getattr(self, 'idletime', 0)") &&
         add("AddIdleWatch", "t", "u",
             "self.next_id = getattr(self, 'next_id', 0) + 1\n"
             "self.idle_watches = getattr(self, 'idle_watches', []) + [self.next_id]\nret = "
             "self.next_id") &&
         add("AddUserActiveWatch", "", "u",
             "self.next_id = getattr(self, 'next_id', 0) + 1\n"
             "self.active_watches = getattr(self, 'active_watches', []) + [self.next_id]\nret = "
             "self.next_id") &&
         add("RemoveWatch", "u", "", "pass") &&
         add("TestActiveWatches", "", "u", "ret = len(getattr(self, 'active_watches', []))") &&
         add("TestIdle", "t", "",
             "self.idletime = args[0]\nfor w in getattr(self, 'idle_watches', []):\n"
             "    self.EmitSignal('org.gnome.Mutter.IdleMonitor', 'WatchFired', 'u', [w])") &&
         add("TestInput", "", "",
             "self.idletime = 0\nfor w in getattr(self, 'active_watches', []):\n"
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

void GnomeLatency(int rounds) {
  testing::DbusDaemon bus;
  testing::ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
  testing::DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
  if (!mutter.ok() || !AddMutter(bus.client()))
    return (void)std::printf("gnome latency: mock did not start\n");
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto source = NewGnomeIdleSource();
  Recorder rec;
  if (!source->Start(&loop, &rec))
    return (void)std::printf("gnome latency: source did not start\n");
  std::vector<double> lat;
  for (int i = 0; i < rounds; ++i) {
    sd_bus_call_method(bus.client(), kMutter, kMutterPath, kMutter, "TestIdle", nullptr, nullptr,
                       "t", uint64_t{60000});
    testing::RunUntil(
        &loop, [&] { return ActiveWatches(bus.client()) == 1; }, std::chrono::seconds(5));
    size_t before = rec.count;
    auto t0 = Clock::now();
    std::thread input(
        [&] { testing::CallVoid(bus.client(), kMutter, kMutterPath, kMutter, "TestInput"); });
    bool seen = testing::RunUntil(
        &loop, [&] { return rec.count > before && rec.last == enforcer::Duration(0); },
        std::chrono::seconds(5));
    input.join();
    if (seen) lat.push_back(Ms(rec.at - t0));
  }
  PrintPercentiles("gnome WatchFired (request to mock -> callback)", lat);
  source.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Loop iterations (each one a wake-up of the process) and CPU over `window`.
void Measure(const char* what, IdleSource& source, bool eager, double window_s,
             const std::function<void()>& before = {}) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder rec;
  if (auto r = source.Start(&loop, &rec); !r) {
    std::printf("%-34s unavailable: %s\n", what, r.error().message.c_str());
    uv_loop_close(&loop);
    return;
  }
  source.SetEager(eager);
  if (before) before();
  std::atomic<uint64_t> wakeups{0};
  uv_check_t check;
  uv_check_init(&loop, &check);
  check.data = &wakeups;
  uv_check_start(&check, [](uv_check_t* c) { ++*static_cast<std::atomic<uint64_t>*>(c->data); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&check));
  // Settle (watch replies, state changes), then measure.
  uv_timer_t settle;
  uv_timer_init(&loop, &settle);
  uv_timer_start(
      &settle, [](uv_timer_t* t) { uv_stop(t->loop); }, 1000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  wakeups = 0;
  size_t samples0 = rec.count;
  double cpu0 = CpuSeconds();
  auto t0 = Clock::now();
  uv_timer_start(
      &settle, [](uv_timer_t* t) { uv_stop(t->loop); }, static_cast<uint64_t>(window_s * 1000), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;
  std::printf(
      "%-34s wake-ups/min=%6.1f samples/min=%6.1f cpu=%.4f%% of a core (%.2f ms over %.0f s)\n",
      what, (wakeups - 1) * 60.0 / wall, (rec.count - samples0) * 60.0 / wall, 100.0 * cpu / wall,
      cpu * 1000, wall);
  source.Stop();
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&settle), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

void CostTable(double window) {
  std::printf(
      "\nper-source cost over %.0f s (wake-ups include ~3/min of the benchmark's own timers)\n",
      window);
  {
    testing::Xvfb x;
    auto lazy = NewX11IdleSource(x.display());
    Measure("x11 lazy (poll 5 s)", *lazy, false, window);
    auto eager = NewX11IdleSource(x.display());
    Measure("x11 eager (XSync alarm)", *eager, true, window);
    IdleTiming polled;
    polled.use_xsync = false;
    auto eager_polled = NewX11IdleSource(x.display(), polled);
    Measure("x11 eager (poll 100 ms)", *eager_polled, true, window);
  }
  {
    testing::DbusDaemon bus;
    testing::ScopedEnv session("DBUS_SESSION_BUS_ADDRESS", bus.address());
    testing::DbusMock mutter(bus, false, kMutter, {kMutter, kMutterPath, kMutter});
    AddMutter(bus.client());
    auto active = NewGnomeIdleSource();
    Measure("gnome, user active", *active, false, window);
    auto idle = NewGnomeIdleSource();
    Measure("gnome, user idle", *idle, true, window, [&] {
      sd_bus_call_method(bus.client(), kMutter, kMutterPath, kMutter, "TestIdle", nullptr, nullptr,
                         "t", uint64_t{60000});
    });
    const char* kSaver = "org.freedesktop.ScreenSaver";
    testing::DbusMock saver(bus, false, kSaver, {kSaver, "/org/freedesktop/ScreenSaver", kSaver});
    testing::MockAddMethod(bus.client(), kSaver, "/org/freedesktop/ScreenSaver", kSaver,
                           "GetSessionIdleTime", "", "u", "ret = 1000");
    auto kde_lazy = NewKdeIdleSource();
    Measure("kde lazy (poll 5 s)", *kde_lazy, false, window);
    auto kde_eager = NewKdeIdleSource();
    Measure("kde eager (poll 100 ms)", *kde_eager, true, window);
    auto kde_default = NewKdeIdleSource(KdeTiming());
    Measure("kde eager (poll 500 ms, default)", *kde_default, true, window);
  }
  {
    int master = -1, slave = -1;
    char name[256];
    if (openpty(&master, &slave, name, nullptr, nullptr) == 0) {
      auto tty = NewTtyIdleSource(name);
      Measure("tty lazy (poll 5 s)", *tty, false, window);
      auto tty_eager = NewTtyIdleSource(name);
      Measure("tty eager (poll 100 ms)", *tty_eager, true, window);
      auto tty_default = NewTtyIdleSource(name, TtyTiming());
      Measure("tty eager (poll 250 ms, default)", *tty_default, true, window);
      close(slave);
      close(master);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  double window = argc > 1 ? std::atof(argv[1]) : 20.0;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 50;
  std::printf("resume latency, %d rounds each\n", rounds);
  X11Latency(rounds, true);
  X11Latency(rounds, false);
  GnomeLatency(rounds);
  CostTable(window);
  return 0;
}
