// The gate's filter, its installation in the child, the listener's hand-over,
// and the blocking servers (the launcher before its loop runs, the guardian).
//
// libseccomp builds the filter but does not load it: its seccomp_load()
// generates the BPF at load time (it allocates, which a forked child of a
// threaded process must not do), and 2.5 cannot export to memory. So the
// parent exports the BPF through a memfd and the child loads it with the raw
// syscall.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "platform/gate.h"
#include "platform/linux/gate_notify.h"
#include "platform/linux/uv_handle.h"
#include "platform/unique_fd.h"

namespace dormant::platform {
namespace {

using namespace gate_internal;

Error SysError(const std::string& what, int code) {
  return Error{code, what + ": " + std::strerror(code)};
}

// Can this kernel, inside whatever container we run in, notify at all?
Expected<void> CheckNotifyAvailable() {
  uint32_t action = SECCOMP_RET_USER_NOTIF;
  if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0) return {};
  int e = errno;
  if (e == ENOSYS) return Error{e, "seccomp is not available (kernel built without it, or blocked)"};
  if (e == EOPNOTSUPP) return Error{e, "seccomp user notification is not supported by this kernel"};
  return SysError("seccomp(SECCOMP_GET_ACTION_AVAIL, USER_NOTIF)", e);
}

using Ctx = std::unique_ptr<void, void (*)(void*)>;

Expected<void> AddRules(scmp_filter_ctx ctx, const GateOptions& o) {
  auto fail = [](const char* what, int rc) { return SysError(std::string("seccomp_rule_add ") + what, -rc); };
  if (o.exec) {
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0); rc < 0) return fail("execve", rc);
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execveat), 0); rc < 0) return fail("execveat", rc);
  }
  if (o.connect) {
    // addrlen is a 32-bit socklen_t: compare the low half only.
    for (uint64_t len : {sizeof(sockaddr_in), sizeof(sockaddr_in6)}) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 1,
                                SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, len));
      if (rc < 0) return fail("connect", rc);
    }
  }
  return {};
}

Expected<std::vector<unsigned char>> ExportBpf(scmp_filter_ctx ctx) {
  UniqueFd mem(memfd_create("dormant-gate-bpf", MFD_CLOEXEC));
  if (!mem) return SysError("memfd_create", errno);
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0) return SysError("seccomp_export_bpf", -rc);
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0 ||
      size / sizeof(sock_filter) > BPF_MAXINSNS) {
    return Error{EINVAL, "seccomp_export_bpf: unexpected program size " + std::to_string(size)};
  }
  std::vector<unsigned char> bpf(size);
  if (pread(mem.get(), bpf.data(), bpf.size(), 0) != size) return SysError("reading the exported filter", EIO);
  return bpf;
}

Verdict DecideBlocking(int listener, const seccomp_notif& n, const GateDecider& decide, int* error) {
  *error = 0;
  if (!decide) return Verdict::kContinue;
  GateRequest req;
  switch (ReadRequest(listener, n, &req)) {
    case ReadResult::kRequest:
      break;
    case ReadResult::kStale:
      *error = ENOENT;
      return Verdict::kContinue;
    default:
      return Verdict::kContinue;
  }
  Verdict v = decide(req);
  if (v == Verdict::kRefuse) *error = RefusalErrno(req.kind);
  return v;
}

}  // namespace

Expected<std::unique_ptr<GateProgram>> CompileGate(const GateOptions& options) {
  if (!options.exec && !options.connect) return Error{EINVAL, "the gate has nothing to gate"};
  if (auto ok = CheckNotifyAvailable(); !ok) return ok.error();
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW), [](void* c) { seccomp_release(c); });
  if (!ctx) return Error{ENOMEM, "seccomp_init failed"};
  // Calls of another ABI (i386, x32) pass: this is a gate for honest
  // programs, and killing a 32-bit helper would break the app.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);  // the child sets it itself
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_API_SYSRAWRC, 1);
  if (auto ok = AddRules(ctx.get(), options); !ok) return ok.error();
  auto bpf = ExportBpf(ctx.get());
  if (!bpf) return bpf.error();
  auto program = std::make_unique<GateProgram>();
  program->options = options;
  program->bpf = std::move(*bpf);
  return program;
}

int InstallGateInChild(const GateProgram& program, int sock) {
  // Without no-new-privs an unprivileged process may not load a filter; with
  // it, setuid binaries run without their privilege (see GateUnsafeReason).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    int e = errno;
    SendListener(sock, -e);
    return -e;
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.bpf.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<unsigned char*>(program.bpf.data()));
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
  if (fd < 0 && errno == EINVAL) {
    fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  }
  if (fd < 0) {
    int e = errno;  // EBUSY: a filter above us already has a listener
    SendListener(sock, -e);
    return -e;
  }
  int r = SendListener(sock, static_cast<int>(fd));
  close(static_cast<int>(fd));
  return r;
}

int SendListener(int sock, int fd) {
  int32_t status = fd >= 0 ? 0 : fd;
  iovec iov{&status, sizeof status};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

Expected<int> ReceiveListener(int sock, int timeout_ms) {
  pollfd p{sock, POLLIN, 0};
  int64_t deadline = MonotonicMs() + timeout_ms;
  for (;;) {
    int wait = timeout_ms < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMs()));
    int r = poll(&p, 1, wait);
    if (r > 0) break;
    if (r == 0) return Error{ETIMEDOUT, "no seccomp listener from the child within " + std::to_string(timeout_ms) + " ms"};
    if (errno != EINTR) return SysError("poll(gate socket)", errno);
  }
  int32_t status = 0;
  iovec iov{&status, sizeof status};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0) return SysError("recvmsg(gate socket)", errno);
  UniqueFd fd;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      fd.reset(got);
    }
  }
  if (n == 0) return Error{EPIPE, "the child exited before sending the seccomp listener"};
  if (n != sizeof status) return Error{EPROTO, "a short message on the gate socket"};
  if (status < 0) return SysError("loading the seccomp gate in the child", -status);
  if (!fd) return Error{EPROTO, "the gate socket carried no listener"};
  return fd.release();
}

long ServeBlocking(int listener, const GateDecider& decide, int stop_fd, int timeout_ms) {
  int64_t deadline = MonotonicMs() + timeout_ms;
  long answered = 0;
  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int wait = timeout_ms < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMs()));
    int r = poll(fds, stop_fd >= 0 ? 2 : 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return answered;  // timed out
    if (fds[0].revents & POLLNVAL) return -EBADF;
    if (fds[0].revents & POLLIN) {
      seccomp_notif n{};
      int rr = Receive(listener, &n);
      if (rr == -EPIPE) return answered;
      if (rr == 0) {
        int error = 0;
        DecideBlocking(listener, n, decide, &error);
        if (error != ENOENT && Respond(listener, n.id, error) == 0) ++answered;
      } else if (rr != -ENOENT && rr != -EAGAIN) {
        return rr;
      }
    } else if (fds[0].revents & (POLLHUP | POLLERR)) {
      return answered;  // every process under the filter is gone
    }
    if (stop_fd >= 0 && fds[1].revents != 0) return answered;
  }
}

long ServeContinueForever(int listener_fd, const GateJournal* journal) {
  long answered = 0;
  if (journal != nullptr) {
    // Held by a supervisor that died: nobody else will ever be offered them.
    // An id answered meanwhile, or whose caller is gone, gives ENOENT.
    for (uint64_t id : journal->Held()) {
      if (Respond(listener_fd, id, 0) == 0) ++answered;
    }
  }
  long served = ServeBlocking(listener_fd, nullptr, -1, -1);
  return served < 0 ? served : answered + served;
}

namespace {

// No beat for kSilentMs, or none ever.
bool Silent(const GateJournal& journal) {
  int64_t beat = journal.last_beat_ms();
  return beat == 0 || MonotonicMs() - beat >= GateJournal::kSilentMs;
}

}  // namespace

long ContinueWaiting(int listener_fd, GateJournal* journal, bool* gone) {
  *gone = false;
  long answered = 0;
  // Once the supervisor beats again it may receive: we must not (two readers
  // racing for one notification leave the loser blocked in the kernel).
  auto back = [&] { return journal != nullptr && !Silent(*journal); };
  if (back()) return 0;
  if (journal != nullptr) {
    // Received by the silent supervisor, so offered to nobody else. Removed
    // once answered (or found answered): its late Take() still finds it in its
    // own list, and its answer then gives ENOENT.
    for (uint64_t id : journal->Held()) {
      int r = Respond(listener_fd, id, 0);
      if (r == 0) ++answered;
      if (r == 0 || r == -ENOENT) journal->Remove(id);
    }
  }
  for (;;) {
    if (back()) return answered;
    seccomp_notif n{};
    int r = Receive(listener_fd, &n);
    if (r == -ENOENT) continue;  // its caller went away first
    if (r == -EPIPE) *gone = true;
    if (r == -EAGAIN || r == -EPIPE) return answered;
    if (r != 0) return r;
    if (Respond(listener_fd, n.id, 0) == 0) ++answered;
  }
}

}  // namespace dormant::platform
