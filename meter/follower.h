// Follows providers' log directories on a libuv loop and feeds what is
// appended to an Ingestor. uv_fs_event (inotify) is not recursive on Linux, so
// every directory under a root gets its own watch, and a directory that
// appears later (Codex's next YYYY/MM/DD, a new Claude project) is watched and
// scanned when its parent reports it. A root that does not exist yet is looked
// for again every `retry` until it does.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "enforcer/expected.h"
#include "meter/ingest.h"

namespace dormant::meter {

/// A directory tree of one provider's logs.
struct LogRoot {
  ProviderKind kind = ProviderKind::kCodex;
  std::string dir;  // ".../sessions" or ".../projects"
};

/// The roots for the current user: $CODEX_HOME/sessions (default
/// ~/.codex/sessions), ~/.claude/projects and $CLAUDE_CONFIG_DIR/projects.
std::vector<LogRoot> DefaultLogRoots();

/// Every *.jsonl file under `root` (recursively), sorted by path.
std::vector<std::string> ListLogFiles(const std::string& root);

class LogFollower {
 public:
  LogFollower(uv_loop_t* loop, Ingestor* ingestor, uint64_t retry_ms = 2000);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  /// Watches `root` and reads every log under it from its saved offset.
  Expected<void> AddRoot(LogRoot root);
  /// Errors while reading (a file vanished, the ledger was busy) go here;
  /// the follower carries on.
  void SetOnError(std::function<void(const Error&)> fn) { on_error_ = std::move(fn); }
  /// Closes every handle; `done` runs once the loop has released them.
  void Close(std::function<void()> done = {});

  size_t watched_dirs() const { return watches_.size(); }

 private:
  struct Watch;
  void WatchTree(const std::string& dir, ProviderKind kind);
  bool WatchDir(const std::string& dir, ProviderKind kind);
  void Ingest(const std::string& path, ProviderKind kind);
  void OnFsEvent(Watch* w, const char* name, int events, int status);
  void OnRetry();
  void Report(const Error& e);
  void MaybeClosed();

  uv_loop_t* loop_;
  Ingestor* ingestor_;
  uint64_t retry_ms_;
  std::vector<LogRoot> pending_roots_;  // not there yet
  std::map<std::string, Watch*> watches_;
  uv_timer_t* timer_ = nullptr;
  size_t closing_ = 0;
  bool closed_ = false;
  std::function<void()> on_closed_;
  std::function<void(const Error&)> on_error_;
};

}  // namespace dormant::meter
