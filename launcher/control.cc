#include "launcher/control.h"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "platform/unique_fd.h"

namespace dormant::launcher {
using platform::UniqueFd;
namespace {

Error SysError(const std::string& what) {
  int e = errno;
  return Error{e, what + ": " + std::strerror(e)};
}

// A directory we may put our socket in: ours, a directory, not a link, 0700.
Expected<void> CheckPrivateDir(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return SysError("lstat(" + dir + ")");
  if (!S_ISDIR(st.st_mode)) return Error{ENOTDIR, dir + " is not a directory"};
  if (st.st_uid != geteuid()) return Error{EPERM, dir + " is not owned by uid " + std::to_string(geteuid())};
  if ((st.st_mode & 0777) != 0700) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    return Error{EPERM, dir + " has mode " + mode + ", not 0700"};
  }
  return {};
}

Expected<void> MakePrivateDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir(" + dir + ")");
  return CheckPrivateDir(dir);
}

bool SocketAlive(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace

Expected<std::string> ControlDir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) {
    std::string dir = std::string(xdg) + "/dormant";
    if (auto r = MakePrivateDir(dir); !r) return r.error();
    return dir;
  }
  std::string dir = "/tmp/dormant-" + std::to_string(geteuid());
  if (auto r = MakePrivateDir(dir); !r) return r.error();
  return dir;
}

Expected<void> CheckName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") {
    return Error{EINVAL, "bad name '" + name + "': use 1 to 64 of [A-Za-z0-9._-]"};
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Error{EINVAL, "bad name '" + name + "': use 1 to 64 of [A-Za-z0-9._-]"};
    }
  }
  return {};
}

Expected<std::string> ResolveSocket(const std::string& name) {
  auto dir = ControlDir();
  if (!dir) return dir.error();
  if (!name.empty()) {
    if (auto r = CheckName(name); !r) return r.error();
    std::string path = *dir + "/" + name + ".sock";
    if (!SocketAlive(path)) return Error{ENOENT, "no supervisor named '" + name + "' is running"};
    return path;
  }
  std::vector<std::string> live;
  if (DIR* d = opendir(dir->c_str())) {
    while (dirent* e = readdir(d)) {
      std::string f = e->d_name;
      if (f.size() > 5 && f.ends_with(".sock") && SocketAlive(*dir + "/" + f)) live.push_back(f);
    }
    closedir(d);
  }
  if (live.empty()) return Error{ENOENT, "no supervisor is running (looked in " + *dir + ")"};
  if (live.size() > 1) {
    std::sort(live.begin(), live.end());
    std::string names;
    for (auto& f : live) names += (names.empty() ? "" : ", ") + f.substr(0, f.size() - 5);
    return Error{EEXIST, "several supervisors are running (" + names + "): pick one with --name"};
  }
  return *dir + "/" + live[0];
}

Expected<nlohmann::json> ParseRequest(const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{EINVAL, "request is not valid JSON"};
  if (!j.is_object()) return Error{EINVAL, "request must be a JSON object"};
  auto it = j.find("cmd");
  if (it == j.end() || !it->is_string()) return Error{EINVAL, "request needs a string field \"cmd\""};
  return j;
}

Expected<nlohmann::json> Call(const std::string& path, const nlohmann::json& request, int timeout_ms) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return SysError("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error{ENAMETOOLONG, "socket path too long: " + path};
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return SysError("connect(" + path + ")");
  }
  std::string out = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  for (size_t off = 0; off < out.size();) {
    ssize_t n = send(fd.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("send(" + path + ")");
    off += n;
  }
  std::string in;
  char buf[8192];
  while (in.find('\n') == std::string::npos) {
    pollfd p{fd.get(), POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return Error{ETIMEDOUT, "no reply from " + path + " within " + std::to_string(timeout_ms) + " ms"};
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("recv(" + path + ")");
    if (n == 0) break;
    in.append(buf, n);
    if (in.size() > (64u << 20)) return Error{EMSGSIZE, "reply too large"};
  }
  auto j = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (j.is_discarded()) return Error{EPROTO, "malformed reply from " + path};
  return j;
}

// ---- server ----

struct ControlServer::Conn {
  uv_pipe_t pipe;
  ControlServer* server;
  std::string buf;
  bool done = false;  // a reply was sent; ignore further input
};

struct ConnAccess {
  static void Alloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = new char[suggested];
    buf->len = suggested;
  }
  static void Closed(uv_handle_t* h) { delete reinterpret_cast<ControlServer::Conn*>(h->data); }
  static void Drop(ControlServer::Conn* c) {
    auto& v = c->server->conns_;
    v.erase(std::remove(v.begin(), v.end(), c), v.end());
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->pipe))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), Closed);
    }
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<ControlServer::Conn*>(s->data);
    std::unique_ptr<char[]> owned(buf->base);
    if (n < 0) {
      Drop(c);
      return;
    }
    if (c->done) return;
    c->buf.append(buf->base, n);
    size_t nl = c->buf.find('\n');
    if (nl == std::string::npos) {
      if (c->buf.size() >= kMaxRequestBytes) {
        c->server->Reply(c, {{"ok", false},
                             {"error", "request larger than " + std::to_string(kMaxRequestBytes) +
                                           " bytes"}});
      }
      return;
    }
    if (nl + 1 > kMaxRequestBytes) {
      c->server->Reply(c, {{"ok", false},
                           {"error", "request larger than " + std::to_string(kMaxRequestBytes) + " bytes"}});
      return;
    }
    auto req = ParseRequest(c->buf.substr(0, nl));
    if (!req) {
      c->server->Reply(c, {{"ok", false}, {"error", req.error().message}});
      return;
    }
    c->server->Reply(c, c->server->handler_(*req));
  }
};

ControlServer::ControlServer(uv_loop_t* loop, Handler handler)
    : loop_(loop), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { Close(); }

Expected<void> ControlServer::Listen(const std::string& path) {
  if (SocketAlive(path)) return Error{EADDRINUSE, "a supervisor already listens on " + path};
  unlink(path.c_str());  // stale socket of a supervisor that died
  server_ = new uv_pipe_t;
  uv_pipe_init(loop_, server_, 0);
  server_->data = this;
  mode_t old = umask(0077);
  int r = uv_pipe_bind(server_, path.c_str());
  umask(old);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(server_), 16, OnConnection);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(server_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    server_ = nullptr;
    return Error{-r, "listen(" + path + "): " + uv_strerror(r)};
  }
  path_ = path;
  return {};
}

void ControlServer::OnConnection(uv_stream_t* s, int status) {
  auto* self = static_cast<ControlServer*>(s->data);
  if (status < 0) return;
  auto* c = new Conn{};
  c->server = self;
  uv_pipe_init(self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), ConnAccess::Closed);
    return;
  }
  self->conns_.push_back(c);
  // Only our own uid may talk to us: the socket's directory is 0700 too, but a
  // descriptor can be passed around, so check the peer itself.
  uv_os_fd_t fd;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
    ConnAccess::Drop(c);
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), ConnAccess::Alloc, ConnAccess::OnRead);
}

void ControlServer::Reply(Conn* c, const nlohmann::json& reply) {
  c->done = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->pipe));
  struct Write {
    uv_write_t req;
    std::string data;
    Conn* conn;
  };
  auto* w = new Write{{}, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", c};
  uv_buf_t buf = uv_buf_init(w->data.data(), w->data.size());
  w->req.data = w;
  int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1, [](uv_write_t* req, int) {
    auto* w = static_cast<Write*>(req->data);
    ConnAccess::Drop(w->conn);
    delete w;
  });
  if (r != 0) {
    delete w;
    ConnAccess::Drop(c);
  }
}

void ControlServer::Close() {
  for (Conn* c : std::vector<Conn*>(conns_)) ConnAccess::Drop(c);
  if (server_) {
    uv_close(reinterpret_cast<uv_handle_t*>(server_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    server_ = nullptr;
    unlink(path_.c_str());
  }
}

}  // namespace dormant::launcher
