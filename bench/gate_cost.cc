// What the seccomp gate adds to the calls it holds (issue 6 targets: under
// 50 us per exec, under 30 us per loopback connect, zero for Unix sockets and
// other syscalls).
//   bench_gate_cost [N=1000]
// For each scenario a forked worker runs N calls and times each one, with the
// gate off and then on; the parent serves the listener with a Gate on a libuv
// loop (reading path and argv, or the address, as dormant does) and accepts
// the connections, in both modes alike.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "platform/gate.h"

namespace {

using namespace dormant::platform;
using Clock = std::chrono::steady_clock;

enum class Scenario { kExec, kTcp, kUnix, kGetppid, kRoundTrip };

struct Target {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = 0;
};

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double TimeOne(Scenario s, const Target& t) {
  auto start = Clock::now();
  if (s == Scenario::kExec) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    waitpid(pid, nullptr, 0);
  } else if (s == Scenario::kRoundTrip) {
    // A 16-byte AF_UNSPEC address: notified, passed by the gate at once, then
    // failed by the kernel. Times one bare notification round trip.
    static int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in unspec{};
    unspec.sin_family = AF_UNSPEC;
    (void)!connect(fd, reinterpret_cast<sockaddr*>(&unspec), sizeof unspec);
  } else if (s == Scenario::kGetppid) {
    for (int i = 0; i < 100; ++i) (void)getppid();
    return Us(Clock::now() - start) / 100;
  } else {
    int fd = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) != 0) {
      close(fd);
      return -1;  // counted as a failure by the parent
    }
    close(fd);
  }
  return Us(Clock::now() - start);
}

[[noreturn]] void Worker(Scenario s, const Target& t, int n, int out) {
  std::vector<double> us(n);
  for (int i = 0; i < 5; ++i) TimeOne(s, t);  // warm up
  for (int i = 0; i < n; ++i) us[i] = TimeOne(s, t);
  (void)!write(out, us.data(), us.size() * sizeof(double));
  _exit(0);
}

struct Server {
  uv_loop_t loop;
  uv_poll_t accept_poll, out_poll;
  int listen_fd = -1, out_fd = -1;
  std::vector<char> bytes;
  pid_t worker = -1;
};

// Runs one scenario in a worker, gated or not; returns per-call microseconds.
std::vector<double> Run(Scenario s, const Target& t, int listen_fd, int n, bool gated, bool nnp,
                        GateCounters* counters) {
  auto program = CompileGate({});
  if (!program) {
    std::fprintf(stderr, "gate unavailable: %s\n", program.error().message.c_str());
    std::exit(1);
  }
  int sv[2], pipefd[2];
  socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
  pipe2(pipefd, O_CLOEXEC);
  Server srv;
  srv.worker = fork();
  if (srv.worker == 0) {
    close(pipefd[0]);
    if (nnp) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);  // what the gate sets, without the filter
    if (gated && InstallGateInChild(**program, sv[1]) != 0) _exit(1);
    Worker(s, t, n, pipefd[1]);
  }
  close(sv[1]);
  close(pipefd[1]);
  uv_loop_init(&srv.loop);
  srv.out_fd = pipefd[0];
  srv.listen_fd = listen_fd;
  std::unique_ptr<Gate> gate;
  if (gated) {
    auto fd = ReceiveListener(sv[0], 10000);
    if (!fd) {
      std::fprintf(stderr, "%s\n", fd.error().message.c_str());
      std::exit(1);
    }
    gate = std::make_unique<Gate>(&srv.loop, *fd, [](const GateRequest& r) {
      // What a supervisor does at least: look at the program's name.
      static size_t sink = 0;
      sink += r.path.size() + r.address.size();
      return Verdict::kContinue;
    });
    gate->Start();
  }
  close(sv[0]);
  srv.accept_poll.data = srv.out_poll.data = &srv;
  if (listen_fd >= 0) {
    uv_poll_init(&srv.loop, &srv.accept_poll, listen_fd);
    uv_poll_start(&srv.accept_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* sv = static_cast<Server*>(p->data);
      int c;
      while ((c = accept4(sv->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) close(c);
    });
  }
  uv_poll_init(&srv.loop, &srv.out_poll, srv.out_fd);
  uv_poll_start(&srv.out_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
    auto* sv = static_cast<Server*>(p->data);
    char chunk[65536];
    ssize_t r = read(sv->out_fd, chunk, sizeof chunk);
    if (r > 0) {
      sv->bytes.insert(sv->bytes.end(), chunk, chunk + r);
      return;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&sv->out_poll), nullptr);
    if (sv->listen_fd >= 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&sv->accept_poll), nullptr);
    }
    waitpid(sv->worker, nullptr, 0);  // reaped: the gate hangs up and stops
  });
  uv_run(&srv.loop, UV_RUN_DEFAULT);
  if (gate) {
    *counters = gate->counters();
    gate.reset();
    uv_run(&srv.loop, UV_RUN_DEFAULT);
  }
  close(srv.out_fd);
  if (uv_loop_close(&srv.loop) != 0) std::fprintf(stderr, "loop closed with handles open\n");
  std::vector<double> us(srv.bytes.size() / sizeof(double));
  std::memcpy(us.data(), srv.bytes.data(), us.size() * sizeof(double));
  return us;
}

struct Stats {
  double p50, p99;
};

Stats Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t p99 = std::min(v.size() - 1, static_cast<size_t>(v.size() * 0.99));
  return {v[v.size() / 2], v[p99]};
}

// Off and on alternate in rounds, so that load from elsewhere on the machine
// falls on both alike.
void Compare(const char* what, Scenario s, const Target& t, int listen_fd, int n, bool nnp_off = false) {
  constexpr int kRounds = 10;
  std::vector<double> off, on;
  GateCounters total;
  int failed = 0;
  for (int r = 0; r < kRounds; ++r) {
    GateCounters c;
    for (bool gated : {false, true}) {
      auto& into = gated ? on : off;
      for (double us : Run(s, t, listen_fd, n / kRounds, gated, nnp_off && !gated, &c)) {
        if (us < 0) {
          ++failed;
        } else {
          into.push_back(us);
        }
      }
    }
    total.exec += c.exec;
    total.connect += c.connect;
  }
  Stats a = Summarise(off), b = Summarise(on);
  std::printf("%-24s off p50 %7.1f p99 %7.1f | on p50 %7.1f p99 %7.1f | added p50 %+6.1f p99 %+7.1f us"
              "  (held: %llu exec, %llu connect%s)\n",
              what, a.p50, a.p99, b.p50, b.p99, b.p50 - a.p50, b.p99 - a.p99,
              static_cast<unsigned long long>(total.exec), static_cast<unsigned long long>(total.connect),
              failed > 0 ? ("; " + std::to_string(failed) + " FAILED").c_str() : "");
}

int Listen(int family, Target* t, const std::string& unix_path) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  t->family = family;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&t->addr);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->len = sizeof *in;
  } else {
    auto* un = reinterpret_cast<sockaddr_un*>(&t->addr);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, unix_path.c_str(), sizeof un->sun_path - 1);
    unlink(unix_path.c_str());
    t->len = sizeof *un;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&t->addr), t->len) != 0 || listen(fd, 4096) != 0) {
    std::perror("bind/listen");
    std::exit(1);
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&t->addr), &t->len);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  std::printf("gate cost, %d calls per run, microseconds per call\n", n);
  Target none;
  Compare("fork+exec /bin/true", Scenario::kExec, none, -1, n);
  // The gate sets no-new-privs, which alone changes exec's cost: this line
  // compares against a worker with no-new-privs and no filter.
  Compare("  same, off = no-new-privs", Scenario::kExec, none, -1, n, true);
  Target tcp;
  int tcp_fd = Listen(AF_INET, &tcp, "");
  Compare("connect 127.0.0.1 (TCP)", Scenario::kTcp, tcp, tcp_fd, n);
  close(tcp_fd);
  std::string path = "/tmp/dormant-gate-bench-" + std::to_string(getpid()) + ".sock";
  Target un;
  int un_fd = Listen(AF_UNIX, &un, path);
  Compare("connect Unix socket", Scenario::kUnix, un, un_fd, n);
  close(un_fd);
  unlink(path.c_str());
  Compare("bare round trip", Scenario::kRoundTrip, none, -1, n);
  Compare("getppid (not gated)", Scenario::kGetppid, none, -1, n);
  return 0;
}
