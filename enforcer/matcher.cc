#include "enforcer/matcher.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace dormant::enforcer {
namespace {

std::string BaseName(std::string_view path) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.ends_with(kDeleted)) {
    path.remove_suffix(kDeleted.size());
  }
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Interpreters whose first non-option argument is the program that really runs.
bool IsInterpreter(std::string_view name) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "node", "nodejs", "bun", "deno", "python", "ruby", "perl", "electron",
      "sh", "bash", "dash", "zsh", "busybox"};
  if (name.starts_with("python")) return true;  // python3, python3.11
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

std::string StripExtension(const std::string& name) {
  for (std::string_view ext : {".js", ".mjs", ".cjs", ".ts", ".py", ".rb", ".pl"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) {
      return name.substr(0, name.size() - ext.size());
    }
  }
  return name;
}

void AddUnique(std::vector<std::string>& v, std::string s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

}  // namespace

std::vector<std::string> ProgramNames(const ProcessFacts& p) {
  // `env [-opts] [VAR=val]... PROGRAM ARGS`: the program is what runs (a
  // `#!/usr/bin/env node` script shows as env until env execs it).
  if (BaseName(p.exe) == "env" && p.argv.size() > 1 && BaseName(p.argv[0]) == "env") {
    size_t i = 1;
    while (i < p.argv.size() && (p.argv[i].empty() || p.argv[i][0] == '-' ||
                                 p.argv[i].find('=') != std::string::npos)) {
      ++i;
    }
    if (i < p.argv.size()) {
      ProcessFacts inner{p.pid, p.ppid, p.argv[i],
                         std::vector<std::string>(p.argv.begin() + i, p.argv.end())};
      return ProgramNames(inner);
    }
  }
  std::vector<std::string> names;
  AddUnique(names, BaseName(p.exe));
  if (!p.argv.empty()) AddUnique(names, BaseName(p.argv[0]));
  bool interpreted = std::any_of(names.begin(), names.end(),
                                 [](const std::string& n) { return IsInterpreter(n); });
  if (interpreted) {
    for (size_t i = 1; i < p.argv.size(); ++i) {
      const std::string& a = p.argv[i];
      if (a == "-c" || a == "-e" || a == "--eval") break;  // inline code, no script
      if (a.empty() || a[0] == '-') continue;
      std::string script = BaseName(a);
      AddUnique(names, script);
      AddUnique(names, StripExtension(script));
      break;
    }
  }
  return names;
}

std::optional<size_t> MatchProvider(const std::vector<ProviderMatcher>& matchers,
                                    const ProcessFacts& p) {
  if (p.argv.empty() && p.exe.empty()) return std::nullopt;
  const std::vector<std::string> names = ProgramNames(p);
  for (size_t i = 0; i < matchers.size(); ++i) {
    const ProviderMatcher& m = matchers[i];
    if (std::find(names.begin(), names.end(), m.exe) == names.end()) continue;
    bool all = std::all_of(m.args.begin(), m.args.end(), [&](const std::string& want) {
      return std::find(p.argv.begin() + std::min<size_t>(1, p.argv.size()), p.argv.end(), want) !=
             p.argv.end();
    });
    if (all) return i;
  }
  return std::nullopt;
}

int ProcessTree::ProviderOf(int pid) const {
  // Walk up; the topmost provider root wins. Depth is bounded by the tree size,
  // and a cycle (pid reuse seen mid-update) is cut by the same bound.
  int found = 0;
  size_t steps = 0;
  for (auto it = nodes_.find(pid); it != nodes_.end() && steps <= nodes_.size(); ++steps) {
    if (it->second.matcher) found = it->first;
    it = nodes_.find(it->second.ppid);
  }
  return found;
}

ProcessTree::Change ProcessTree::Update(const ProcessFacts& p,
                                        const std::vector<ProviderMatcher>& matchers) {
  if (p.pid == root_) return {};
  if (!Contains(p.ppid) && !nodes_.count(p.pid)) return {};
  Node& n = nodes_[p.pid];
  n.ppid = p.ppid;
  n.facts = p;
  bool was_root = n.matcher.has_value();
  // Below a provider, everything belongs to that provider.
  int above = nodes_.count(p.ppid) ? ProviderOf(p.ppid) : 0;
  std::optional<size_t> m = above ? std::nullopt : MatchProvider(matchers, p);
  n.matcher = m;
  if (m && !was_root) return {Change::Kind::kProviderStarted, p.pid, *m};
  if (!m && was_root) return {Change::Kind::kProviderExited, p.pid, 0};
  return {};
}

std::vector<ProcessTree::Change> ProcessTree::Remove(int pid,
                                                     const std::vector<ProviderMatcher>& matchers) {
  std::vector<Change> out;
  auto it = nodes_.find(pid);
  if (it == nodes_.end()) return out;
  bool was_root = it->second.matcher.has_value();
  nodes_.erase(it);
  if (!was_root) return out;
  out.push_back({Change::Kind::kProviderExited, pid, 0});
  // Orphans of a provider are adopted by dormant (the subreaper): each is now
  // its own top, and becomes a provider if it matches by itself.
  for (auto& [child, n] : nodes_) {
    if (n.ppid != pid) continue;
    n.ppid = root_;
    n.matcher = MatchProvider(matchers, n.facts);
    if (n.matcher) out.push_back({Change::Kind::kProviderStarted, child, *n.matcher});
  }
  return out;
}

std::vector<ProcessTree::Change> ProcessTree::Rematch(const std::vector<ProviderMatcher>& matchers) {
  std::vector<Change> out;
  // Parents before children, so "below a provider" is decided top-down.
  std::vector<int> order = Pids();
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    auto depth = [&](int pid) {
      size_t d = 0;
      for (auto it = nodes_.find(pid); it != nodes_.end() && d <= nodes_.size(); ++d) {
        it = nodes_.find(it->second.ppid);
      }
      return d;
    };
    return depth(a) < depth(b);
  });
  for (int pid : order) {
    bool was = nodes_[pid].matcher.has_value();
    size_t old = nodes_[pid].matcher.value_or(0);
    nodes_[pid].matcher.reset();
    Change c = Update(nodes_[pid].facts, matchers);
    bool is = nodes_[pid].matcher.has_value();
    if (was && (!is || *nodes_[pid].matcher != old)) out.push_back({Change::Kind::kProviderExited, pid, 0});
    if (is && (!was || *nodes_[pid].matcher != old)) {
      out.push_back({Change::Kind::kProviderStarted, pid, *nodes_[pid].matcher});
    }
    (void)c;
  }
  return out;
}

std::vector<int> ProcessTree::Pids() const {
  std::vector<int> pids;
  pids.reserve(nodes_.size());
  for (const auto& [pid, n] : nodes_) pids.push_back(pid);
  return pids;
}

}  // namespace dormant::enforcer
