#include "launcher/policy_loader.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include "launcher/policy_layer.h"
#include "launcher/policy_schema.h"
#include "platform/unique_fd.h"

namespace dormant::launcher {

namespace {

using enforcer::Duration;
using enforcer::Policy;
using enforcer::ProviderMatcher;

constexpr char kBuiltIn[] = "(built-in)";

// Reads a policy file, refusing what cannot be a policy: a missing file (unless
// optional), something that is not a regular file, more than 1 MiB, NUL bytes.
// Returns false when there is nothing to parse.
bool ReadPolicyFile(const std::string& path, bool optional, std::string* text,
                    std::vector<Diagnostic>* errors) {
  auto fail = [&](std::string message) {
    errors->push_back({path, 0, 0, "", std::move(message)});
    return false;
  };
  // O_NONBLOCK: opening a FIFO must not hang the loader.
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT && optional) return false;
    return fail(std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not a policy file");
  if (!S_ISREG(st.st_mode)) return fail("is not a regular file");
  auto too_big = [&](uint64_t size) {
    return fail("is " + std::to_string(size) + " bytes; a policy file may hold at most 1 MiB (" +
                std::to_string(kMaxPolicyBytes) + " bytes)");
  };
  if (static_cast<uint64_t>(st.st_size) > kMaxPolicyBytes) return too_big(st.st_size);
  text->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    text->append(buf, n);
    if (text->size() > kMaxPolicyBytes) return too_big(text->size());  // it grew while read
  }
  size_t nul = text->find('\0');
  if (nul != std::string::npos) {
    int line = 1 + static_cast<int>(std::count(text->begin(), text->begin() + nul, '\n'));
    size_t bol = text->rfind('\n', nul);
    int column = static_cast<int>(nul - (bol == std::string::npos ? 0 : bol + 1)) + 1;
    errors->push_back({path, line, column, "", "contains a NUL byte: a policy file must be text"});
    return false;
  }
  return true;
}

// The stack being merged: the model, where each value came from, and locks.
class Merger {
 public:
  explicit Merger(LoadedPolicy* out) : out_(out) { out_->policy = enforcer::DefaultPolicy(); }

  void ApplyLayer(const Layer& layer, bool admin) {
    Created created;  // entries this layer adds: no lock covers them yet
    ++layer_sequence_;
    for (const Assignment& a : layer.assignments) Apply(a, &created);
    CheckNewPrices(created);
    if (admin) out_->locks.insert(out_->locks.end(), layer.locks.begin(), layer.locks.end());
  }

  // Checks that relate two keys, once every layer is in.
  void CheckCrossKeys() {
    Policy& p = out_->policy;
    CheckOrder(Effective("idle.suspend_after", nullptr), Effective("idle.kill_after", nullptr));
    for (const ProviderMatcher& m : p.providers) {
      std::string base = "provider." + m.name + ".";
      if (m.exe.empty()) {
        Error(base + "name", "provider \"" + m.name + "\" needs an `exe`");
      }
      Timed suspend = Effective(base + "suspend_after", &m), kill = Effective(base + "kill_after", &m);
      // Both from [idle]: already checked above.
      if (suspend.path.starts_with(base) || kill.path.starts_with(base)) CheckOrder(suspend, kill);
    }
    CheckBudgets();
    for (const enforcer::ModelPrice& m : p.budget.prices.models) {
      if (!m.credits && !m.usd) {
        Error("price." + m.match + ".match", "[[price]] \"" + m.match + "\" needs `credits` or `usd`");
      }
    }
    if (p.power.battery.suspend_after || p.power.battery.kill_after) {
      CheckOrder(Effective("power.battery.suspend_after", nullptr),
                 Effective("power.battery.kill_after", nullptr));
    }
    // A warning due at or after suspension cannot warn: drop it, and say so
    // (a user who tightens suspend_after under an admin's warn_after is right).
    if (p.idle.warn_after && *p.idle.warn_after >= p.idle.suspend_after) {
      Origin o = out_->OriginOf("idle.warn_after");
      out_->notices.push_back(
          {o.file, o.line, o.column, "idle.warn_after",
           "ignored: warn_after (" + enforcer::FormatDuration(*p.idle.warn_after) +
               ") is not shorter than suspend_after (" +
               enforcer::FormatDuration(p.idle.suspend_after) + ", from " +
               out_->OriginOf("idle.suspend_after").Where() + "), so no warning is shown"});
      p.idle.warn_after.reset();
    }
  }

 private:
  // A duration in force and the key path that set it.
  struct Timed {
    std::string path;
    Duration value;
  };

  // (table, entry name) of the array-of-tables entries a layer adds.
  using Created = std::set<std::pair<std::string, std::string>>;

  void Apply(const Assignment& a, Created* created) {
    Policy& p = out_->policy;
    bool is_new = false;
    if (a.spec->scope != Scope::kPolicy) {
      const ArrayTable& table = *ArrayTableOf(a.spec->scope);
      std::vector<std::string> names = table.entries(p);
      bool exists = std::find(names.begin(), names.end(), a.entry) != names.end();
      if (a.spec->key == table.table + "." + table.name_key) {
        if (!exists) {
          table.add(p, a.entry);
          created->insert({table.table, a.entry});
          Record(a);
        }
        return;
      }
      if (!exists) return;  // its name was refused
      is_new = created->count({table.table, a.entry}) > 0;
    }
    Value current = a.spec->get(p, a.entry);
    if (!LockAllows(a, current, is_new)) return;
    a.spec->set(p, a.entry, a.value);
    Record(a);
  }

  // A new [[price]] is placed before the entries it could take models from.
  // Under a lock on its keys, it may not price any model lower than before:
  // every kind it prices must cost at least what each entry after it, and
  // the unknown-model prices, charge in that currency. Else it is dropped.
  void CheckNewPrices(const Created& created) {
    auto& models = out_->policy.budget.prices.models;
    for (const auto& entry : created) {
      if (entry.first != "price") continue;
      const std::string& match = entry.second;
      auto it = std::find_if(models.begin(), models.end(),
                             [&](const enforcer::ModelPrice& m) { return m.match == match; });
      if (it == models.end()) continue;
      const Lock* lock = nullptr;
      std::string locked_path;
      for (const char* field : {"match", "credits", "usd"}) {
        locked_path = "price." + match + "." + field;
        if ((lock = out_->LockFor(locked_path))) break;
      }
      if (!lock) continue;
      std::string cheaper = UndercutEntry(*it, std::next(it), models.end());
      if (cheaper.empty()) continue;
      Origin o = out_->OriginOf("price." + match + ".match");
      out_->notices.push_back(
          {o.file, o.line, o.column, "price." + match,
           "not applied: [[price]] \"" + match + "\" would price models below " + cheaper + ", and " +
               locked_path + " is locked by " + lock->origin.Where()});
      for (const char* field : {"match", "credits", "usd"}) {
        out_->origins.erase("price." + match + "." + field);
      }
      ArrayTableOf(Scope::kPrice)->remove(out_->policy, match);
    }
  }

  // The first price `added` undercuts, as "[[price]] \"x\" (credits)", or "".
  std::string UndercutEntry(const enforcer::ModelPrice& added,
                            std::vector<enforcer::ModelPrice>::const_iterator from,
                            std::vector<enforcer::ModelPrice>::const_iterator to) {
    auto below = [&](const enforcer::ModelPrice& other) -> std::string {
      if (other.credits && !(added.credits && RatesAtLeast(*added.credits, *other.credits))) {
        return "credits";
      }
      if (other.usd && !(added.usd && RatesAtLeast(*added.usd, *other.usd))) return "usd";
      return "";
    };
    for (auto it = from; it != to; ++it) {
      std::string currency = below(*it);
      if (!currency.empty()) return "[[price]] \"" + it->match + "\" (" + currency + ")";
    }
    const auto& prices = out_->policy.budget.prices;
    for (const auto& [name, other] : {std::pair{"unknown_codex", &prices.fallback_codex},
                                      std::pair{"unknown_claude", &prices.fallback_claude}}) {
      std::string currency = below(*other);
      if (!currency.empty()) return std::string("prices.") + name + "." + currency;
    }
    return "";
  }

  // Each budget needs a window and a limit; the budget model's own
  // validators then see the merged result, so both stay in agreement.
  void CheckBudgets() {
    const enforcer::BudgetPolicy& b = out_->policy.budget;
    for (const enforcer::Budget& budget : b.budgets) {
      std::string base = "budget." + budget.name + ".";
      if (!out_->origins.count(base + "window")) {
        Error(base + "name", "budget \"" + budget.name + "\" needs a `window`");
        continue;
      }
      if (!budget.limit_credits && !budget.limit_usd && !budget.limit_tokens) {
        Error(base + "name", "budget \"" + budget.name +
                                 "\" needs a limit: one of limit_credits, limit_usd, limit_tokens");
        continue;
      }
      if (auto made = enforcer::MakeBudget(BudgetFields(budget)); !made) {
        Error(base + "name", made.error().message);
      }
    }
    if (b.idle) {
      enforcer::Fields f;
      AddLimits(*b.idle, &f);
      if (auto made = enforcer::MakeIdleBudget(f); !made) {
        Error(FirstSet({"budget_idle.limit_credits", "budget_idle.limit_usd", "budget_idle.limit_tokens"}),
              made.error().message);
      }
    }
    if (b.plan) {
      if (auto made = enforcer::MakePlanLimit({{"max_used_percent", Number(b.plan->max_used_percent)}});
          !made) {
        Error("plan.max_used_percent", made.error().message);
      }
    }
  }

  static std::string Number(double x) { return FormatValue(Value(x)); }

  template <typename T>
  static void AddLimits(const T& b, enforcer::Fields* f) {
    if (b.limit_credits) (*f)["limit_credits"] = Number(*b.limit_credits);
    if (b.limit_usd) (*f)["limit_usd"] = Number(*b.limit_usd);
    if (b.limit_tokens) (*f)["limit_tokens"] = std::to_string(*b.limit_tokens);
  }

  static enforcer::Fields BudgetFields(const enforcer::Budget& b) {
    enforcer::Fields f = {{"name", b.name}, {"window", enforcer::ToString(b.window)}};
    f["scope"] = b.scope == enforcer::BudgetScope::kSupervised ? "supervised" : "all";
    AddLimits(b, &f);
    std::string warn;
    for (double x : b.warn_at) warn += (warn.empty() ? "" : ",") + Number(x);
    if (!warn.empty()) f["warn_at"] = warn;
    f["on_exhausted"] = b.on_exhausted == enforcer::OnExhausted::kSuspend ? "suspend" : "kill";
    f["lockout"] = b.lockout ? "true" : "false";
    return f;
  }

  std::string FirstSet(const std::vector<std::string>& paths) const {
    for (const auto& path : paths) {
      if (out_->origins.count(path)) return path;
    }
    return paths.front();
  }

  // False (and a notice) when a lock keeps the current value. A provider this
  // layer adds has no value of its own to keep, but its timers still fall
  // back to locked [idle] ones.
  bool LockAllows(const Assignment& a, const Value& current, bool is_new) {
    if (const Lock* lock = is_new ? nullptr : out_->LockFor(a.path)) {
      if (!IsAtLeastAsStrict(*a.spec, a.value, current)) {
        Refused(a, current, a.path, *lock);
        return false;
      }
    }
    // An unset optional key falls back to another key: a lock there bounds it.
    if (a.spec->fallback.empty()) return true;
    const Lock* lock = out_->LockFor(a.spec->fallback);
    if (!lock) return true;
    Value in_force = current;
    if (std::holds_alternative<std::monostate>(current)) {
      in_force = FindKey(a.spec->fallback)->get(out_->policy, "");
    }
    if (IsAtLeastAsStrict(*a.spec, a.value, in_force)) return true;
    Refused(a, in_force, a.spec->fallback, *lock);
    return false;
  }

  void Refused(const Assignment& a, const Value& kept, const std::string& locked_key, const Lock& lock) {
    out_->notices.push_back(
        {a.origin.file, a.origin.line, a.origin.column, a.path,
         "not applied: " + FormatValue(a.value) + " is looser than " + FormatValue(kept) +
             ", and " + locked_key + " is locked by " + lock.origin.Where()});
  }

  void Record(const Assignment& a) {
    out_->origins[a.path] = a.origin;
    order_[a.path] = {layer_sequence_, a.origin.line, a.origin.column};
  }

  // The duration in force for `path`, following an unset key to its fallback.
  Timed Effective(const std::string& path, const ProviderMatcher* m) {
    std::string generic = path;
    if (m) generic = "provider." + path.substr(path.rfind('.') + 1);
    const KeySpec* spec = FindKey(generic);
    Value v = spec->get(out_->policy, m ? m->name : "");
    if (auto* d = std::get_if<Duration>(&v)) return {path, *d};
    return Effective(spec->fallback, nullptr);
  }

  void CheckOrder(const Timed& suspend, const Timed& kill) {
    if (kill.value >= suspend.value) return;
    Blame(kill, suspend,
          "kill_after (" + enforcer::FormatDuration(kill.value) + ") is shorter than suspend_after (" +
              enforcer::FormatDuration(suspend.value) + ", from " +
              out_->OriginOf(suspend.path).Where() + ")",
          "suspend_after (" + enforcer::FormatDuration(suspend.value) +
              ") is longer than kill_after (" + enforcer::FormatDuration(kill.value) + ", from " +
              out_->OriginOf(kill.path).Where() + ")");
  }

  // Two keys disagree: the one set last is the one to name.
  void Blame(const Timed& a, const Timed& b, std::string message_a, std::string message_b) {
    if (order_[a.path] >= order_[b.path]) {
      Error(a.path, std::move(message_a));
    } else {
      Error(b.path, std::move(message_b));
    }
  }

  void Error(const std::string& path, std::string message) {
    Origin o = out_->OriginOf(path);
    out_->errors.push_back({o.file, o.line, o.column, path, std::move(message)});
  }

  LoadedPolicy* out_;
  // When each key was set: (layer, line, column); unset keys sort first.
  std::map<std::string, std::tuple<int, int, int>> order_;
  int layer_sequence_ = 0;
};

void LoadOne(const LayerSource& source, int set_index, Merger* merger, LoadedPolicy* out) {
  Layer layer;
  if (source.kind == LayerSource::Kind::kSet) {
    layer = ParseSet(source.text, set_index, &out->errors);
  } else {
    std::string text = source.text;
    if (source.kind == LayerSource::Kind::kFile) {
      if (!ReadPolicyFile(source.name, source.optional, &text, &out->errors)) return;
      out->files.push_back(source.name);
    }
    layer = ParseLayerText(text, source.name, source.layer, source.admin, &out->errors, &out->notices);
  }
  merger->ApplyLayer(layer, source.admin);
}

}  // namespace

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

std::string Origin::Where() const {
  if (line <= 0) return file.empty() ? kBuiltIn : file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const Lock* LoadedPolicy::LockFor(const std::string& key_path) const {
  for (const Lock& lock : locks) {
    if (GlobMatch(lock.pattern, key_path)) return &lock;
  }
  return nullptr;
}

Origin LoadedPolicy::OriginOf(const std::string& key_path) const {
  auto it = origins.find(key_path);
  return it != origins.end() ? it->second : Origin{kBuiltIn, 0, 0, 1};
}

LoadedPolicy LoadLayers(const std::vector<LayerSource>& layers) {
  LoadedPolicy out;
  try {
    Merger merger(&out);
    // --set overrides are numbered among themselves, for their diagnostics.
    int set_index = 0;
    for (const LayerSource& source : layers) {
      if (source.kind == LayerSource::Kind::kSet) ++set_index;
      LoadOne(source, set_index, &merger, &out);
    }
    if (out.errors.empty()) merger.CheckCrossKeys();
  } catch (const std::exception& e) {
    out.errors.push_back({"(policy)", 0, 0, "", std::string("cannot load the policy: ") + e.what()});
  }
  return out;
}

std::string SystemDir() {
  const char* dir = std::getenv("DORMANT_SYSTEM_DIR");
  return dir && *dir ? dir : "/etc/dormant";
}

std::string UserPolicyPath() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/dormant/policy.toml";
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) {
    home = pw->pw_dir;
  }
  return home + "/.config/dormant/policy.toml";
}

std::vector<LayerSource> StackFor(const PolicySources& sources) {
  using Kind = LayerSource::Kind;
  std::vector<LayerSource> layers;
  if (sources.system) {
    std::string dir = SystemDir();
    layers.push_back({Kind::kFile, dir + "/policy.toml", "", 2, true, true});
    std::vector<std::string> dropins;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir + "/policy.d", ec), end; !ec && it != end;
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.starts_with(".") || !name.ends_with(".toml")) continue;
      dropins.push_back(name);
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      // An unreadable drop-in directory may hide locks: refuse, by reading it.
      layers.push_back({Kind::kFile, dir + "/policy.d", "", 3, true, false});
    }
    std::sort(dropins.begin(), dropins.end());
    for (const auto& name : dropins) {
      layers.push_back({Kind::kFile, dir + "/policy.d/" + name, "", 3, true, false});
    }
  }
  if (sources.user) layers.push_back({Kind::kFile, UserPolicyPath(), "", 4, false, true});
  for (const auto& file : sources.files) layers.push_back({Kind::kFile, file, "", 5, false, false});
  for (const auto& set : sources.sets) layers.push_back({Kind::kSet, "--set", set, 6, false, false});
  return layers;
}

LoadedPolicy LoadPolicy(const PolicySources& sources) {
  try {
    return LoadLayers(StackFor(sources));
  } catch (const std::exception& e) {
    LoadedPolicy out;
    out.errors.push_back({"(policy)", 0, 0, "", std::string("cannot load the policy: ") + e.what()});
    return out;
  }
}

}  // namespace dormant::launcher
