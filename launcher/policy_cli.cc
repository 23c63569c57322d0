#include "launcher/policy_cli.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <vector>

#include "launcher/policy_schema.h"

namespace dormant::launcher {

namespace {

using enforcer::Policy;
using enforcer::ProviderMatcher;

constexpr char kUsage[] =
    "usage: dormant policy show [--origin] [--json] [--defaults] [--policy FILE]... "
    "[--set KEY=VALUE]...\n"
    "       dormant policy check [--set KEY=VALUE]... [FILE]...\n";

// Tables in schema order: "idle", "provider", "power", "power.battery",
// "sandbox", "budget", "budget_idle", "plan", "price", "prices", ...
std::vector<std::string> Tables() {
  std::vector<std::string> tables;
  for (const auto& spec : Schema()) {
    std::string table = spec.key.substr(0, spec.key.rfind('.'));
    if (std::find(tables.begin(), tables.end(), table) == tables.end()) tables.push_back(table);
  }
  return tables;
}

std::string Field(const KeySpec& spec) { return spec.key.substr(spec.key.rfind('.') + 1); }

std::string TableOf(const KeySpec& spec) { return spec.key.substr(0, spec.key.rfind('.')); }

// The key path of `spec` in origins and locks: "provider.codex.exe" for a
// field of entry "codex", the key itself for a policy key.
std::string PathOf(const KeySpec& spec, const std::string& entry) {
  return spec.scope == Scope::kPolicy ? spec.key : TableOf(spec) + "." + entry + "." + Field(spec);
}

// One "key = value" line per set key of `table`, for `entry` of an array of tables.
void TomlTable(const LoadedPolicy& loaded, const std::string& table, const std::string& entry,
               std::ostream& out) {
  for (const auto& spec : Schema()) {
    if (TableOf(spec) != table) continue;
    Value v = spec.get(loaded.policy, entry);
    if (std::holds_alternative<std::monostate>(v)) {
      out << "# " << Field(spec) << " is not set\n";
      continue;
    }
    out << Field(spec) << " = " << FormatValue(v);
    if (const Lock* lock = loaded.LockFor(PathOf(spec, entry))) {
      out << "  # locked by " << lock->origin.Where();
    }
    out << "\n";
  }
}

// Calls f(spec, entry) for every policy key, then every field of every entry
// of each array of tables.
template <typename F>
void ForEachKey(const enforcer::Policy& p, F f) {
  for (const auto& spec : Schema()) {
    if (spec.scope == Scope::kPolicy) f(spec, std::string());
  }
  for (const ArrayTable& table : ArrayTables()) {
    for (const std::string& entry : table.entries(p)) {
      for (const auto& spec : Schema()) {
        if (spec.scope == table.scope) f(spec, entry);
      }
    }
  }
}

void OriginLines(const LoadedPolicy& loaded, std::ostream& out) {
  ForEachKey(loaded.policy, [&](const KeySpec& spec, const std::string& entry) {
    Value v = spec.get(loaded.policy, entry);
    if (std::holds_alternative<std::monostate>(v)) return;
    std::string path = PathOf(spec, entry);
    out << loaded.OriginOf(path).Where() << "\t" << path << " = " << FormatValue(v);
    if (const Lock* lock = loaded.LockFor(path)) out << "\t[locked by " << lock->origin.Where() << "]";
    out << "\n";
  });
}

nlohmann::json ToJson(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  if (auto* d = std::get_if<enforcer::Duration>(&v)) return enforcer::FormatDuration(*d);
  if (auto* b = std::get_if<bool>(&v)) return *b;
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* x = std::get_if<double>(&v)) return *x;
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* l = std::get_if<std::vector<std::string>>(&v)) return *l;
  if (auto* f = std::get_if<std::vector<double>>(&v)) return *f;
  if (auto* r = std::get_if<enforcer::Rates>(&v)) {
    nlohmann::json out = nlohmann::json::object();
    for (const RateKind& kind : RateKinds()) {
      if (const auto& rate = r->*kind.field) out[kind.name] = *rate;
    }
    return out;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : std::get<std::vector<ProviderMatcher>>(v)) {
    out.push_back({{"name", m.name}, {"exe", m.exe}, {"args", m.args}});
  }
  return out;
}

nlohmann::json PolicyJson(const Policy& p) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& spec : Schema()) {
    if (spec.scope != Scope::kPolicy) continue;
    std::string pointer = "/" + spec.key;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    out[nlohmann::json::json_pointer(pointer)] = ToJson(spec.get(p, ""));
  }
  for (const ArrayTable& table : ArrayTables()) {
    nlohmann::json entries = nlohmann::json::array();
    for (const std::string& name : table.entries(p)) {
      nlohmann::json entry = nlohmann::json::object();
      for (const auto& spec : Schema()) {
        if (spec.scope == table.scope) entry[Field(spec)] = ToJson(spec.get(p, name));
      }
      entries.push_back(entry);
    }
    out[table.table] = entries;
  }
  return out;
}

nlohmann::json OriginJson(const Origin& o) {
  return {{"file", o.file}, {"line", o.line}, {"column", o.column}, {"layer", o.layer}};
}

void PrintDiagnostics(const std::vector<Diagnostic>& ds, std::ostream& err) {
  for (const auto& d : ds) err << d.ToString() << "\n";
}

struct Options {
  bool origin = false, json = false, defaults = false;
  PolicySources sources;
  std::vector<std::string> positional;
};

// Parses flags after the subcommand. Returns false (after a message) on bad usage.
bool ParseOptions(int argc, char** argv, bool show, Options* o, std::ostream& err) {
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag, std::string* out) {
      if (a.starts_with(std::string(flag) + "=")) {
        *out = a.substr(flag.size() + 1);
        return true;
      }
      if (a != flag) return false;
      if (i + 1 >= argc) {
        err << "dormant policy: " << flag << " needs a value\n" << kUsage;
        *out = "\x01";  // marks the error
        return true;
      }
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (show && a == "--origin") {
      o->origin = true;
    } else if (show && a == "--json") {
      o->json = true;
    } else if (show && a == "--defaults") {
      o->defaults = true;
    } else if (value("--set", &v)) {
      if (v == "\x01") return false;
      o->sources.sets.push_back(v);
    } else if (show && value("--policy", &v)) {
      if (v == "\x01") return false;
      o->sources.files.push_back(v);
    } else if (a == "--no-system") {
      o->sources.system = false;
    } else if (a == "--no-user") {
      o->sources.user = false;
    } else if (!show && (!a.starts_with("-") || a == "-")) {
      o->positional.emplace_back(a);
    } else {
      err << "dormant policy: unknown option " << a << "\n" << kUsage;
      return false;
    }
  }
  return true;
}

int Show(const Options& o, std::ostream& out, std::ostream& err) {
  LoadedPolicy loaded;
  if (o.defaults) {
    loaded = LoadLayers({});
  } else {
    loaded = LoadPolicy(o.sources);
  }
  if (!loaded.errors.empty()) {
    PrintDiagnostics(loaded.errors, err);
    return 2;
  }
  out << (o.json ? FormatPolicyJson(loaded, o.origin) : FormatPolicyToml(loaded, o.origin));
  return 0;
}

int CheckFiles(const Options& o, std::ostream& out, std::ostream& err) {
  int status = 0;
  for (const auto& file : o.positional) {
    // A file is checked on top of the built-in defaults, as an admin file so
    // that its [lock] table is checked too.
    std::vector<LayerSource> layers = {{LayerSource::Kind::kFile, file, "", 5, true, false}};
    for (const auto& set : o.sources.sets) {
      layers.push_back({LayerSource::Kind::kSet, "--set", set, 6, false, false});
    }
    LoadedPolicy loaded = LoadLayers(layers);
    PrintDiagnostics(loaded.errors, err);
    PrintDiagnostics(loaded.notices, err);
    if (loaded.errors.empty()) {
      out << file << ": ok\n";
    } else {
      status = 2;
    }
  }
  return status;
}

int CheckStack(const Options& o, std::ostream& out, std::ostream& err) {
  LoadedPolicy loaded = LoadPolicy(o.sources);
  PrintDiagnostics(loaded.errors, err);
  PrintDiagnostics(loaded.notices, err);
  if (!loaded.errors.empty()) return 2;
  out << "ok: built-in defaults";
  for (const auto& f : loaded.files) out << ", " << f;
  if (!o.sources.sets.empty()) out << ", " << o.sources.sets.size() << " --set";
  out << "\n";
  return 0;
}

}  // namespace

std::string FormatPolicyToml(const LoadedPolicy& loaded, bool origin) {
  std::ostringstream out;
  for (const auto& n : loaded.notices) out << "# notice: " << n.ToString() << "\n";
  if (origin) {
    OriginLines(loaded, out);
    return out.str();
  }
  bool first = true;
  for (const auto& table : Tables()) {
    if (const ArrayTable* array = FindArrayTable(table)) {
      for (const auto& entry : array->entries(loaded.policy)) {
        out << (first ? "" : "\n") << "[[" << table << "]]\n";
        TomlTable(loaded, table, entry, out);
        first = false;
      }
    } else {
      out << (first ? "" : "\n") << "[" << table << "]\n";
      TomlTable(loaded, table, "", out);
      first = false;
    }
  }
  return out.str();
}

std::string FormatPolicyJson(const LoadedPolicy& loaded, bool origin) {
  nlohmann::json policy = PolicyJson(loaded.policy);
  // Values are valid UTF-8 (the loader checks); replace rather than throw if not.
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  if (!origin) return policy.dump(2, ' ', false, kReplace) + "\n";
  nlohmann::json origins = nlohmann::json::object();
  ForEachKey(loaded.policy, [&](const KeySpec& spec, const std::string& entry) {
    std::string path = PathOf(spec, entry);
    nlohmann::json o = OriginJson(loaded.OriginOf(path));
    if (const Lock* lock = loaded.LockFor(path)) o["locked_by"] = OriginJson(lock->origin);
    origins[path] = o;
  });
  nlohmann::json locks = nlohmann::json::array();
  for (const auto& lock : loaded.locks) {
    nlohmann::json l = OriginJson(lock.origin);
    l["pattern"] = lock.pattern;
    locks.push_back(l);
  }
  nlohmann::json notices = nlohmann::json::array();
  for (const auto& n : loaded.notices) notices.push_back(n.ToString());
  nlohmann::json out = {{"policy", policy}, {"origin", origins}, {"locks", locks}, {"notices", notices}};
  return out.dump(2, ' ', false, kReplace) + "\n";
}

int RunPolicyCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::string_view sub = argc >= 2 ? argv[1] : "";
  if (sub == "--help" || sub == "-h" || sub == "help") {
    out << kUsage;
    return 0;
  }
  if (sub != "show" && sub != "check") {
    err << (sub.empty() ? std::string("dormant policy: missing command\n")
                        : "dormant policy: unknown command " + std::string(sub) + "\n")
        << kUsage;
    return 2;
  }
  Options o;
  if (!ParseOptions(argc, argv, sub == "show", &o, err)) return 2;
  if (sub == "show") return Show(o, out, err);
  return o.positional.empty() ? CheckStack(o, out, err) : CheckFiles(o, out, err);
}

int RunPolicyCommand(int argc, char** argv) { return RunPolicyCommand(argc, argv, std::cout, std::cerr); }

}  // namespace dormant::launcher
