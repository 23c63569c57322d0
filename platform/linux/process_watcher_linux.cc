// The netlink process connector: the kernel multicasts one message per fork,
// exec and exit of every task on the machine. We keep thread-group leaders
// only (a thread's birth is no new process). Kernels before 6.6 refuse
// listeners without CAP_NET_ADMIN; the acknowledgement of our LISTEN request
// says so, and we report it as EPERM.
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "platform/linux/procfs.h"
#include "platform/process_watcher.h"

namespace dormant::platform {
namespace {

constexpr int kReceiveBuffer = 4 << 20;  // absorbs bursts such as a build's forks
constexpr auto kAckTimeout = std::chrono::milliseconds(1000);

Error Errno(int err, const char* what) { return Error{err, std::string(what) + ": " + std::strerror(err)}; }

// One LISTEN request: netlink header, connector header, then the op.
constexpr size_t kRequestSize = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));

// The event in a connector message. It sits at offset 36 of the datagram, and
// proc_event wants 8-byte alignment (its timestamp), so copy it out.
proc_event EventOf(const cn_msg* cn) {
  proc_event ev;
  std::memcpy(&ev, cn->data, sizeof ev);
  return ev;
}

class NetlinkWatcher final : public ProcessWatcher {
 public:
  explicit NetlinkWatcher(procfs::Fd sock) : sock_(std::move(sock)) {}

  int fd() const override { return sock_.get(); }

  std::vector<ProcEvent> Drain(bool* lost) override {
    std::vector<ProcEvent> events;
    if (lost) *lost = false;
    alignas(nlmsghdr) char buf[8192];
    for (;;) {
      sockaddr_nl from{};
      socklen_t from_len = sizeof from;
      ssize_t n = ::recvfrom(sock_.get(), buf, sizeof buf, MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) {
        if (errno == EINTR) continue;
        // The kernel dropped messages for us: say so and keep reading.
        if (errno == ENOBUFS) {
          if (lost) *lost = true;
          continue;
        }
        break;  // EAGAIN: nothing more now
      }
      if (from.nl_pid != 0) continue;  // only the kernel speaks here
      Parse(buf, static_cast<size_t>(n), &events);
    }
    return events;
  }

  // Waits for the kernel's answer to our LISTEN request: an event "none"
  // whose ack field is our request's ack + 1 (its seq is the kernel's own).
  // Returns its error code (0 when accepted). Events read meanwhile happened
  // before the watcher was handed out, so dropping them loses nothing owed.
  int AwaitAck(uint32_t ack) {
    const auto deadline = std::chrono::steady_clock::now() + kAckTimeout;
    alignas(nlmsghdr) char buf[8192];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{sock_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      ssize_t left = ::recv(sock_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (left <= 0) continue;
      for (auto* nl = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nl, left);
           nl = NLMSG_NEXT(nl, left)) {
        auto* cn = static_cast<cn_msg*>(NLMSG_DATA(nl));
        if (nl->nlmsg_len < NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event))) continue;
        proc_event ev = EventOf(cn);
        if (ev.what == proc_event::PROC_EVENT_NONE && cn->ack == ack + 1) {
          return static_cast<int>(ev.event_data.ack.err);
        }
      }
    }
    return 0;  // no answer: assume accepted; the periodic walk covers us
  }

 private:
  static void Parse(const char* buf, size_t len, std::vector<ProcEvent>* out) {
    ssize_t left = static_cast<ssize_t>(len);
    for (auto* nl = reinterpret_cast<const nlmsghdr*>(buf); NLMSG_OK(nl, left);
         nl = NLMSG_NEXT(nl, left)) {
      if (nl->nlmsg_type == NLMSG_ERROR || nl->nlmsg_type == NLMSG_NOOP) continue;
      if (nl->nlmsg_len < NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event))) continue;
      auto* cn = static_cast<const cn_msg*>(NLMSG_DATA(nl));
      if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC) continue;
      const proc_event ev = EventOf(cn);
      switch (ev.what) {
        case proc_event::PROC_EVENT_FORK: {
          const auto& f = ev.event_data.fork;
          if (f.child_pid == f.child_tgid) {
            out->push_back({ProcEvent::Kind::kFork, f.child_tgid, f.parent_tgid});
          }
          break;
        }
        case proc_event::PROC_EVENT_EXEC: {
          // exec makes the calling thread the leader, so pid == tgid here.
          out->push_back({ProcEvent::Kind::kExec, ev.event_data.exec.process_tgid, 0});
          break;
        }
        case proc_event::PROC_EVENT_EXIT: {
          const auto& e = ev.event_data.exit;
          if (e.process_pid == e.process_tgid) {
            out->push_back({ProcEvent::Kind::kExit, e.process_tgid, 0});
          }
          break;
        }
        default:
          break;
      }
    }
  }

  procfs::Fd sock_;
};

}  // namespace

Expected<std::unique_ptr<ProcessWatcher>> CreateProcessWatcher() {
  procfs::Fd sock(::socket(PF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  if (!sock.valid()) {
    int err = errno;
    if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT) return Error{ENOSYS, "no netlink connector"};
    return Errno(err, "socket(NETLINK_CONNECTOR)");
  }
  // Bigger buffers lose fewer events; SO_RCVBUFFORCE passes the sysctl cap
  // when we may, else the plain request is clamped to it.
  int size = kReceiveBuffer;
  if (::setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  addr.nl_pid = 0;  // let the kernel choose our port id
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    return Errno(err == EACCES ? EPERM : err, "bind(CN_IDX_PROC)");
  }
  alignas(nlmsghdr) char req[kRequestSize] = {};
  auto* nl = reinterpret_cast<nlmsghdr*>(req);
  nl->nlmsg_len = kRequestSize;
  nl->nlmsg_type = NLMSG_DONE;
  auto* cn = static_cast<cn_msg*>(NLMSG_DATA(nl));
  static uint32_t next_ack = 1;
  const uint32_t ack = (static_cast<uint32_t>(::getpid()) << 8) + next_ack++;
  cn->id.idx = CN_IDX_PROC;
  cn->id.val = CN_VAL_PROC;
  cn->ack = ack;
  cn->len = sizeof(proc_cn_mcast_op);
  const proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
  std::memcpy(cn->data, &op, sizeof op);
  if (::send(sock.get(), req, sizeof req, 0) < 0) {
    int err = errno;
    return Errno(err == EACCES ? EPERM : err, "send(PROC_CN_MCAST_LISTEN)");
  }
  auto watcher = std::make_unique<NetlinkWatcher>(std::move(sock));
  if (int err = watcher->AwaitAck(ack); err != 0) {
    return Errno(err == EACCES ? EPERM : static_cast<int>(err), "PROC_CN_MCAST_LISTEN");
  }
  return std::unique_ptr<ProcessWatcher>(std::move(watcher));
}

}  // namespace dormant::platform
