#include "meter/follower.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace dormant::meter {

namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsLogFile(const std::string& name) { return name.size() > 6 && name.ends_with(".jsonl"); }

// Entries of `dir`, without "." and "..": (name, is_dir).
std::vector<std::pair<std::string, bool>> Entries(const std::string& dir) {
  std::vector<std::pair<std::string, bool>> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* ent = readdir(d)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = ent->d_type == DT_DIR;
    if (ent->d_type == DT_UNKNOWN || ent->d_type == DT_LNK) is_dir = IsDir(dir + "/" + name);
    out.emplace_back(std::move(name), is_dir);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void ListInto(const std::string& dir, std::vector<std::string>* out) {
  for (const auto& [name, is_dir] : Entries(dir)) {
    std::string path = dir + "/" + name;
    if (is_dir) ListInto(path, out);
    else if (IsLogFile(name)) out->push_back(path);
  }
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::vector<LogRoot> DefaultLogRoots() {
  std::vector<LogRoot> roots;
  std::string home = Env("HOME");
  std::string codex = Env("CODEX_HOME");
  roots.push_back({ProviderKind::kCodex, (codex.empty() ? home + "/.codex" : codex) + "/sessions"});
  roots.push_back({ProviderKind::kClaude, home + "/.claude/projects"});
  std::string claude = Env("CLAUDE_CONFIG_DIR");
  if (!claude.empty() && claude + "/projects" != roots.back().dir)
    roots.push_back({ProviderKind::kClaude, claude + "/projects"});
  return roots;
}

std::vector<std::string> ListLogFiles(const std::string& root) {
  std::vector<std::string> out;
  ListInto(root, &out);
  return out;
}

struct LogFollower::Watch {
  uv_fs_event_t handle;
  LogFollower* self;
  std::string dir;
  ProviderKind kind;
};

LogFollower::LogFollower(uv_loop_t* loop, Ingestor* ingestor, uint64_t retry_ms)
    : loop_(loop), ingestor_(ingestor), retry_ms_(retry_ms) {}

LogFollower::~LogFollower() {
  // Close() must have run and the loop released the handles; if the caller
  // never ran the loop again, at least stop the callbacks reaching us.
  for (auto& [dir, w] : watches_) w->self = nullptr;
}

void LogFollower::Report(const Error& e) {
  if (on_error_) on_error_(e);
}

Expected<void> LogFollower::AddRoot(LogRoot root) {
  if (closed_) return Error{EINVAL, "follower closed"};
  if (!IsDir(root.dir)) {
    pending_roots_.push_back(std::move(root));
    if (!timer_) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop_, timer_);
      timer_->data = this;
      uv_timer_start(
          timer_, [](uv_timer_t* t) { static_cast<LogFollower*>(t->data)->OnRetry(); }, retry_ms_,
          retry_ms_);
    }
    return {};
  }
  WatchTree(root.dir, root.kind);
  return {};
}

void LogFollower::OnRetry() {
  std::vector<LogRoot> still;
  for (LogRoot& r : pending_roots_) {
    if (IsDir(r.dir)) WatchTree(r.dir, r.kind);
    else still.push_back(std::move(r));
  }
  pending_roots_ = std::move(still);
  if (pending_roots_.empty() && timer_) uv_timer_stop(timer_);
}

bool LogFollower::WatchDir(const std::string& dir, ProviderKind kind) {
  if (watches_.count(dir)) return false;
  auto* w = new Watch{{}, this, dir, kind};
  uv_fs_event_init(loop_, &w->handle);
  w->handle.data = w;
  int rc = uv_fs_event_start(
      &w->handle,
      [](uv_fs_event_t* h, const char* name, int events, int status) {
        auto* w = static_cast<Watch*>(h->data);
        if (w->self) w->self->OnFsEvent(w, name, events, status);
      },
      dir.c_str(), 0);
  if (rc != 0) {
    Report(Error{-rc, "watch " + dir + ": " + uv_strerror(rc)});
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
             [](uv_handle_t* h) { delete static_cast<Watch*>(h->data); });
    return false;
  }
  watches_[dir] = w;
  return true;
}

void LogFollower::WatchTree(const std::string& dir, ProviderKind kind) {
  // Watch first, then list: a file created in between is seen by one or both
  // (reading twice is harmless: offsets and keys make it a no-op).
  WatchDir(dir, kind);
  for (const auto& [name, is_dir] : Entries(dir)) {
    std::string path = dir + "/" + name;
    if (is_dir) WatchTree(path, kind);
    else if (IsLogFile(name)) Ingest(path, kind);
  }
}

void LogFollower::Ingest(const std::string& path, ProviderKind kind) {
  auto r = ingestor_->IngestFile(path, kind, /*flush=*/true);
  if (!r && r.error().code != ENOENT) Report(r.error());
}

void LogFollower::OnFsEvent(Watch* w, const char* name, int /*events*/, int status) {
  if (closed_) return;
  if (status < 0) {
    Report(Error{-status, "watch " + w->dir + ": " + uv_strerror(status)});
    return;
  }
  if (!name || !*name) {
    WatchTree(w->dir, w->kind);  // no name: look at everything in the directory
    return;
  }
  std::string path = w->dir + "/" + name;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    // Gone. If it was a watched directory, drop its watch (and those below).
    auto it = watches_.lower_bound(path);
    while (it != watches_.end() &&
           (it->first == path || it->first.compare(0, path.size() + 1, path + "/") == 0)) {
      Watch* gone = it->second;
      it = watches_.erase(it);
      ++closing_;
      uv_close(reinterpret_cast<uv_handle_t*>(&gone->handle), [](uv_handle_t* h) {
        auto* g = static_cast<Watch*>(h->data);
        LogFollower* self = g->self;
        delete g;
        if (self) {
          --self->closing_;
          self->MaybeClosed();
        }
      });
    }
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    if (!watches_.count(path)) WatchTree(path, w->kind);
  } else if (S_ISREG(st.st_mode) && IsLogFile(name)) {
    Ingest(path, w->kind);
  }
}

void LogFollower::Close(std::function<void()> done) {
  if (closed_) return;
  closed_ = true;
  on_closed_ = std::move(done);
  for (auto& [dir, w] : watches_) {
    ++closing_;
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), [](uv_handle_t* h) {
      auto* g = static_cast<Watch*>(h->data);
      LogFollower* self = g->self;
      delete g;
      if (self) {
        --self->closing_;
        self->MaybeClosed();
      }
    });
  }
  watches_.clear();
  if (timer_) {
    ++closing_;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) {
      auto* self = static_cast<LogFollower*>(h->data);
      delete reinterpret_cast<uv_timer_t*>(h);
      --self->closing_;
      self->MaybeClosed();
    });
    timer_ = nullptr;
  }
  MaybeClosed();
}

void LogFollower::MaybeClosed() {
  if (closed_ && closing_ == 0 && on_closed_) {
    auto done = std::move(on_closed_);
    on_closed_ = nullptr;
    done();
  }
}

}  // namespace dormant::meter
