// The control socket: one Unix socket per running supervisor, in a 0700
// directory, serving only dormant's own uid. A request is one JSON object on one
// line; the reply is one JSON object on one line.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "enforcer/expected.h"

namespace dormant::launcher {

/// Largest request accepted, newline included.
inline constexpr size_t kMaxRequestBytes = 4096;

/// $XDG_RUNTIME_DIR/dormant, or /tmp/dormant-UID when unset. Created 0700 if
/// missing; refused if it is not a directory owned by us with mode 0700.
Expected<std::string> ControlDir();

/// Checks a name for use as a socket file name: [A-Za-z0-9._-], 1..64, not "." or "..".
Expected<void> CheckName(const std::string& name);

/// The socket path for `name`, or, with an empty name, the only one running.
Expected<std::string> ResolveSocket(const std::string& name);

/// Sends one request and waits (up to `timeout_ms`) for the reply.
Expected<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request,
                              int timeout_ms = 5000);

/// Parses one request line. Errors name what is wrong; they become error replies.
Expected<nlohmann::json> ParseRequest(const std::string& line);

/// Serves the socket on a libuv loop. `handler` gets each well-formed request
/// (an object with a string "cmd") and returns the reply.
class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  ControlServer(uv_loop_t* loop, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  /// Binds `path` (a stale socket there is replaced; a live one is an error).
  Expected<void> Listen(const std::string& path);
  /// Closes the listener and every connection, and removes the socket file.
  void Close();

 private:
  struct Conn;
  static void OnConnection(uv_stream_t* server, int status);
  void Reply(Conn* c, const nlohmann::json& reply);

  uv_loop_t* loop_;
  Handler handler_;
  uv_pipe_t* server_ = nullptr;
  std::string path_;
  std::vector<Conn*> conns_;
  friend struct ConnAccess;
};

}  // namespace dormant::launcher
