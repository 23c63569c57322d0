#include "launcher/guardian.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "platform/process_table.h"

namespace dormant::launcher {
namespace {

using platform::GateJournal;

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// How often the guardian looks at the beat while it stands in (how soon it
// hands back once dormant is continued).
constexpr int kServingCheckMs = 100;

// The guardian's watch over a live dormant's gate. dormant beats in the
// journal every GateJournal::kBeatMs; when the beat has been silent for
// kSilentMs (dormant stopped: SIGSTOP, job control, a debugger; or stuck so
// hard that its watchdog thread cannot run), the app's execs and connects
// would wait on the gate until dormant runs again. So the guardian stands in:
// it continues every call, and every id dormant held (the guardian has no
// policy: failing open is the gate's rule), until dormant beats again. The
// journal's flag and the beat keep the two from ever receiving at once (see
// platform/linux/gate_server_linux.cc); an id both answer gives the second
// ENOENT, which neither side treats as an error.
class StandIn {
 public:
  explicit StandIn(GateJournal* journal) : journal_(journal) {}

  void Arm(int listener) {
    listener_ = listener;
    armed_ms_ = NowMs();  // a dormant that never beats is silent from here on
  }
  int listener() const { return listener_; }
  // The listener to poll: only while standing in, and not right after a
  // receive error (it may stay readable: poll() would not sleep).
  int PollFd() const { return serving_ && !failed_ ? listener_ : -1; }

  // How long poll() may sleep: until dormant would have been silent for the
  // limit (about once per kSilentMs while it beats), or the serving period.
  int Timeout() const {
    if (!Watching()) return -1;
    if (serving_) return kServingCheckMs;
    int64_t due = QuietSince() + GateJournal::kSilentMs - NowMs();
    return static_cast<int>(std::clamp<int64_t>(due + 1, 0, GateJournal::kSilentMs + 1));
  }

  // After every wake-up: start, go on with, or stop standing in.
  void Check() {
    if (!Watching()) return;
    if (!serving_) {
      if (!Silent()) return;
      if (HungUp()) {
        // The tree is gone (dormant's gate stopped beating with it): nothing
        // will ever wait on the gate again.
        close(listener_);
        listener_ = -1;
        return;
      }
      // The flag first, then the beat once more (ContinueWaiting does):
      // dormant beats first, then reads the flag.
      journal_->SetGuardianServing(true);
      serving_ = true;
      failed_ = false;
      answered_ = 0;
      std::fprintf(stderr,
                   "dormant guardian: dormant has not beaten for %lld ms (stopped?): continuing the gate's "
                   "calls until it runs again\n",
                   static_cast<long long>(NowMs() - QuietSince()));
    }
    bool gone = false;
    long n = platform::ContinueWaiting(listener_, journal_, &gone);
    if (n > 0) {
      journal_->CountGuardianAnswers(n);
      answered_ += n;
    }
    if (gone) {
      // Every process under the filter is gone, for good: nothing to guard.
      close(listener_);
      listener_ = -1;
    } else if (n < 0 && !failed_) {
      std::fprintf(stderr, "dormant guardian: receiving from the gate: %s\n", std::strerror(static_cast<int>(-n)));
    }
    failed_ = n < 0;
    if (gone || !Silent()) {
      journal_->SetGuardianServing(false);
      serving_ = false;
      if (!gone) {
        std::fprintf(stderr,
                     "dormant guardian: dormant runs again: the gate is its own again (%ld call(s) continued "
                     "meanwhile)\n",
                     answered_);
      }
    }
  }

 private:
  bool Watching() const { return journal_ != nullptr && listener_ >= 0; }
  int64_t QuietSince() const { return std::max(journal_->last_beat_ms(), armed_ms_); }
  bool Silent() const { return NowMs() - QuietSince() >= GateJournal::kSilentMs; }
  bool HungUp() const {
    pollfd p{listener_, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) == 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
  }

  GateJournal* journal_;
  int listener_ = -1;
  int64_t armed_ms_ = 0;
  bool serving_ = false;
  bool failed_ = false;
  long answered_ = 0;
};

}  // namespace

Expected<Guardian> Guardian::Start(GateJournal* journal) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error{errno, std::string("pipe2: ") + std::strerror(errno)};
  platform::UniqueFd rd(p[0]), wr(p[1]);
  int gs[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, gs) != 0) {
    return Error{errno, std::string("socketpair: ") + std::strerror(errno)};
  }
  platform::UniqueFd gate_ours(gs[0]), gate_theirs(gs[1]);
  // The guardian's pid comes back over a second pipe from the grandchild.
  int q[2];
  if (pipe2(q, O_CLOEXEC) != 0) return Error{errno, std::string("pipe2: ") + std::strerror(errno)};
  platform::UniqueFd qrd(q[0]), qwr(q[1]);
  pid_t child = fork();
  if (child < 0) return Error{errno, std::string("fork: ") + std::strerror(errno)};
  if (child == 0) {
    wr.reset();
    qrd.reset();
    gate_ours.reset();
    setsid();  // out of the terminal's process group: a ^C is not for us
    if (fork() != 0) _exit(0);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU}) {
      signal(sig, SIG_IGN);
    }
    pid_t self = getpid();
    (void)!write(qwr.get(), &self, sizeof self);
    qwr.reset();
    _exit(GuardianMain(rd.release(), gate_theirs.release(), journal) >= 0 ? 0 : 1);
  }
  qwr.reset();
  rd.reset();
  gate_theirs.reset();
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  Guardian g;
  ssize_t n;
  while ((n = read(qrd.get(), &g.pid_, sizeof g.pid_)) < 0 && errno == EINTR) {
  }
  if (n != sizeof g.pid_) return Error{EPIPE, "the guardian did not start"};
  g.fd_ = std::move(wr);
  g.gate_sock_ = std::move(gate_ours);
  return g;
}

void Guardian::GiveListener(int listener_fd) {
  if (gate_sock_) platform::SendListener(gate_sock_.get(), listener_fd);
}

void Guardian::Send(const char* line, int len) {
  if (!fd_) return;
  // Lines are far below PIPE_BUF, so each write is atomic; the guardian reads
  // as fast as we write, so the pipe never fills in practice.
  while (write(fd_.get(), line, len) < 0 && errno == EINTR) {
  }
}

void Guardian::WillStop(int pid, uint64_t start_ticks, const std::string& cgroup) {
  // "S PID START [CGROUP]": the cgroup's path is the rest of the line (a
  // newline in it would break the record: such a path is not sent).
  std::string line = "S " + std::to_string(pid) + " " + std::to_string(start_ticks);
  if (!cgroup.empty() && cgroup.find('\n') == std::string::npos) line += " " + cgroup;
  line += '\n';
  Send(line.data(), static_cast<int>(line.size()));
}

void Guardian::Released(int pid) {
  char line[32];
  int n = std::snprintf(line, sizeof line, "C %d\n", pid);
  Send(line, n);
}

int GuardianMain(int fd, int gate_sock, GateJournal* journal) {
  struct Record {
    uint64_t start = 0;
    std::string cgroup;  // empty unless the cgroup freezer froze the tree
  };
  std::map<int, Record> stopped;
  std::string buf;
  char chunk[4096];
  StandIn stand_in(journal);
  for (;;) {
    // Negative fds are ignored: the listener is polled only while standing in
    // (dormant reads it otherwise, and we would wake at each call).
    pollfd p[3] = {{fd, POLLIN, 0},
                   {gate_sock, POLLIN, 0},
                   {stand_in.PollFd(), POLLIN, 0}};
    if (poll(p, 3, stand_in.Timeout()) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (gate_sock >= 0 && p[1].revents) {
      // Hold the gate's listener, unread while dormant runs, for the day
      // dormant stops or is gone.
      auto got = platform::ReceiveListener(gate_sock, 0);
      if (got && stand_in.listener() < 0) {
        stand_in.Arm(*got);
      } else if (got) {
        close(*got);
      }
      close(gate_sock);
      gate_sock = -1;
    }
    stand_in.Check();
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, n);
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      int pid = 0;
      unsigned long long start = 0;
      int end = 0;
      if (std::sscanf(line.c_str(), "S %d %llu%n", &pid, &start, &end) == 2) {
        Record r{start, {}};
        if (static_cast<size_t>(end) + 1 < line.size() && line[end] == ' ') r.cgroup = line.substr(end + 1);
        stopped[pid] = std::move(r);
      } else if (std::sscanf(line.c_str(), "C %d", &pid) == 1) {
        stopped.erase(pid);
      }
    }
  }
  close(fd);
  // dormant is gone (or done). Continue every tree it left stopped, checking
  // start times so that a reused pid is never touched.
  auto table = platform::CreateProcessTable();
  int continued = 0;
  for (const auto& [pid, r] : stopped) {
    if (!r.cgroup.empty()) {
      // First the cgroup: its members may have outlived the root, and SIGCONT
      // does not thaw them. The directory is named after this root's pid and
      // start time, so it is never another's.
      int fd = open((r.cgroup + "/cgroup.freeze").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        if (write(fd, "0", 1) == 1) {
          int procs = open((r.cgroup + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
          char text[4096];
          ssize_t got = procs >= 0 ? read(procs, text, sizeof text) : -1;
          continued += static_cast<int>(std::count(text, text + std::max<ssize_t>(got, 0), '\n'));
          if (procs >= 0) close(procs);
        } else {
          std::fprintf(stderr, "dormant guardian: cannot thaw %s: %s\n", r.cgroup.c_str(), std::strerror(errno));
        }
        close(fd);
      }
    }
    auto info = table->Read(pid);
    if (!info || info->start_ticks != r.start) continue;
    for (int p : platform::Subtree(*table, pid)) {
      if (kill(p, SIGCONT) == 0 && r.cgroup.empty()) ++continued;
    }
  }
  if (continued > 0) {
    std::fprintf(stderr, "dormant guardian: supervisor gone; continued %d stopped process(es)\n",
                 continued);
  }
  if (gate_sock >= 0) close(gate_sock);
  if (int listener = stand_in.listener(); listener >= 0) {
    // The tree's execs and connects wait on the gate: answer them all
    // "continue" until no process under the filter is left.
    platform::ServeContinueForever(listener, journal);
    close(listener);
  }
  return continued;
}

}  // namespace dormant::launcher
