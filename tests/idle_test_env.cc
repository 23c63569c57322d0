// Test plumbing for real X and D-Bus components (see idle_test_env.h).
#include "tests/idle_test_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace dormant::testing {
namespace {

std::vector<std::string> MergedEnv(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && extra.count(kv.substr(0, eq)) != 0) continue;
    out.push_back(kv);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t SpawnWith(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                posix_spawn_file_actions_t* actions) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  auto cargs = CStrings(args);
  auto cenv = CStrings(envs);
  pid_t pid = -1;
  if (posix_spawnp(&pid, cargs[0], actions, nullptr, cargs.data(), cenv.data()) != 0) return -1;
  return pid;
}

// Reads one line from `fd` within `timeout`.
std::string ReadLine(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) break;
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

}  // namespace

pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  return SpawnWith(argv, env, nullptr);
}

int Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  pid_t pid = Spawn(argv, env);
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void Terminate(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

Xvfb::Xvfb() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);  // dup2 clears CLOEXEC
  pid_ = SpawnWith(
      {"Xvfb", "-displayfd", "3", "-nolisten", "tcp", "-noreset", "-screen", "0", "640x480x24"}, {},
      &actions);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string number = ReadLine(fds[0], std::chrono::seconds(20));
  close(fds[0]);
  if (pid_ > 0 && !number.empty()) display_ = ":" + number;
}

bool Xvfb::Xdotool(std::vector<std::string> args) const {
  args.insert(args.begin(), "xdotool");
  return Run(args, {{"DISPLAY", display_}}) == 0;
}

void Xvfb::Kill() {
  Terminate(pid_);
  pid_ = -1;
}

DbusDaemon::DbusDaemon() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  pid_ = SpawnWith({"dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=3"}, {},
                   &actions);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  address_ = ReadLine(fds[0], std::chrono::seconds(20));
  close(fds[0]);
  if (address_.empty()) return;
  sd_bus* bus = nullptr;
  if (sd_bus_new(&bus) < 0) return;
  sd_bus_set_address(bus, address_.c_str());
  sd_bus_set_bus_client(bus, 1);
  if (sd_bus_start(bus) < 0) {
    sd_bus_unref(bus);
    return;
  }
  client_ = bus;
}

DbusDaemon::~DbusDaemon() {
  if (client_ != nullptr) sd_bus_flush_close_unref(client_);
  Terminate(pid_);
}

bool DbusDaemon::HasName(const std::string& name) const {
  if (client_ == nullptr) return false;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(client_, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                             "org.freedesktop.DBus", "NameHasOwner", nullptr, &reply, "s",
                             name.c_str());
  int has = 0;
  if (r >= 0) sd_bus_message_read(reply, "b", &has);
  sd_bus_message_unref(reply);
  return has != 0;
}

bool DbusDaemon::WaitForName(const std::string& name, std::chrono::milliseconds timeout) const {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (HasName(name)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

DbusMock::DbusMock(const DbusDaemon& bus, bool system, const std::string& name,
                   std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-m", "dbusmock"};
  if (system) argv.push_back("--system");
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = {{"DBUS_SESSION_BUS_ADDRESS", bus.address()},
                                            {"DBUS_SYSTEM_BUS_ADDRESS", bus.address()}};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dbusmock logs every call on stdout; keep the test output readable.
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_ = SpawnWith(argv, env, &actions);
  posix_spawn_file_actions_destroy(&actions);
  ok_ = pid_ > 0 && bus.WaitForName(name);
}

void DbusMock::Kill() {
  Terminate(pid_);
  pid_ = -1;
}

ScopedEnv::ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
  if (const char* old = std::getenv(name)) old_ = old;
  if (value) {
    setenv(name, value->c_str(), 1);
  } else {
    unsetenv(name);
  }
}

ScopedEnv::~ScopedEnv() {
  if (old_) {
    setenv(name_.c_str(), old_->c_str(), 1);
  } else {
    unsetenv(name_.c_str());
  }
}

bool MockAddMethod(sd_bus* bus, const char* dest, const char* path, const char* interface,
                   const char* name, const char* in_sig, const char* out_sig,
                   const std::string& code) {
  return sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Mock", "AddMethod", nullptr,
                            nullptr, "sssss", interface, name, in_sig, out_sig, code.c_str()) >= 0;
}

bool MockEmitBool(sd_bus* bus, const char* dest, const char* path, const char* interface,
                  const char* signal, std::optional<bool> arg) {
  sd_bus_message* m = nullptr;
  if (sd_bus_message_new_method_call(bus, &m, dest, path, "org.freedesktop.DBus.Mock",
                                     "EmitSignal") < 0) {
    return false;
  }
  sd_bus_message_append(m, "sss", interface, signal, arg ? "b" : "");
  sd_bus_message_open_container(m, 'a', "v");
  if (arg) sd_bus_message_append(m, "v", "b", static_cast<int>(*arg));
  sd_bus_message_close_container(m);
  int r = sd_bus_call(bus, m, 0, nullptr, nullptr);
  sd_bus_message_unref(m);
  return r >= 0;
}

bool MockUpdateBool(sd_bus* bus, const char* dest, const char* path, const char* interface,
                    const char* prop, bool value) {
  return sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Mock", "UpdateProperties",
                            nullptr, nullptr, "sa{sv}", interface, 1, prop, "b",
                            static_cast<int>(value)) >= 0;
}

bool MockUpdateIdle(sd_bus* bus, const char* dest, const char* path, bool hint,
                    uint64_t since_mono_usec) {
  return sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Mock", "UpdateProperties",
                            nullptr, nullptr, "sa{sv}", "org.freedesktop.login1.Session", 2,
                            "IdleHint", "b", static_cast<int>(hint), "IdleSinceHintMonotonic", "t",
                            since_mono_usec) >= 0;
}

bool CallVoid(sd_bus* bus, const char* dest, const char* path, const char* interface,
              const char* method) {
  return sd_bus_call_method(bus, dest, path, interface, method, nullptr, nullptr, "") >= 0;
}

bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  auto* tick = new uv_timer_t{};
  uv_timer_init(loop, tick);
  uv_timer_start(
      tick, [](uv_timer_t*) {}, 10, 10);  // bounds each uv_run below
  auto until = std::chrono::steady_clock::now() + timeout;
  bool ok = false;
  while (true) {
    if (done()) {
      ok = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(tick),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

void RunFor(uv_loop_t* loop, std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  RunUntil(
      loop, [&] { return std::chrono::steady_clock::now() >= until; }, d + std::chrono::seconds(1));
}

bool PowerRecorder::Saw(const std::string& e) const {
  for (const auto& x : events) {
    if (x == e) return true;
  }
  return false;
}

}  // namespace dormant::testing
