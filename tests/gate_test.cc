// The seccomp gate on real processes: a forked child installs the filter and
// execs this binary as the `gate_work` helper, which execs /bin/true and
// connects to real TCP and Unix listeners; the test serves the listener with a
// Gate on a real libuv loop and records what it was asked.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "launcher/guardian.h"
#include "platform/gate.h"
#include "platform/unique_fd.h"
#include "tests/helper.h"

namespace dormant::testing {
namespace {

namespace fs = std::filesystem;
using platform::Gate;
using platform::GateRequest;
using platform::UniqueFd;
using platform::Verdict;

void Say(const std::string& line) {
  std::string l = line + "\n";
  (void)!write(1, l.data(), l.size());
}

int ExecAndWait(const std::string& path, const std::string& arg) {
  pid_t pid = fork();
  if (pid == 0) {
    const char* argv[] = {"true", arg.c_str(), nullptr};
    execv(path.c_str(), const_cast<char**>(argv));
    _exit(errno);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

int ConnectTo(int family, const std::string& addr, int port) {
  UniqueFd s(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return errno;
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    inet_pton(AF_INET, addr.c_str(), &in->sin_addr);
    len = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr);
    len = sizeof *in6;
  }
  return connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : errno;
}

// `name` starting with '@' is abstract and connected with its exact length.
int ConnectUnix(const std::string& name) {
  UniqueFd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  socklen_t len = sizeof un;
  if (name[0] == '@') {
    std::memcpy(un.sun_path + 1, name.data() + 1, name.size() - 1);
    len = offsetof(sockaddr_un, sun_path) + name.size();
  } else {
    std::strncpy(un.sun_path, name.c_str(), sizeof un.sun_path - 1);
  }
  return connect(s.get(), reinterpret_cast<sockaddr*>(&un), len) == 0 ? 0 : errno;
}

// Runs each action and prints "<action> <errno>" (0: it worked):
//   exec:PATH:ARG  tcp:ADDR:PORT  tcp6:ADDR:PORT  unix:PATH|@ABSTRACT
//   ready (prints "ready")  wait (reads one byte from stdin)
DORMANT_HELPER(gate_work) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string verb = a.substr(0, a.find(':'));
    std::string rest = a.find(':') == std::string::npos ? "" : a.substr(a.find(':') + 1);
    int r = 0;
    if (verb == "exec") {
      r = ExecAndWait(rest.substr(0, rest.find(':')), rest.substr(rest.find(':') + 1));
    } else if (verb == "tcp" || verb == "tcp6") {
      size_t colon = rest.rfind(':');
      r = ConnectTo(verb == "tcp" ? AF_INET : AF_INET6, rest.substr(0, colon), std::atoi(rest.c_str() + colon + 1));
    } else if (verb == "unix") {
      r = ConnectUnix(rest);
    } else if (verb == "ready") {
      Say("ready");
      continue;
    } else if (verb == "wait") {
      char c;
      (void)!read(0, &c, 1);
      continue;
    }
    Say(verb + " " + std::to_string(r));
  }
  return 0;
}

// A listening socket; connects to it succeed without an accept.
struct Listener {
  UniqueFd fd;
  int port = 0;
  std::string path;
};

Listener ListenTcp(int family, const char* addr) {
  Listener l;
  l.fd.reset(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &in->sin_addr);
    len = sizeof *in;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr, &in6->sin6_addr);
    len = sizeof *in6;
  }
  if (bind(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(l.fd.get(), 16) != 0) {
    l.fd.reset();
    return l;
  }
  getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  l.port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return l;
}

Listener ListenUnix(const std::string& name) {
  Listener l;
  l.fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  socklen_t len = sizeof un;
  if (name[0] == '@') {
    std::memcpy(un.sun_path + 1, name.data() + 1, name.size() - 1);
    len = offsetof(sockaddr_un, sun_path) + name.size();
  } else {
    std::strncpy(un.sun_path, name.c_str(), sizeof un.sun_path - 1);
  }
  bind(l.fd.get(), reinterpret_cast<sockaddr*>(&un), len);
  listen(l.fd.get(), 16);
  l.path = name;
  return l;
}

bool Accepted(const Listener& l) {
  UniqueFd c(accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return static_cast<bool>(c);
}

// The gated helper: its pid, its stdin and stdout, and the listener.
struct Gated {
  pid_t pid = -1;
  UniqueFd in, out;
  int listener = -1;
  int status = -1;
  std::vector<std::string> lines;
};

// Forks a child that installs the gate and execs `gate_work` with `actions`.
// The child's own exec then waits for whoever serves the listener.
Gated StartGated(const std::vector<std::string>& actions, platform::GateOptions options = {}) {
  Gated g;
  auto program = platform::CompileGate(options);
  EXPECT_TRUE(program.ok()) << program.error().message;
  if (!program) return g;
  std::vector<std::string> argv_s = HelperArgv("gate_work", actions);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int sv[2], out[2], in[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  g.pid = fork();
  if (g.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (platform::InstallGateInChild(**program, sv[1]) != 0) _exit(120);
    execv(argv[0], argv.data());
    _exit(121);
  }
  close(sv[1]);
  close(out[1]);
  close(in[0]);
  g.out.reset(out[0]);
  g.in.reset(in[1]);
  auto listener = platform::ReceiveListener(sv[0], 20000);
  close(sv[0]);
  EXPECT_TRUE(listener.ok()) << listener.error().message;
  if (listener) g.listener = *listener;
  return g;
}

// Runs `loop` until the helper has exited (reaping it) and every handle is
// closed; `on_line` sees each line as it is printed. A safety timer kills a
// helper that hangs (a failure, not a timing assertion).
void RunUntilExit(uv_loop_t* loop, Gated* g, std::function<void(const std::string&)> on_line = {}) {
  struct Ctx {
    Gated* g;
    std::function<void(const std::string&)> on_line;
    std::string buf;
    uv_poll_t poll;
    uv_timer_t timer;
    bool timed_out = false;
  } ctx{g, std::move(on_line), {}, {}, {}};
  uv_poll_init(loop, &ctx.poll, g->out.get());
  uv_timer_init(loop, &ctx.timer);
  ctx.poll.data = ctx.timer.data = &ctx;
  uv_timer_start(
      &ctx.timer,
      [](uv_timer_t* t) {
        auto* c = static_cast<Ctx*>(t->data);
        c->timed_out = true;
        kill(c->g->pid, SIGKILL);
      },
      60000, 0);
  uv_poll_start(&ctx.poll, UV_READABLE, [](uv_poll_t* p, int, int) {
    auto* c = static_cast<Ctx*>(p->data);
    char chunk[512];
    ssize_t n = read(c->g->out.get(), chunk, sizeof chunk);
    if (n > 0) {
      c->buf.append(chunk, n);
      size_t nl;
      while ((nl = c->buf.find('\n')) != std::string::npos) {
        std::string line = c->buf.substr(0, nl);
        c->buf.erase(0, nl + 1);
        c->g->lines.push_back(line);
        if (c->on_line) c->on_line(line);
      }
      return;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&c->poll), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), nullptr);
    // Reaped, the helper stops being a user of the filter and the listener
    // hangs up: the Gate then stops by itself.
    while (waitpid(c->g->pid, &c->g->status, 0) < 0 && errno == EINTR) {
    }
  });
  uv_run(loop, UV_RUN_DEFAULT);
  EXPECT_FALSE(ctx.timed_out) << "the gated helper hung";
}

// "tcp 111" -> 111 for the n-th line starting with `verb`.
int Result(const Gated& g, const std::string& verb, int nth = 0) {
  for (const auto& l : g.lines) {
    if (l.rfind(verb + " ", 0) == 0 && nth-- == 0) return std::atoi(l.c_str() + verb.size() + 1);
  }
  return -1;
}

std::string ExeOf(int pid) {
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, n) : "";
}

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    dir_ = fs::temp_directory_path() / ("dormant-gate-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle was left open";
    fs::remove_all(dir_);
  }
  uv_loop_t loop_;
  fs::path dir_;
};

TEST_F(GateTest, ExecAndIpConnectAreSeenBeforeTheyRunUnixSocketsAreNot) {
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  Listener tcp2 = ListenTcp(AF_INET, "127.0.0.2");
  Listener tcp6 = ListenTcp(AF_INET6, "::1");
  Listener path_sock = ListenUnix((dir_ / "s.sock").string());
  // 13 bytes of name: its address length is 16, that of IPv4, so the filter
  // notifies and the gate passes it without asking.
  char name[16];
  std::snprintf(name, sizeof name, "@dormant-g%04d", getpid() % 10000);
  Listener abstract = ListenUnix(name);
  ASSERT_TRUE(tcp.fd && tcp2.fd && path_sock.fd && abstract.fd);
  ASSERT_EQ(abstract.path.size(), 14u);
  std::vector<std::string> actions = {"exec:/bin/true:--gate-marker",
                                      "tcp:127.0.0.1:" + std::to_string(tcp.port),
                                      "unix:" + path_sock.path,
                                      "unix:" + abstract.path,
                                      "tcp:127.0.0.2:" + std::to_string(tcp2.port)};
  if (tcp6.fd) actions.push_back("tcp6:::1:" + std::to_string(tcp6.port));

  Gated g = StartGated(actions);
  ASSERT_GE(g.listener, 0);
  std::vector<GateRequest> seen;
  std::vector<std::string> exe_at_decision;
  Gate gate(&loop_, g.listener, [&](const GateRequest& r) {
    seen.push_back(r);
    exe_at_decision.push_back(ExeOf(r.pid));
    return Verdict::kContinue;
  });
  ASSERT_TRUE(gate.Start().ok());
  RunUntilExit(&loop_, &g);

  EXPECT_TRUE(gate.finished()) << "the listener's hang-up was not seen";
  ASSERT_TRUE(WIFEXITED(g.status) && WEXITSTATUS(g.status) == 0) << g.status;
  EXPECT_EQ(Result(g, "exec"), 0);
  EXPECT_EQ(Result(g, "tcp"), 0);
  EXPECT_EQ(Result(g, "tcp", 1), 0);
  EXPECT_EQ(Result(g, "unix"), 0);
  EXPECT_EQ(Result(g, "unix", 1), 0);

  // The helper's own exec, then /bin/true's, each with its argv, decided while
  // the calling process still ran the old program.
  std::vector<GateRequest> execs, connects;
  for (size_t i = 0; i < seen.size(); ++i) {
    (seen[i].kind == GateRequest::Kind::kExec ? execs : connects).push_back(seen[i]);
    if (seen[i].kind == GateRequest::Kind::kExec) {
      EXPECT_EQ(exe_at_decision[i], SelfPath()) << "decided after the exec of " << seen[i].path;
    }
  }
  ASSERT_EQ(execs.size(), 2u);
  EXPECT_EQ(execs[0].path, SelfPath());
  ASSERT_GE(execs[0].argv.size(), 3u);
  EXPECT_EQ(execs[0].argv[1], "--helper");
  EXPECT_EQ(execs[0].argv[2], "gate_work");
  EXPECT_EQ(execs[1].path, "/bin/true");
  EXPECT_EQ(execs[1].argv, (std::vector<std::string>{"true", "--gate-marker"}));

  // Only the IP connects were asked about, in order; all of 127/8 and ::1 are loopback.
  ASSERT_EQ(connects.size(), tcp6.fd ? 3u : 2u);
  EXPECT_EQ(connects[0].family, AF_INET);
  EXPECT_EQ(connects[0].address, "127.0.0.1");
  EXPECT_EQ(connects[0].port, tcp.port);
  EXPECT_TRUE(connects[0].loopback);
  EXPECT_EQ(connects[1].address, "127.0.0.2");
  EXPECT_EQ(connects[1].port, tcp2.port);
  EXPECT_TRUE(connects[1].loopback);
  if (tcp6.fd) {
    EXPECT_EQ(Result(g, "tcp6"), 0);
    EXPECT_EQ(connects[2].family, AF_INET6);
    EXPECT_EQ(connects[2].address, "::1");
    EXPECT_TRUE(connects[2].loopback);
  }
  auto c = gate.counters();
  EXPECT_EQ(c.exec, 2u);
  EXPECT_EQ(c.connect, connects.size());
  EXPECT_EQ(c.passed, 1u) << "the 16-byte abstract Unix address";
  EXPECT_EQ(c.refused, 0u);
  EXPECT_EQ(c.errors, 0u);
  EXPECT_EQ(c.continued, 2u + connects.size() + 1u);
}

TEST_F(GateTest, RefusalGivesEpermToExecAndEconnrefusedToConnect) {
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  ASSERT_TRUE(tcp.fd);
  Gated g = StartGated({"exec:/bin/true:x", "tcp:127.0.0.1:" + std::to_string(tcp.port)});
  ASSERT_GE(g.listener, 0);
  Gate gate(&loop_, g.listener, [&](const GateRequest& r) {
    if (r.kind == GateRequest::Kind::kExec && r.path != "/bin/true") return Verdict::kContinue;
    return Verdict::kRefuse;
  });
  ASSERT_TRUE(gate.Start().ok());
  RunUntilExit(&loop_, &g);
  EXPECT_EQ(Result(g, "exec"), EPERM);
  EXPECT_EQ(Result(g, "tcp"), ECONNREFUSED);
  EXPECT_FALSE(Accepted(tcp)) << "a refused connect reached the listener";
  EXPECT_EQ(gate.counters().refused, 2u);
}

TEST_F(GateTest, DeferredRequestsAreAnsweredLaterOrByTheWatchdog) {
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  ASSERT_TRUE(tcp.fd);
  Gated g = StartGated({"exec:/bin/true:x", "tcp:127.0.0.1:" + std::to_string(tcp.port)});
  ASSERT_GE(g.listener, 0);
  uint64_t exec_id = 0;
  struct Later {
    Gate* gate = nullptr;
    uint64_t id = 0;
  } later;
  uv_timer_t answer;
  uv_timer_init(&loop_, &answer);
  answer.data = &later;
  // The /bin/true exec is never answered by us: the watchdog must. The
  // connect is answered (refused) from a later loop callback.
  Gate gate(
      &loop_, g.listener,
      [&](const GateRequest& r) {
        if (r.kind == GateRequest::Kind::kExec && r.path != "/bin/true") return Verdict::kContinue;
        if (r.kind == GateRequest::Kind::kExec) {
          exec_id = r.id;
          return Verdict::kDefer;
        }
        later.id = r.id;
        uv_timer_start(
            &answer,
            [](uv_timer_t* t) {
              auto* l = static_cast<Later*>(t->data);
              EXPECT_TRUE(l->gate->Answer(l->id, Verdict::kRefuse));
            },
            0, 0);
        return Verdict::kDefer;
      },
      /*watchdog_ms=*/300);
  later.gate = &gate;
  ASSERT_TRUE(gate.Start().ok());
  RunUntilExit(&loop_, &g);
  uv_close(reinterpret_cast<uv_handle_t*>(&answer), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(Result(g, "exec"), 0) << "the watchdog continued the held exec";
  EXPECT_EQ(Result(g, "tcp"), ECONNREFUSED);
  EXPECT_NE(exec_id, 0u);
  EXPECT_NE(later.id, 0u);
  auto c = gate.counters();
  EXPECT_EQ(c.watchdog, 1u);
  EXPECT_EQ(c.refused, 1u);
  EXPECT_EQ(gate.held(), 0u);
  EXPECT_FALSE(gate.Answer(exec_id, Verdict::kRefuse)) << "already answered by the watchdog";
}

// The loop is stuck in `decide` (it waits for the helper to print what the
// app did, which it can only do once its calls are answered): the watchdog
// thread continues the connect being decided, and receives and continues the
// exec that arrives while the loop cannot.
TEST_F(GateTest, TheWatchdogAnswersWhileTheLoopIsStuck) {
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  ASSERT_TRUE(tcp.fd);
  Gated g = StartGated({"tcp:127.0.0.1:" + std::to_string(tcp.port), "exec:/bin/true:x"});
  ASSERT_GE(g.listener, 0);
  bool saw_both = false;
  Gate gate(
      &loop_, g.listener,
      [&](const GateRequest& r) {
        if (r.kind == GateRequest::Kind::kExec) return Verdict::kContinue;
        std::string buf;
        for (int i = 0; i < 600 && buf.find("exec ") == std::string::npos; ++i) {
          pollfd p{g.out.get(), POLLIN, 0};
          if (poll(&p, 1, 100) <= 0) continue;
          char chunk[256];
          ssize_t n = read(g.out.get(), chunk, sizeof chunk);
          if (n <= 0) break;
          buf.append(chunk, n);
        }
        std::istringstream lines(buf);
        for (std::string l; std::getline(lines, l);) g.lines.push_back(l);
        saw_both = buf.find("exec ") != std::string::npos;
        return Verdict::kRefuse;  // too late: already continued
      },
      /*watchdog_ms=*/200);
  ASSERT_TRUE(gate.Start().ok());
  RunUntilExit(&loop_, &g);
  EXPECT_TRUE(saw_both) << "the app waited for the stuck loop";
  EXPECT_EQ(Result(g, "tcp"), 0);
  EXPECT_EQ(Result(g, "exec"), 0);
  auto c = gate.counters();
  EXPECT_EQ(c.watchdog, 2u);
  EXPECT_EQ(c.refused, 0u);
  EXPECT_EQ(c.exec, 1u) << "only the helper's own exec reached decide";
}

// The supervisor closes its listener copy mid-run. With a stand-in guardian
// holding another copy (and serving it only from then on), the tree's next
// exec and connect succeed; with nobody holding it, they fail with ENOSYS:
// what the guardian is there to prevent.
void SupervisorGoesAway(uv_loop_t* loop, bool with_guardian) {
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  ASSERT_TRUE(tcp.fd);
  std::string connect = "tcp:127.0.0.1:" + std::to_string(tcp.port);
  Gated g = StartGated({"exec:/bin/true:a", connect, "ready", "wait", "exec:/bin/true:b", connect});
  ASSERT_GE(g.listener, 0);
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  pid_t guardian = -1;
  if (with_guardian) {
    int copy = dup(g.listener);
    guardian = fork();
    if (guardian == 0) {
      char c;
      (void)!read(go[0], &c, 1);  // hold the listener, do not read it yet
      long n = platform::ServeContinueForever(copy);
      _exit(n < 0 ? 255 : static_cast<int>(std::min(n, 250L)));
    }
    close(copy);
  }
  close(go[0]);
  Gate gate(loop, g.listener, [](const GateRequest&) { return Verdict::kContinue; });
  ASSERT_TRUE(gate.Start().ok());
  RunUntilExit(loop, &g, [&](const std::string& line) {
    if (line != "ready") return;
    gate.Close();
    if (with_guardian) (void)!write(go[1], "g", 1);
    (void)!write(g.in.get(), "c", 1);
  });
  close(go[1]);
  EXPECT_EQ(Result(g, "exec", 0), 0);
  EXPECT_EQ(Result(g, "tcp", 0), 0);
  int expected = with_guardian ? 0 : ENOSYS;
  EXPECT_EQ(Result(g, "exec", 1), expected);
  EXPECT_EQ(Result(g, "tcp", 1), expected);
  EXPECT_EQ(gate.counters().continued, 3u);  // the helper's exec, exec a, connect
  if (with_guardian) {
    int status = 0;
    ASSERT_EQ(waitpid(guardian, &status, 0), guardian);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2) << "the guardian answers exec b and the connect, then sees the hang-up";
  }
}

TEST_F(GateTest, AGuardianHoldingTheListenerKeepsCallsWorkingAfterTheSupervisorCloses) {
  SupervisorGoesAway(&loop_, true);
}

TEST_F(GateTest, WithNoListenerLeftGatedCallsFailWithEnosys) { SupervisorGoesAway(&loop_, false); }

std::string ReadToEof(int fd) {
  std::string out;
  char chunk[512];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(chunk, n);
  }
  return out;
}

// A supervisor is killed while it holds a request (mid-decide). The kernel
// offers that request to no other reader; a guardian given the journal
// answers it by id, and the app goes on.
TEST_F(GateTest, AGuardianWithTheJournalAnswersWhatAKilledSupervisorHeld) {
  auto journal = platform::GateJournal::Create();
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  Gated g = StartGated({"exec:/bin/true:x"});
  ASSERT_GE(g.listener, 0);
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  int copy = dup(g.listener);
  pid_t guardian = fork();
  if (guardian == 0) {
    char c;
    (void)!read(go[0], &c, 1);
    long n = platform::ServeContinueForever(copy, &*journal);
    _exit(n < 0 ? 255 : static_cast<int>(std::min(n, 250L)));
  }
  close(copy);
  close(go[0]);
  pid_t supervisor = fork();
  if (supervisor == 0) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Gate gate(&loop, g.listener, [](const GateRequest& r) {
      if (r.path == "/bin/true") kill(getpid(), SIGKILL);
      return Verdict::kContinue;
    });
    gate.SetJournal(&*journal);
    if (!gate.Start().ok()) _exit(3);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(4);
  }
  close(g.listener);
  int status = 0;
  ASSERT_EQ(waitpid(supervisor, &status, 0), supervisor);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the supervisor was to die holding the exec";
  EXPECT_EQ(journal->Held().size(), 1u);
  (void)!write(go[1], "g", 1);
  close(go[1]);
  std::string out = ReadToEof(g.out.get());
  waitpid(g.pid, &g.status, 0);
  EXPECT_NE(out.find("exec 0"), std::string::npos) << out;
  ASSERT_EQ(waitpid(guardian, &status, 0), guardian);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "the held exec, answered from the journal";
}

// One line of `fd` (without its newline), waiting at most `timeout_ms` for
// it; empty at end of file or timeout.
std::string ReadLine(int fd, std::string* buf, int timeout_ms) {
  for (;;) {
    if (size_t nl = buf->find('\n'); nl != std::string::npos) {
      std::string line = buf->substr(0, nl);
      buf->erase(0, nl + 1);
      return line;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return "";
    char chunk[256];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) return "";
    buf->append(chunk, n);
  }
}

// Kills and reaps, on the way out of a failed test, the children it has not
// reaped itself (set to -1 once reaped).
struct ReapOnExit {
  std::vector<pid_t*> pids;
  ~ReapOnExit() {
    for (pid_t* p : pids) {
      if (*p <= 0) continue;
      kill(*p, SIGKILL);
      while (waitpid(*p, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
};

char ProcState(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// dormant is stopped while the app runs (here it stops itself in the middle
// of deciding an exec, so it also holds that request): its Gate's loop and
// watchdog thread stop with it. The real guardian loop, holding a copy of the
// listener and the journal, sees the beat go silent and stands in: it
// continues the held exec from the journal and the calls that follow, with
// no policy (a refusal rule is not applied). Once dormant is continued it
// beats again, the guardian hands back, and refusals work again; dormant's
// own late answer to the exec the guardian continued fails with ENOENT and
// is counted stale, not as an error.
TEST_F(GateTest, AGuardianStandsInWhileTheSupervisorIsStoppedAndHandsBack) {
  auto journal = platform::GateJournal::Create();
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  Listener tcp = ListenTcp(AF_INET, "127.0.0.1");
  ASSERT_TRUE(tcp.fd);
  std::string deny_exec = "exec:/bin/true:deny", deny_tcp = "tcp:127.0.0.1:" + std::to_string(tcp.port);
  Gated g = StartGated({deny_exec, deny_tcp,         // refused by the supervisor
                        "exec:/bin/true:stop",      // the supervisor stops while deciding it
                        deny_exec, deny_tcp,         // the supervisor is stopped
                        "ready", "wait",             // continued, and handed back
                        deny_exec, deny_tcp});       // refused again
  ASSERT_GE(g.listener, 0);
  pid_t supervisor = -1, guardian = -1;
  ReapOnExit reap{{&g.pid, &supervisor, &guardian}};

  int result[2];
  ASSERT_EQ(pipe2(result, O_CLOEXEC), 0);
  supervisor = fork();
  if (supervisor == 0) {
    close(result[0]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    platform::GateCounters c;
    {
      Gate gate(&loop, g.listener, [tcp_port = tcp.port](const GateRequest& r) {
        if (r.kind == GateRequest::Kind::kConnect) return r.port == tcp_port ? Verdict::kRefuse : Verdict::kContinue;
        if (r.path != "/bin/true" || r.argv.size() < 2) return Verdict::kContinue;
        if (r.argv[1] == "stop") kill(getpid(), SIGSTOP);  // every thread stops, holding this request
        return Verdict::kRefuse;  // for "stop": too late, the guardian has continued it
      });
      gate.SetJournal(&*journal);
      if (!gate.Start().ok()) _exit(3);
      uv_run(&loop, UV_RUN_DEFAULT);  // until the tree is gone
      c = gate.counters();
    }
    (void)!write(result[1], &c, sizeof c);
    _exit(uv_loop_close(&loop) == 0 ? 0 : 4);
  }
  close(result[1]);

  // The guardian: dormant's record pipe, and the listener sent over a socket
  // as Guardian::GiveListener does.
  int records[2], sock[2];
  ASSERT_EQ(pipe2(records, O_CLOEXEC), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock), 0);
  guardian = fork();
  if (guardian == 0) {
    close(records[1]);
    close(sock[0]);
    close(g.listener);
    _exit(launcher::GuardianMain(records[0], sock[1], &*journal) == 0 ? 0 : 1);
  }
  close(records[0]);
  close(sock[1]);
  ASSERT_EQ(platform::SendListener(sock[0], g.listener), 0);
  close(sock[0]);
  close(g.listener);

  // Every wait below is bounded: a call that hangs is a failure, not a delay.
  std::string buf;
  auto t0 = std::chrono::steady_clock::now();
  for (std::string line; (line = ReadLine(g.out.get(), &buf, 60000)) != "ready";) {
    ASSERT_FALSE(line.empty()) << "the app hung while the supervisor was stopped; so far: "
                               << ::testing::PrintToString(g.lines);
    g.lines.push_back(line);
  }
  auto took = std::chrono::steady_clock::now() - t0;
  std::cout << "  the stopped supervisor's calls took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms in all\n";
  EXPECT_EQ(ProcState(supervisor), 'T') << "the supervisor was to be stopped all along";
  EXPECT_TRUE(journal->guardian_serving());
  EXPECT_EQ(journal->guardian_answers(), 3u) << "the held exec, and the exec and connect after it";

  kill(supervisor, SIGCONT);
  for (int i = 0; i < 3000 && journal->guardian_serving(); ++i) usleep(10000);
  EXPECT_FALSE(journal->guardian_serving()) << "the guardian did not hand back within 30 s of SIGCONT";
  (void)!write(g.in.get(), "c", 1);
  for (std::string line; !(line = ReadLine(g.out.get(), &buf, 60000)).empty();) g.lines.push_back(line);
  ASSERT_EQ(waitpid(g.pid, &g.status, 0), g.pid);
  g.pid = -1;

  EXPECT_EQ(Result(g, "exec", 0), EPERM);
  EXPECT_EQ(Result(g, "tcp", 0), ECONNREFUSED);
  EXPECT_EQ(Result(g, "exec", 1), 0) << "the exec the supervisor held, continued from the journal";
  EXPECT_EQ(Result(g, "exec", 2), 0) << "continued by the guardian: it has no policy";
  EXPECT_EQ(Result(g, "tcp", 1), 0);
  EXPECT_EQ(Result(g, "exec", 3), EPERM) << "the supervisor decides again";
  EXPECT_EQ(Result(g, "tcp", 2), ECONNREFUSED);
  EXPECT_EQ(journal->guardian_answers(), 3u);

  platform::GateCounters c;
  int status = 0;
  ASSERT_EQ(waitpid(supervisor, &status, 0), supervisor);
  supervisor = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(read(result[0], &c, sizeof c), static_cast<ssize_t>(sizeof c));
  close(result[0]);
  EXPECT_EQ(c.refused, 4u);
  EXPECT_EQ(c.guardian, 3u);
  EXPECT_EQ(c.stale, 1u) << "its late answer to the exec the guardian had continued";
  EXPECT_EQ(c.errors, 0u);
  EXPECT_TRUE(journal->Held().empty());

  close(records[1]);  // dormant "exits": the guardian serves until the tree is gone, then ends
  ASSERT_EQ(waitpid(guardian, &status, 0), guardian);
  guardian = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  uv_run(&loop_, UV_RUN_DEFAULT);
}

// The hand-over between a running supervisor and a guardian that still
// stands in (dormant was just continued): two readers must never both try to
// receive, or the loser blocks in the kernel until the next call. While the
// guardian's flag is set the Gate leaves a waiting call alone, and
// ContinueWaiting receives nothing while the Gate beats; once the flag is
// cleared the Gate decides the call (a refusal works).
TEST_F(GateTest, TheGateAndAStandInGuardianNeverBothReceive) {
  auto journal = platform::GateJournal::Create();
  ASSERT_TRUE(journal.ok()) << journal.error().message;
  Gated g = StartGated({"ready", "wait", "exec:/bin/true:deny"});
  ASSERT_GE(g.listener, 0);
  UniqueFd copy(dup(g.listener));  // the stand-in's
  Gate gate(&loop_, g.listener, [](const GateRequest& r) {
    return r.path == "/bin/true" ? Verdict::kRefuse : Verdict::kContinue;
  });
  gate.SetJournal(&*journal);
  ASSERT_TRUE(gate.Start().ok());
  struct Look {
    Gate* gate;
    platform::GateJournal* journal;
    int copy;
    bool waited = false;
    uint64_t exec_seen = 0;
    long stand_in_took = -1;
  } look{&gate, &*journal, copy.get()};
  uv_timer_t later;
  uv_timer_init(&loop_, &later);
  later.data = &look;
  RunUntilExit(&loop_, &g, [&](const std::string& line) {
    if (line != "ready") return;
    journal->SetGuardianServing(true);
    (void)!write(g.in.get(), "c", 1);
    // Give the exec time to arrive and the Gate every chance to take it.
    uv_timer_start(&later, [](uv_timer_t* t) {
      auto* l = static_cast<Look*>(t->data);
      pollfd p{l->copy, POLLIN, 0};
      l->waited = poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
      l->exec_seen = l->gate->counters().exec;
      bool gone = false;
      l->stand_in_took = platform::ContinueWaiting(l->copy, l->journal, &gone);
      l->journal->SetGuardianServing(false);
    }, 300, 0);
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&later), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_TRUE(look.waited) << "the exec did not wait on the gate while the guardian's flag was set";
  EXPECT_EQ(look.exec_seen, 1u) << "only the helper's own exec, before the flag";
  EXPECT_EQ(look.stand_in_took, 0) << "the stand-in received while the supervisor beats";
  EXPECT_EQ(Result(g, "exec"), EPERM) << "the Gate decides once the flag is cleared";
  auto c = gate.counters();
  EXPECT_EQ(c.refused, 1u);
  EXPECT_EQ(c.guardian, 0u);
  EXPECT_EQ(c.errors, 0u);
}

TEST_F(GateTest, ServeBlockingAnswersUntilTheStopFdIsReadable) {
  Gated g = StartGated({"exec:/bin/true:x"}, {.exec = true, .connect = false});
  ASSERT_GE(g.listener, 0);
  UniqueFd listener(g.listener);
  std::vector<std::string> paths;
  // The helper's stdout closes when it exits: that is the stop fd here.
  long n = platform::ServeBlocking(
      listener.get(),
      [&](const GateRequest& r) {
        paths.push_back(r.path);
        return Verdict::kContinue;
      },
      g.out.get(), 60000);
  waitpid(g.pid, &g.status, 0);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(paths, (std::vector<std::string>{SelfPath(), "/bin/true"}));
  uv_run(&loop_, UV_RUN_DEFAULT);
}

TEST_F(GateTest, ASecondListenerInOneChainIsRefusedAndReportedToTheParent) {
  auto program = platform::CompileGate({});
  ASSERT_TRUE(program.ok()) << program.error().message;
  int a[2], b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, b), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int first = platform::InstallGateInChild(**program, a[1]);
    int second = platform::InstallGateInChild(**program, b[1]);
    _exit(first == 0 && second == -EBUSY ? 0 : 1);
  }
  close(a[1]);
  close(b[1]);
  auto first = platform::ReceiveListener(a[0], 20000);
  auto second = platform::ReceiveListener(b[0], 20000);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(first.ok()) << first.error().message;
  close(*first);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, EBUSY);
  EXPECT_NE(second.error().message.find("loading the seccomp gate"), std::string::npos);
  close(a[0]);
  close(b[0]);
}

TEST_F(GateTest, ReceiveListenerReportsAChildThatDiedFirst) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  close(sv[1]);
  waitpid(pid, nullptr, 0);
  auto r = platform::ReceiveListener(sv[0], 20000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EPIPE);
  close(sv[0]);
}

TEST(GateCompile, NothingToGateIsAnError) {
  auto r = platform::CompileGate({.exec = false, .connect = false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
  auto ok = platform::CompileGate({.exec = true, .connect = false});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_GT(ok.value()->bpf.size(), 0u);
  EXPECT_EQ(ok.value()->bpf.size() % 8, 0u);
}

// --- auto mode's pre-flight -------------------------------------------------

class GatePreflight : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dormant-preflight-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "app");
    fs::create_directories(dir_ / "bin");
    Write(dir_ / "app" / "electron-app", 0755);
    Write(dir_ / "app" / "chrome-sandbox", 04755);
    Write(dir_ / "app" / "plain-helper", 0755);
    std::ofstream(dir_ / "bin" / "launch") << "#!/bin/sh\nexec " << (dir_ / "app" / "electron-app").string()
                                           << " \"$@\"\n";
    fs::permissions(dir_ / "bin" / "launch", static_cast<fs::perms>(0755));
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void Write(const fs::path& p, mode_t mode) {
    std::ofstream(p) << "binary";
    ASSERT_EQ(chmod(p.c_str(), mode), 0);
  }
  fs::path dir_;
};

TEST_F(GatePreflight, FindsTheSetuidHelperNextToTheAppAndThroughAWrapperScript) {
  std::string sandbox = (dir_ / "app" / "chrome-sandbox").string();
  EXPECT_EQ(platform::SetuidHelpers((dir_ / "app" / "electron-app").string()), std::vector<std::string>{sandbox});
  EXPECT_EQ(platform::SetuidHelpers((dir_ / "bin" / "launch").string()), std::vector<std::string>{sandbox});
  ASSERT_EQ(chmod(sandbox.c_str(), 0755), 0);
  EXPECT_TRUE(platform::SetuidHelpers((dir_ / "app" / "electron-app").string()).empty());
}

TEST_F(GatePreflight, SetuidProgramsInSharedBinDirectoriesAreNotTheApps) {
  // /usr/bin holds setuid programs (su, passwd...) on most systems; none is a
  // helper of `env`.
  EXPECT_TRUE(platform::SetuidHelpers("/usr/bin/env").empty());
  EXPECT_TRUE(platform::SetuidHelpers("env").empty());
  EXPECT_TRUE(platform::SetuidHelpers("/nonexistent/app").empty());
}

TEST_F(GatePreflight, UnsafeOnlyWhenUserNamespacesAreUnavailableAndAHelperShips) {
  std::string app = (dir_ / "app" / "electron-app").string();
  // Where this user can create user namespaces (root here), the app's sandbox
  // uses them, and the helper is never run.
  if (platform::CanCreateUserNamespace()) {
    EXPECT_FALSE(platform::GateUnsafeReason(app).has_value());
  }
  // Take user namespaces away in a child (a seccomp filter refusing unshare)
  // and ask there.
  pid_t pid = fork();
  if (pid == 0) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
    if (seccomp_load(ctx) != 0) _exit(3);
    if (platform::CanCreateUserNamespace()) _exit(4);
    auto reason = platform::GateUnsafeReason(app);
    if (!reason || reason->find("chrome-sandbox") == std::string::npos) _exit(5);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: filter not loaded, 4: unshare still worked, 5: no reason given";
}

}  // namespace
}  // namespace dormant::testing
