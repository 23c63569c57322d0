// macOS: `display notification` run by /usr/bin/osascript, started with
// posix_spawn and never waited for (the loop goes on at once; children are
// reaped without blocking). The text goes in as an AppleScript string literal
// inside one argv element: no shell ever sees it, so only AppleScript's own
// quoting matters. There is no urgency and no replacing of an earlier bubble.
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "platform/notifier.h"

extern char** environ;

namespace dormant::platform {
namespace {

// "text" as an AppleScript string literal: backslash and double quote
// escaped, tab and line breaks as \t \n \r, other control bytes (and NUL,
// which would cut the argv element short) as spaces.
std::string AppleScriptString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    }
  }
  return out + "\"";
}

class OsascriptNotifier : public Notifier {
 public:
  ~OsascriptNotifier() override { Close(); }

  Expected<void> Notify(const std::string&, const std::string& summary, const std::string& body,
                        Urgency) override {
    Reap();
    if (closed_) return Error{EBADF, "the notifier is closed"};
    std::string script = "display notification " + AppleScriptString(body) + " with title " +
                         AppleScriptString(summary);
    std::vector<std::string> args = {"/usr/bin/osascript", "-e", script};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd : {0, 1, 2}) {
      posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    pid_t pid = -1;
    int r = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
      unavailable_ = std::string("cannot run /usr/bin/osascript: ") + std::strerror(r);
      if (!reported_) {
        reported_ = true;
        spdlog::info("desktop notifications unavailable: {}; warnings go to this log only", unavailable_);
      }
      return Error{r, unavailable_};
    }
    children_.push_back(pid);
    return {};
  }
  const std::string& unavailable() const override { return unavailable_; }
  void Close() override {
    closed_ = true;
    Reap();
  }
  const char* name() const override { return "osascript"; }

 private:
  // Children that have exited; one that another waitpid(-1) reaped is gone too.
  void Reap() {
    std::erase_if(children_, [](pid_t pid) {
      int r = waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    });
  }
  std::vector<pid_t> children_;
  std::string unavailable_;
  bool reported_ = false;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Notifier> CreateNotifier(uv_loop_t*) { return std::make_unique<OsascriptNotifier>(); }

}  // namespace dormant::platform
