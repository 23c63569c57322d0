// One seccomp notification: receive, read the caller's memory, answer.
//
// Raw ioctls rather than libseccomp's seccomp_notify_*: those turn every
// kernel error into -ECANCELED, and we must tell ENOENT (the caller is gone)
// from real failures.
#include "platform/linux/gate_notify.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace dormant::platform::gate_internal {
namespace {

// Kernel structs may grow; the kernel reads and writes its own size, so our
// buffers must be at least that large and zeroed.
struct NotifSizes {
  size_t notif = sizeof(seccomp_notif);
  size_t resp = sizeof(seccomp_notif_resp);
};

const NotifSizes& Sizes() {
  static const NotifSizes sizes = [] {
    NotifSizes s;
    seccomp_notif_sizes k{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &k) == 0) {
      s.notif = std::max<size_t>(s.notif, k.seccomp_notif);
      s.resp = std::max<size_t>(s.resp, k.seccomp_notif_resp);
    }
    return s;
  }();
  return sizes;
}

constexpr size_t kBufSize = 512;
constexpr size_t kMaxString = 4096;       // PATH_MAX
constexpr size_t kMaxArgs = 1024;         // argv entries read
constexpr size_t kMaxArgBytes = 64 << 10; // total argv bytes read
constexpr uint64_t kPage = 4096;

// Reads remote memory; never crosses a page boundary so that a partial read
// means "unmapped" rather than a short copy. Returns bytes read or -errno.
ssize_t ReadChunk(int pid, uint64_t addr, void* buf, size_t len) {
  len = std::min<uint64_t>(len, kPage - (addr % kPage));
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n >= 0) return n;
  if (errno != ENOSYS) return -errno;
  // Kernels built without process_vm_readv: /proc/PID/mem has the same check.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  n = pread(fd, buf, len, static_cast<off_t>(addr));
  int e = errno;
  close(fd);
  return n >= 0 ? n : -e;
}

int ReadExact(int pid, uint64_t addr, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ReadChunk(pid, addr, p, len);
    if (n < 0) return static_cast<int>(n);
    if (n == 0) return -EFAULT;
    p += n;
    addr += n;
    len -= n;
  }
  return 0;
}

// A NUL-terminated string of at most `max` bytes.
int ReadString(int pid, uint64_t addr, size_t max, std::string* out) {
  if (addr == 0) return -EFAULT;
  out->clear();
  char chunk[kPage];
  while (out->size() < max) {
    ssize_t n = ReadChunk(pid, addr, chunk, std::min(sizeof chunk, max - out->size()));
    if (n <= 0) return n < 0 ? static_cast<int>(n) : -EFAULT;
    auto* nul = static_cast<char*>(std::memchr(chunk, '\0', n));
    if (nul != nullptr) {
      out->append(chunk, nul - chunk);
      return 0;
    }
    out->append(chunk, n);
    addr += n;
  }
  return -ENAMETOOLONG;
}

int ReadArgv(int pid, uint64_t addr, std::vector<std::string>* argv) {
  argv->clear();
  if (addr == 0) return 0;  // Linux accepts a null argv
  size_t bytes = 0;
  for (size_t i = 0; i < kMaxArgs && bytes < kMaxArgBytes; ++i) {
    uint64_t ptr = 0;
    if (int r = ReadExact(pid, addr + i * sizeof(void*), &ptr, sizeof(void*)); r < 0) return r;
    if (ptr == 0) return 0;
    std::string arg;
    if (int r = ReadString(pid, ptr, kMaxArgBytes - bytes, &arg); r < 0 && r != -ENAMETOOLONG) {
      return r;
    }
    bytes += arg.size() + 1;
    argv->push_back(std::move(arg));
  }
  return 0;  // truncated: enough to recognise a program
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, n) : std::string();
}

// Makes an exec path absolute the way the kernel will resolve it: against
// the directory fd of execveat, or the caller's cwd.
std::string Absolute(int pid, int dirfd, const std::string& path, bool empty_path) {
  std::string proc = "/proc/" + std::to_string(pid);
  if (path.empty() && empty_path) return ReadLink(proc + "/fd/" + std::to_string(dirfd));
  if (!path.empty() && path[0] == '/') return path;
  std::string base = ReadLink(dirfd == AT_FDCWD ? proc + "/cwd" : proc + "/fd/" + std::to_string(dirfd));
  if (base.empty()) return path;
  return base == "/" ? "/" + path : base + "/" + path;
}

int ReadExec(const seccomp_notif& n, GateRequest* req) {
  req->kind = GateRequest::Kind::kExec;
  bool at = n.data.nr == SYS_execveat;
  int dirfd = at ? static_cast<int>(n.data.args[0]) : AT_FDCWD;
  uint64_t path_ptr = n.data.args[at ? 1 : 0];
  uint64_t argv_ptr = n.data.args[at ? 2 : 1];
  bool empty_path = at && (static_cast<int>(n.data.args[4]) & AT_EMPTY_PATH) != 0;
  std::string path;
  if (int r = ReadString(n.pid, path_ptr, kMaxString, &path); r < 0) return r;
  if (int r = ReadArgv(n.pid, argv_ptr, &req->argv); r < 0) return r;
  req->path = Absolute(n.pid, dirfd, path, empty_path);
  return 0;
}

bool IsLoopback6(const in6_addr& a) {
  if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
}

// Returns 0 (an IP request), 1 (another family: pass) or -errno.
int ReadConnect(const seccomp_notif& n, GateRequest* req) {
  req->kind = GateRequest::Kind::kConnect;
  size_t len = static_cast<size_t>(n.data.args[2] & 0xffffffffu);
  sockaddr_storage ss{};
  len = std::min(len, sizeof ss);
  if (len < sizeof(sa_family_t)) return 1;
  if (int r = ReadExact(n.pid, n.data.args[1], &ss, len); r < 0) return r;
  char text[INET6_ADDRSTRLEN] = {};
  req->family = ss.ss_family;
  if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    req->port = ntohs(in.sin_port);
    req->loopback = (ntohl(in.sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    req->port = ntohs(in6.sin6_port);
    req->loopback = IsLoopback6(in6.sin6_addr);
  } else {
    return 1;  // AF_UNIX with a short path, AF_UNSPEC (disconnect), ...
  }
  req->address = text;
  return 0;
}

}  // namespace

bool IsExec(int nr) { return nr == SYS_execve || nr == SYS_execveat; }
bool IsConnect(int nr) { return nr == SYS_connect; }

int Receive(int listener, seccomp_notif* out) {
  // Check first: SECCOMP_IOCTL_NOTIF_RECV blocks when nothing waits (even
  // when every process is gone), and whoever calls us must never block.
  pollfd p{listener, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR) {
  }
  if (r < 0) return -errno;
  if ((p.revents & POLLIN) == 0) {
    if (p.revents & POLLNVAL) return -EBADF;
    return (p.revents & (POLLHUP | POLLERR)) ? -EPIPE : -EAGAIN;
  }
  const NotifSizes& s = Sizes();
  if (s.notif > kBufSize) return -EOVERFLOW;
  alignas(8) unsigned char buf[kBufSize];
  std::memset(buf, 0, s.notif);
  while (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buf) != 0) {
    if (errno != EINTR) return -errno;
    std::memset(buf, 0, s.notif);
  }
  std::memcpy(out, buf, sizeof *out);
  return 0;
}

int Respond(int listener, uint64_t id, int error) {
  const NotifSizes& s = Sizes();
  if (s.resp > kBufSize) return -EOVERFLOW;
  alignas(8) unsigned char buf[kBufSize];
  std::memset(buf, 0, s.resp);
  seccomp_notif_resp resp{};
  resp.id = id;
  if (error == 0) {
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    resp.error = -error;
  }
  std::memcpy(buf, &resp, sizeof resp);
  while (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, buf) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

bool IdValid(int listener, uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

ReadResult ReadRequest(int listener, const seccomp_notif& n, GateRequest* req) {
  req->id = n.id;
  req->pid = static_cast<int>(n.pid);
  int r = 0;
  if (IsExec(n.data.nr)) {
    r = ReadExec(n, req);
  } else if (IsConnect(n.data.nr)) {
    r = ReadConnect(n, req);
  } else {
    r = 1;  // a filter of another shape: let it through
  }
  // Whatever we read may belong to another process if the caller died and
  // its pid was reused: only a still-valid id vouches for it.
  if (!IdValid(listener, n.id)) return ReadResult::kStale;
  if (r < 0) return ReadResult::kError;
  return r == 0 ? ReadResult::kRequest : ReadResult::kPass;
}

int RefusalErrno(GateRequest::Kind kind) {
  return kind == GateRequest::Kind::kExec ? EPERM : ECONNREFUSED;
}

}  // namespace dormant::platform::gate_internal
