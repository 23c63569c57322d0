// `auto` mode's pre-flight: would no-new-privs break this app's sandbox?
//
// Chromium (and so Electron) sandboxes its renderers with user namespaces
// when the user may create them, and otherwise falls back to a setuid helper
// (`chrome-sandbox`). Under no-new-privs that helper runs without its
// privilege and the app fails to start. So the gate is unsafe exactly when
// this user cannot create a user namespace AND the app ships a setuid helper.
// Where a security module lets only the app itself create namespaces (an
// AppArmor profile for it), our probe fails and we skip the gate: the safe
// direction.
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "platform/gate.h"

namespace dormant::platform {
namespace {

namespace fs = std::filesystem;

// Shared by many programs: a setuid `sudo` there is not the app's.
bool IsSharedBinDir(const fs::path& dir) {
  static const std::set<std::string> kShared = {"/bin", "/sbin", "/usr/bin", "/usr/sbin",
                                                "/usr/local/bin", "/usr/local/sbin"};
  return kShared.count(dir.string()) != 0;
}

std::string FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

// Absolute paths a wrapper script names (`exec /usr/lib/app/app "$@"`,
// `LIBDIR=/opt/app`): the directories the real binary may live in.
std::vector<fs::path> ScriptDirs(const fs::path& script) {
  std::vector<fs::path> dirs;
  std::ifstream in(script, std::ios::binary);
  char head[2] = {};
  if (!in.read(head, 2) || head[0] != '#' || head[1] != '!') return dirs;
  std::string text(8192, '\0');
  in.read(text.data(), text.size());
  text.resize(in.gcount());
  auto is_path_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '/' || (i > 0 && is_path_char(text[i - 1]))) continue;
    size_t j = i;
    while (j < text.size() && is_path_char(text[j])) ++j;
    std::error_code ec;
    fs::path p = fs::canonical(text.substr(i, j - i), ec);
    if (!ec && p.string().size() > 1) dirs.push_back(fs::is_directory(p, ec) ? p : p.parent_path());
    i = j;
  }
  return dirs;
}

void CollectSetuid(const fs::path& dir, std::set<std::string>* out) {
  bool shared = IsSharedBinDir(dir);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st{};
    if (stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_ISUID) == 0) continue;
    if (shared && it->path().filename().string().find("sandbox") == std::string::npos) continue;
    out->insert(it->path().string());
  }
}

}  // namespace

bool CanCreateUserNamespace() {
  // In a child: unshare() is refused in a threaded process, and we must not
  // change our own namespaces.
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::vector<std::string> SetuidHelpers(const std::string& app_path) {
  std::error_code ec;
  fs::path app = fs::canonical(FindInPath(app_path), ec);
  if (ec) return {};
  std::vector<fs::path> dirs = {app.parent_path()};
  for (auto& d : ScriptDirs(app)) dirs.push_back(d);
  std::set<std::string> found;
  std::set<fs::path> seen;
  for (const auto& d : dirs) {
    if (seen.insert(d).second) CollectSetuid(d, &found);
  }
  return {found.begin(), found.end()};
}

std::optional<std::string> GateUnsafeReason(const std::string& app_path) {
  auto helpers = SetuidHelpers(app_path);
  if (helpers.empty()) return std::nullopt;
  if (CanCreateUserNamespace()) return std::nullopt;
  return "this user cannot create user namespaces and '" + app_path + "' ships a setuid helper (" +
         helpers.front() + "); under the gate's no-new-privs that helper loses its privilege and the app's "
         "sandbox could not start";
}

}  // namespace dormant::platform
