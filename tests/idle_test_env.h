// Real desktop components for the idle and power tests: an Xvfb server, a
// private dbus-daemon, python3-dbusmock services on it, and a libuv loop
// runner. Each object stops what it started when destroyed.
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "enforcer/time.h"
#include "platform/idle_source.h"
#include "platform/power_source.h"

namespace dormant::testing {

/// Spawns argv with `env` added to this environment; returns the pid (-1 on error).
pid_t Spawn(const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& env = {});
/// Runs argv to completion; returns its exit status (-1 on error).
int Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
/// SIGTERM, then SIGKILL after a grace, and reaps.
void Terminate(pid_t pid);

/// Xvfb on a free display (-displayfd), no TCP.
class Xvfb {
 public:
  Xvfb();
  ~Xvfb() { Kill(); }
  bool ok() const { return pid_ > 0 && !display_.empty(); }
  const std::string& display() const { return display_; }
  /// xdotool with DISPLAY set (e.g. {"mousemove", "10", "20"}); true on success.
  bool Xdotool(std::vector<std::string> args) const;
  void Kill();

 private:
  pid_t pid_ = -1;
  std::string display_;
};

/// A private dbus-daemon (session configuration, so anyone may own names).
class DbusDaemon {
 public:
  DbusDaemon();
  ~DbusDaemon();
  bool ok() const { return pid_ > 0 && !address_.empty(); }
  const std::string& address() const { return address_; }
  /// A client connection to it (for the test's own calls), or nullptr.
  sd_bus* client() const { return client_; }
  /// Waits until `name` has an owner.
  bool WaitForName(const std::string& name,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  bool HasName(const std::string& name) const;

 private:
  pid_t pid_ = -1;
  std::string address_;
  sd_bus* client_ = nullptr;
};

/// `/usr/bin/python3 -m dbusmock ...` on `bus`, waiting for `name`.
class DbusMock {
 public:
  /// `system` makes dbusmock use DBUS_SYSTEM_BUS_ADDRESS (templates such as
  /// logind and upower are system-bus services).
  DbusMock(const DbusDaemon& bus, bool system, const std::string& name,
           std::vector<std::string> args);
  ~DbusMock() { Kill(); }
  bool ok() const { return ok_; }
  void Kill();

 private:
  pid_t pid_ = -1;
  bool ok_ = false;
};

/// Sets an environment variable for its scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value);
  ~ScopedEnv();

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// Mock helpers (org.freedesktop.DBus.Mock on `path` of `dest`); true on success.
bool MockAddMethod(sd_bus* bus, const char* dest, const char* path, const char* interface,
                   const char* name, const char* in_sig, const char* out_sig,
                   const std::string& code);
bool MockEmitBool(sd_bus* bus, const char* dest, const char* path, const char* interface,
                  const char* signal, std::optional<bool> arg);
bool MockUpdateBool(sd_bus* bus, const char* dest, const char* path, const char* interface,
                    const char* prop, bool value);
bool MockUpdateIdle(sd_bus* bus, const char* dest, const char* path, bool hint,
                    uint64_t since_mono_usec);
/// Calls a method with no arguments and no result.
bool CallVoid(sd_bus* bus, const char* dest, const char* path, const char* interface,
              const char* method);

/// Runs `loop` until `done()` or `timeout`; true when done.
bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(20));
/// Runs the loop for `d` (handles stay as they are).
void RunFor(uv_loop_t* loop, std::chrono::milliseconds d);

/// Records what an idle source reports.
struct IdleRecorder : platform::IdleSource::Listener {
  struct Sample {
    enforcer::Duration idle_for;
    std::chrono::steady_clock::time_point at;
  };
  void OnIdleSample(enforcer::Duration idle_for) override {
    samples.push_back({idle_for, std::chrono::steady_clock::now()});
  }
  void OnIdleSourceFailed(const Error& why) override { failures.push_back(why.message); }
  std::vector<Sample> samples;
  std::vector<std::string> failures;
};

/// Records what a power source reports, in order ("sleep 1", "wake", "battery 1", "lock 0",
/// "failed").
struct PowerRecorder : platform::PowerSource::Listener {
  void OnPrepareForSleep(bool s) override {
    events.push_back(std::string("sleep ") + (s ? "1" : "0"));
  }
  void OnWake(enforcer::Duration) override { events.push_back("wake"); }
  void OnBatteryChanged(bool b) override {
    events.push_back(std::string("battery ") + (b ? "1" : "0"));
  }
  void OnLockChanged(bool l) override { events.push_back(std::string("lock ") + (l ? "1" : "0")); }
  void OnPowerSourceFailed(const Error& why) override {
    events.push_back("failed");
    failure = why.message;
  }
  bool Saw(const std::string& e) const;
  std::vector<std::string> events;
  std::string failure;
};

}  // namespace dormant::testing
