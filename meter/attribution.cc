#include "meter/attribution.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

namespace dormant::meter {

namespace {

std::vector<std::string> ReadEnviron(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> env;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find('\0', pos);
    if (end == std::string::npos) end = all.size();
    if (end > pos) env.push_back(all.substr(pos, end - pos));
    pos = end + 1;
  }
  return env;
}

std::string Readlink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool Under(const std::string& path, const std::string& dir) {
  return !dir.empty() && path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

std::string LogRootFromEnv(const std::vector<std::string>& env, ProviderKind kind) {
  auto get = [&](std::string_view name) -> std::optional<std::string> {
    for (const std::string& e : env) {
      if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
        return e.substr(name.size() + 1);
    }
    return std::nullopt;
  };
  std::string home = get("HOME").value_or("");
  if (kind == ProviderKind::kCodex) {
    auto codex_home = get("CODEX_HOME");
    std::string base = codex_home && !codex_home->empty() ? *codex_home : home + "/.codex";
    return base + "/sessions";
  }
  auto config = get("CLAUDE_CONFIG_DIR");
  std::string base = config && !config->empty() ? *config : home + "/.claude";
  return base + "/projects";
}

std::string LogRootOf(int pid, ProviderKind kind) {
  std::vector<std::string> env = ReadEnviron(pid);
  if (env.empty()) return {};
  return LogRootFromEnv(env, kind);
}

std::vector<std::string> OpenLogFiles(int pid) {
  std::vector<std::string> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    std::string target = Readlink(dir + "/" + ent->d_name);
    if (target.size() > 6 && target.ends_with(".jsonl")) out.push_back(target);
  }
  closedir(d);
  return out;
}

std::string CwdOf(int pid) { return Readlink("/proc/" + std::to_string(pid) + "/cwd"); }

void Attributor::AddProvider(int pid, ProviderKind kind, std::string client) {
  AddProvider(pid, kind, LogRootOf(pid, kind), CwdOf(pid), std::move(client));
}

void Attributor::AddProvider(int pid, ProviderKind kind, std::string log_root, std::string cwd,
                             std::string client) {
  providers_[pid] = Provider{kind, std::move(log_root), std::move(cwd), std::move(client)};
}

void Attributor::RemoveProvider(int pid) {
  providers_.erase(pid);
  for (auto it = file_owner_.begin(); it != file_owner_.end();) {
    it = it->second == pid ? file_owner_.erase(it) : std::next(it);
  }
}

std::optional<int> Attributor::ByOpenFile(ProviderKind kind, const std::string& source) {
  if (auto it = file_owner_.find(source); it != file_owner_.end()) {
    if (providers_.count(it->second)) return it->second;
    file_owner_.erase(it);
  }
  for (const auto& [pid, p] : providers_) {
    if (p.kind != kind) continue;
    for (const std::string& f : OpenLogFiles(pid)) file_owner_[f] = pid;
  }
  if (auto it = file_owner_.find(source); it != file_owner_.end()) return it->second;
  return std::nullopt;
}

std::optional<int> Attributor::Attribute(const UsageEvent& event, const std::string& source) {
  if (providers_.empty()) return std::nullopt;
  if (auto pid = ByOpenFile(event.provider, source)) return pid;
  std::vector<int> candidates;
  for (const auto& [pid, p] : providers_) {
    if (p.kind == event.provider && Under(source, p.log_root)) candidates.push_back(pid);
  }
  if (candidates.size() == 1) return candidates[0];
  if (candidates.empty()) return std::nullopt;
  // Several providers share a log root: narrow by client, then by cwd.
  auto narrow = [&](auto pred) {
    std::vector<int> kept;
    for (int pid : candidates)
      if (pred(providers_[pid])) kept.push_back(pid);
    return kept;
  };
  std::vector<int> by_client = narrow([&](const Provider& p) {
    return !p.client.empty() && p.client == event.client;
  });
  if (by_client.size() == 1) return by_client[0];
  if (!by_client.empty()) candidates = by_client;
  std::vector<int> by_cwd =
      narrow([&](const Provider& p) { return !p.cwd.empty() && p.cwd == event.cwd; });
  if (by_cwd.size() == 1) return by_cwd[0];
  return std::nullopt;
}

}  // namespace dormant::meter
