// The gate: a seccomp user-notification filter on exec and IP connect for the
// supervised tree. Every execve/execveat in the tree, and every connect whose
// address length is that of IPv4 or IPv6, waits in the kernel until dormant
// answers continue or refuse. Unix-socket connects and all other syscalls pass
// in the kernel with no round trip.
//
// It is a gate for honest programs, not a wall: a continued call re-reads its
// pointer arguments, so a hostile program can change them after we looked.
// See docs/sandbox.md.
//
// How the pieces fit (the launcher wires them):
//   auto program = CompileGate({});              // parent, before fork
//   socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
//   fork(); child: InstallGateInChild(*program, sv[1]); execvp(...)
//   parent: auto fd = ReceiveListener(sv[0], 5000);
//           the app's own exec now waits on the listener: serve it with
//           ServeBlocking(fd, decide, exec_error_pipe, ...) or a Gate on the loop
//           before blocking on anything else;
//           Gate gate(loop, fd, decide); gate.SetJournal(&journal); gate.Start();
//   guardian: holds a copy of the listener (sent with SendListener) WITHOUT
//           reading it, and the GateJournal (created before it forked); once
//           the supervisor is gone it calls ServeContinueForever(fd, &journal)
//           so the tree's calls keep succeeding. While the supervisor lives
//           but its heartbeat in the journal is silent (SIGSTOP, a debugger),
//           it answers with ContinueWaiting(fd, &journal) until it beats again.
// When no process holds the listener any more, every gated call fails with
// ENOSYS: someone must always hold it while the tree lives.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "enforcer/expected.h"

namespace dormant::platform {

/// Which calls the filter hands to dormant.
struct GateOptions {
  bool exec = true;     ///< execve and execveat
  bool connect = true;  ///< connect with an IPv4 or IPv6 address length
};

/// A filter compiled in the parent before fork: the raw BPF program (an array
/// of `struct sock_filter`), so the child only makes syscalls.
struct GateProgram {
  GateOptions options;
  std::vector<unsigned char> bpf;
};

/// Compiles the filter. Fails (ENOSYS, EOPNOTSUPP...) with a message saying why
/// when this kernel or container cannot give seccomp user notifications.
Expected<std::unique_ptr<GateProgram>> CompileGate(const GateOptions& options);

/// In the forked child, right before execve: sets no-new-privs, loads the
/// filter with a new listener, sends the listener over `sock` (SendListener)
/// and closes it. On failure sends the error instead, so the parent's
/// ReceiveListener reports it. Async-signal-safe, allocates nothing. Returns 0
/// or -errno. On a failed load the caller decides whether to exec without the
/// gate (no-new-privs stays set) or _exit; on a failed send (the parent is
/// gone) the filter is loaded with no listener, every exec would fail with
/// ENOSYS, and the child must _exit.
int InstallGateInChild(const GateProgram& program, int sock);

/// Sends one message over the Unix socket `sock`: a status (0, or -errno when
/// `fd` is negative: then -fd is sent as the error) and, when fd >= 0, the fd
/// itself (SCM_RIGHTS). Async-signal-safe. Returns 0 or -errno.
int SendListener(int sock, int fd);

/// Receives what SendListener sent, waiting at most `timeout_ms` (-1: forever).
/// The returned fd is close-on-exec and owned by the caller. A child that
/// failed to install the filter gives its errno; one that died first, EPIPE.
Expected<int> ReceiveListener(int sock, int timeout_ms);

/// One held call, read from the caller's memory.
struct GateRequest {
  enum class Kind { kExec, kConnect };
  Kind kind = Kind::kExec;
  uint64_t id = 0;  ///< the kernel's notification id (for Gate::Answer)
  int pid = 0;      ///< the calling thread's id in dormant's pid namespace
  // Exec: the path as the caller passed it, made absolute against the
  // caller's cwd or directory fd when relative; and its argv.
  std::string path;
  std::vector<std::string> argv;
  // Connect: AF_INET or AF_INET6, the numeric address and port, and whether it
  // is loopback (all of 127/8, ::1, and ::ffff:127.0.0.0/104).
  int family = 0;
  std::string address;
  int port = 0;
  bool loopback = false;
};

enum class Verdict {
  kContinue,  ///< the call runs as if no filter were there
  kRefuse,    ///< EPERM for an exec, ECONNREFUSED for a connect
  kDefer,     ///< held: answer later with Gate::Answer (or the watchdog will)
};

using GateDecider = std::function<Verdict(const GateRequest&)>;

struct GateCounters {
  uint64_t exec = 0;       ///< exec requests decided
  uint64_t connect = 0;    ///< IP connect requests decided
  uint64_t passed = 0;     ///< non-IP connects that matched the length test
  uint64_t continued = 0;  ///< answered continue (by decide, Answer, watchdog or error)
  uint64_t refused = 0;    ///< answered refuse
  uint64_t watchdog = 0;   ///< deferred past the watchdog limit: answered continue
  uint64_t errors = 0;     ///< internal errors (unreadable memory...): answered continue
  uint64_t stale = 0;      ///< the caller was gone (killed, or its call interrupted), or the
                           ///< guardian had already answered it while we were silent
  uint64_t guardian = 0;   ///< continued by the guardian while this supervisor was silent
};

/// The ids a supervisor has received and not yet answered, in a page of
/// memory shared with the guardian. A received notification is offered to no
/// other reader: if the supervisor dies holding one, only its id lets the
/// guardian answer it (any holder of the listener may answer any id). Create
/// it before the guardian forks (it inherits the mapping), or send fd().
///
/// The page also carries the supervisor's heartbeat: a Gate with a journal
/// beats at least every kBeatMs from its watchdog thread. A supervisor that is
/// stopped (SIGSTOP, a debugger, job control) stops beating with all its
/// threads; the guardian, seeing no beat for kSilentMs, answers the gate in its
/// place (continue: it has no policy) until the beat comes back.
class GateJournal {
 public:
  static Expected<GateJournal> Create();
  /// Maps a journal received from another process; takes ownership of `fd`.
  static Expected<GateJournal> Open(int fd);
  GateJournal(GateJournal&&) noexcept;
  GateJournal& operator=(GateJournal&&) noexcept;
  ~GateJournal();

  int fd() const { return fd_; }
  /// Lock-free; at most kSlots ids are kept (the watchdog bounds how long any
  /// is held, so more would be a flood, not a hold).
  void Add(uint64_t id);
  void Remove(uint64_t id);
  std::vector<uint64_t> Held() const;
  static constexpr size_t kSlots = 512;

  /// The supervisor runs: records CLOCK_MONOTONIC now.
  void Beat();
  /// CLOCK_MONOTONIC milliseconds of the last Beat(); 0 before the first.
  int64_t last_beat_ms() const;
  // One beat a second and three of silence: a second beat costs a wake-up of
  // an idle dormant (at 250 ms it doubled the idle CPU, bench/run-core.sh),
  // and a call made while dormant is stopped waits at most about 3 s.
  static constexpr int kBeatMs = 1000;
  static constexpr int kSilentMs = 3000;

  /// Set by the guardian while it answers in a silent supervisor's place.
  void SetGuardianServing(bool serving);
  bool guardian_serving() const;
  /// Calls the guardian continued in the supervisor's place, all told.
  void CountGuardianAnswers(uint64_t n);
  uint64_t guardian_answers() const;

 private:
  GateJournal(int fd, void* slots) : fd_(fd), slots_(slots) {}
  int fd_ = -1;
  void* slots_ = nullptr;
};

/// Serves a listener on a libuv loop. Each notification is read, its
/// arguments are read from the caller's memory, the notification is checked to
/// be still valid (the caller may have died or been signalled meanwhile), then
/// `decide` answers. Any internal error answers continue and is counted: the
/// gate never breaks the app. A request deferred longer than `watchdog_ms` is
/// answered continue and counted. When every process under the filter is gone
/// the gate stops polling (finished() turns true).
///
/// The limit holds even when the loop is stuck: a watchdog thread continues
/// what has been held (deferred, or in a `decide` that does not return) longer
/// than `watchdog_ms`, and receives and continues what waits while the loop
/// has received nothing for that long. Never destroy the Gate from inside
/// `decide` (Close() is fine).
class Gate {
 public:
  /// Takes ownership of `listener_fd`.
  Gate(uv_loop_t* loop, int listener_fd, GateDecider decide, int watchdog_ms = 500);
  ~Gate();
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  /// Records every held id in `journal` (not owned; outlives the gate). Call
  /// before Start().
  void SetJournal(GateJournal* journal);
  /// Starts polling, and the watchdog thread.
  Expected<void> Start();
  /// Answers a deferred request. False when `id` is not held (already answered
  /// by the watchdog, or never deferred); a caller gone meanwhile counts stale.
  bool Answer(uint64_t id, Verdict verdict);
  /// Answers every held request continue, stops, closes this listener copy.
  /// Safe to call from inside `decide`, and more than once.
  void Close();
  bool finished() const;
  /// Requests deferred and not yet answered.
  size_t held() const;
  GateCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Blocking, no loop: answers every notification on `listener_fd` with
/// `decide` (null: continue everything; kDefer counts as continue) until
/// `stop_fd` (if >= 0) polls readable or hung up, or every process under the
/// filter is gone, or `timeout_ms` passes (-1: no limit). For the launcher
/// while it waits for the app's exec (the exec itself waits on the gate), and
/// for the guardian. Returns the number of calls answered, or -errno.
long ServeBlocking(int listener_fd, const GateDecider& decide, int stop_fd, int timeout_ms);

/// The guardian's loop, once the supervisor is gone: continues every call until
/// no process under the filter is left. Returns the number answered. Never run
/// it while the supervisor still serves the listener: whichever reader receives
/// a notification is the only one that can answer it.
/// With a `journal`, first continues every id the dead supervisor held.
long ServeContinueForever(int listener_fd, const GateJournal* journal = nullptr);

/// The guardian's answer to a supervisor that lives but is silent (stopped):
/// without ever blocking, continues every id the journal holds (removing it)
/// and every call waiting on the listener now. An id the supervisor answers
/// meanwhile gives ENOENT, and the supervisor's own late answer to an id
/// answered here gives it ENOENT too (counted `stale`): neither is an error.
/// Set the journal's guardian_serving flag first, and call only while the
/// supervisor is silent: it receives nothing while the flag is set, and this
/// receives nothing once the supervisor beats again, so the two never race for
/// one notification (the loser would block in the kernel until the next).
/// Returns the number answered (or -errno on an unexpected receive error);
/// sets `*gone` when every process under the filter is gone (hung up).
long ContinueWaiting(int listener_fd, GateJournal* journal, bool* gone);

/// `auto` mode's pre-flight. No-new-privs stops setuid binaries from gaining
/// privilege; Chromium and Electron fall back to a setuid `chrome-sandbox` when
/// this user cannot create user namespaces. Returns why the gate should be
/// skipped for `app_path` (a path, or a name looked up in PATH), or nothing.
std::optional<std::string> GateUnsafeReason(const std::string& app_path);

/// Parts of the pre-flight, for tests and `dormant status`.
bool CanCreateUserNamespace();
/// Setuid helpers the app ships: setuid regular files next to its resolved
/// binary, or in directories its wrapper script names. In shared system bin
/// directories only files named like a sandbox count.
std::vector<std::string> SetuidHelpers(const std::string& app_path);

}  // namespace dormant::platform
