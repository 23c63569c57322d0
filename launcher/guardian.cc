#include "launcher/guardian.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "platform/process_table.h"

namespace dormant::launcher {

Expected<Guardian> Guardian::Start(const platform::GateJournal* journal) {
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

void Guardian::WillStop(int pid, uint64_t start_ticks) {
  char line[64];
  int n = std::snprintf(line, sizeof line, "S %d %llu\n", pid,
                        static_cast<unsigned long long>(start_ticks));
  Send(line, n);
}

void Guardian::Released(int pid) {
  char line[32];
  int n = std::snprintf(line, sizeof line, "C %d\n", pid);
  Send(line, n);
}

int GuardianMain(int fd, int gate_sock, const platform::GateJournal* journal) {
  std::map<int, uint64_t> stopped;
  std::string buf;
  char chunk[4096];
  int listener = -1;
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {gate_sock, POLLIN, 0}};
    if (poll(p, gate_sock >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (gate_sock >= 0 && p[1].revents) {
      // Hold the gate's listener, unread, for the day dormant is gone.
      auto got = platform::ReceiveListener(gate_sock, 0);
      if (got) {
        if (listener >= 0) close(listener);
        listener = *got;
      }
      close(gate_sock);
      gate_sock = -1;
    }
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
      if (std::sscanf(line.c_str(), "S %d %llu", &pid, &start) == 2) {
        stopped[pid] = start;
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
  for (auto [pid, start] : stopped) {
    auto info = table->Read(pid);
    if (!info || info->start_ticks != start) continue;
    for (int p : platform::Subtree(*table, pid)) {
      if (kill(p, SIGCONT) == 0) ++continued;
    }
  }
  if (continued > 0) {
    std::fprintf(stderr, "dormant guardian: supervisor gone; continued %d stopped process(es)\n",
                 continued);
  }
  if (gate_sock >= 0) close(gate_sock);
  if (listener >= 0) {
    // The tree's execs and connects wait on the gate: answer them all
    // "continue" until no process under the filter is left.
    platform::ServeContinueForever(listener, journal);
    close(listener);
  }
  return continued;
}

}  // namespace dormant::launcher
