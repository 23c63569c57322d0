#include "launcher/policy_layer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <toml++/toml.h>

namespace dormant::launcher {

namespace {

using enforcer::Duration;
using enforcer::ProviderMatcher;

std::string NodeTypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string Suggest(std::string_view word, const std::vector<std::string>& candidates) {
  auto near = Nearest(word, candidates);
  return near ? "; did you mean `" + *near + "`?" : "";
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Walks one parsed TOML document (or one --set value) and turns it into
// assignments, reporting every problem it finds rather than the first.
class LayerParser {
 public:
  LayerParser(std::string file, int layer, bool admin, std::vector<Diagnostic>* errors,
              std::vector<Diagnostic>* notices)
      : file_(std::move(file)), layer_(layer), admin_(admin), errors_(errors), notices_(notices) {}

  // For --set: every position reported is this one.
  void FixPosition(int line, int column) { fixed_ = {line, column}; }

  void Walk(const toml::table& table, const std::string& path) {
    for (auto&& [k, node] : table) {
      std::string key(k.str());
      std::string name = path.empty() ? key : path + "." + key;
      if (path.empty() && key == "lock") {
        ParseLock(node, k.source());
      } else if (const ArrayTable* array = FindArrayTable(name)) {
        ParseEntries(*array, node, k.source());
      } else if (const KeySpec* spec = FindKey(name); spec && spec->scope == Scope::kPolicy) {
        AddValue(*spec, node, name, "");
      } else if (IsTable(name)) {
        if (auto* t = node.as_table()) {
          Walk(*t, name);
        } else {
          Error(node.source(), name,
                "expected a table ([" + name + "]), got " + NodeTypeName(node));
        }
      } else {
        Unknown(k.source(), name, key, path);
      }
    }
  }

  // Adds `node` as the value of `spec` at `path` when it is valid.
  void AddValue(const KeySpec& spec, const toml::node& node, const std::string& path,
                const std::string& entry) {
    auto value = ParseValue(spec, node, path);
    if (!value) return;
    auto [line, column] = Pos(node.source());
    layer_out_.assignments.push_back(
        {path, &spec, entry, std::move(*value), Origin{file_, line, column, layer_}});
  }

  void AddEntryName(const ArrayTable& table, const std::string& name,
                    const toml::source_region& where) {
    auto [line, column] = Pos(where);
    layer_out_.assignments.push_back({table.table + "." + name + "." + table.name_key,
                                      FindField(table, table.name_key), name, Value(name),
                                      Origin{file_, line, column, layer_}});
  }

  bool ValidName(const std::string& name, const toml::source_region& where, const std::string& key) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), IsNameChar)) return true;
    Error(where, key,
          name.empty() ? "must not be empty"
                       : "\"" + name + "\" is not a name (use letters, digits, '_' and '-')");
    return false;
  }

  // A [[price]] match is part of a model name, and of key paths.
  bool ValidMatch(const std::string& match, const toml::source_region& where, const std::string& key) {
    auto ok = [](char c) { return IsNameChar(c) || c == '.'; };
    if (!match.empty() && std::all_of(match.begin(), match.end(), ok)) return true;
    Error(where, key,
          match.empty() ? "must not be empty"
                        : "\"" + match + "\" is not part of a model name (use letters, digits, '.', "
                          "'_' and '-')");
    return false;
  }

  bool ValidEntryName(const ArrayTable& table, const std::string& name,
                      const toml::source_region& where, const std::string& key) {
    return table.scope == Scope::kPrice ? ValidMatch(name, where, key) : ValidName(name, where, key);
  }

  void Error(const toml::source_region& where, std::string key, std::string message) {
    auto [line, column] = Pos(where);
    errors_->push_back({file_, line, column, std::move(key), std::move(message)});
  }

  Layer Take() { return std::move(layer_out_); }

 private:
  std::pair<int, int> Pos(const toml::source_region& where) const {
    if (fixed_) return *fixed_;
    return {static_cast<int>(where.begin.line), static_cast<int>(where.begin.column)};
  }

  void Unknown(const toml::source_region& where, const std::string& name, const std::string& key,
               const std::string& path) {
    std::vector<std::string> siblings = ChildNames(path);
    if (path.empty()) siblings.push_back("lock");
    std::string in = path.empty() ? "" : " in [" + path + "]";
    Error(where, name, "unknown key `" + key + "`" + in + Suggest(key, siblings));
  }

  void ParseLock(const toml::node& node, const toml::source_region& where) {
    if (!admin_) {
      auto [line, column] = Pos(where);
      notices_->push_back({file_, line, column, "lock",
                           "ignored: locks are honoured only in admin files (" +
                               std::string("/etc/dormant/policy.toml and policy.d/)")});
      return;
    }
    const toml::table* t = node.as_table();
    if (!t) {
      Error(node.source(), "lock", "expected a table ([lock]), got " + NodeTypeName(node));
      return;
    }
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (key != "keys") {
        Error(k.source(), "lock." + key, "unknown key `" + key + "` in [lock]" + Suggest(key, {"keys"}));
        continue;
      }
      const toml::array* a = v.as_array();
      if (!a) {
        Error(v.source(), "lock.keys", "expected an array of key patterns, got " + NodeTypeName(v));
        continue;
      }
      for (const toml::node& e : *a) AddLock(e);
    }
  }

  void AddLock(const toml::node& e) {
    const auto* s = e.as_string();
    if (!s) {
      Error(e.source(), "lock.keys", "expected a key pattern string, got " + NodeTypeName(e));
      return;
    }
    const std::string& pattern = s->get();
    bool ok = !pattern.empty() && std::all_of(pattern.begin(), pattern.end(), [](char c) {
      return IsNameChar(c) || c == '.' || c == '*';
    });
    if (!ok) {
      Error(e.source(), "lock.keys",
            "\"" + pattern + "\" is not a key pattern (a key such as \"idle.suspend_after\", "
            "'*' matching any characters)");
      return;
    }
    auto [line, column] = Pos(e.source());
    layer_out_.locks.push_back({pattern, Origin{file_, line, column, layer_}});
  }

  void ParseEntries(const ArrayTable& table, const toml::node& node, const toml::source_region& where) {
    const std::string& name = table.table;
    const toml::array* a = node.as_array();
    if (!a) {
      Error(where, name, "`" + name + "` is an array of tables: write [[" + name + "]]");
      return;
    }
    for (const toml::node& e : *a) {
      const toml::table* t = e.as_table();
      if (!t) {
        Error(e.source(), name, "expected a table for each " + name + ", got " + NodeTypeName(e));
        continue;
      }
      ParseEntry(table, *t);
    }
  }

  // One [[provider]], [[budget]] or [[price]]: its name first, then its fields.
  void ParseEntry(const ArrayTable& table, const toml::table& t) {
    const std::string& kind = table.table;
    const std::string name_path = kind + "." + table.name_key;
    const toml::node* name_node = t.get(table.name_key);
    if (!name_node) {
      Error(t.source(), kind, "a [[" + kind + "]] needs a `" + table.name_key + "`");
      return;
    }
    const auto* name_str = name_node->as_string();
    if (!name_str) {
      Error(name_node->source(), name_path, "expected a string, got " + NodeTypeName(*name_node));
      return;
    }
    const std::string& name = name_str->get();
    if (!ValidEntryName(table, name, name_node->source(), name_path)) return;
    auto [first, inserted] = seen_[kind].insert({name, Pos(name_node->source()).first});
    if (!inserted) {
      Error(name_node->source(), kind + "." + name,
            kind + " \"" + name + "\" is defined twice in this file (first at line " +
                std::to_string(first->second) + ")");
      return;
    }
    AddEntryName(table, name, name_node->source());
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      if (key == table.name_key) continue;
      std::string path = kind + "." + name + "." + key;
      const KeySpec* spec = FindField(table, key);
      if (!spec) {
        Error(k.source(), path, "unknown key `" + key + "` in [[" + kind + "]]" +
                                    Suggest(key, ChildNames(kind)));
        continue;
      }
      AddValue(*spec, v, path, name);
    }
  }

  std::optional<Value> ParseValue(const KeySpec& spec, const toml::node& node, const std::string& path) {
    switch (spec.type) {
      case KeyType::kDuration:
      case KeyType::kOptionalDuration: return ParseDurationNode(node, path);
      case KeyType::kEnum: return ParseEnum(spec, node, path);
      case KeyType::kString:
      case KeyType::kName: {
        const auto* s = node.as_string();
        if (!s) return Expected(node, path, "a string");
        if (spec.type == KeyType::kName && !ValidName(s->get(), node.source(), path)) return {};
        if (s->get().empty()) return Bad(node, path, "must not be empty");
        return Value(s->get());
      }
      case KeyType::kStringList: return ParseStrings(node, path);
      case KeyType::kMatcherList: return ParseMatchers(node, path);
      case KeyType::kBool:
        if (const auto* b = node.as_boolean()) return Value(b->get());
        return Expected(node, path, "true or false");
      case KeyType::kInteger:
      case KeyType::kNumber: return ParseNumber(spec, node, path);
      case KeyType::kMatch: {
        const auto* s = node.as_string();
        if (!s) return Expected(node, path, "a string");
        if (!ValidMatch(s->get(), node.source(), path)) return {};
        return Value(s->get());
      }
      case KeyType::kWindow: return ParseWindowNode(node, path);
      case KeyType::kFractions: return ParseFractions(node, path);
      case KeyType::kRates: return ParseRates(node, path);
    }
    return {};
  }

  std::optional<Value> ParseWindowNode(const toml::node& node, const std::string& path) {
    const auto* s = node.as_string();
    if (!s) {
      return Expected(node, path, "a string: hour, day, week, month or a duration such as \"5h\"");
    }
    enforcer::BudgetWindow w;
    std::string error;
    if (!ParseBudgetWindow(s->get(), &w, &error)) return Bad(node, path, error);
    return Value(enforcer::ToString(w));
  }

  std::optional<Value> ParseFractions(const toml::node& node, const std::string& path) {
    const toml::array* a = node.as_array();
    if (!a) return Expected(node, path, "an array of fractions such as [0.6, 0.8]");
    std::vector<double> out;
    for (const toml::node& e : *a) {
      if (!e.is_number()) return Expected(e, path, "a number in the array");
      double x = e.is_integer() ? static_cast<double>(e.as_integer()->get()) : e.as_floating_point()->get();
      if (!(x > 0 && x < 1)) {
        return Bad(e, path, "a warning is a fraction of the limit, between 0 and 1 (exclusive); got " +
                                NumberText(e));
      }
      out.push_back(x);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return Value(std::move(out));
  }

  // { input = 1.25, cached_input = 0.125, output = 10, ... }: per million tokens.
  std::optional<Value> ParseRates(const toml::node& node, const std::string& path) {
    std::vector<std::string> kinds;
    for (const RateKind& kind : RateKinds()) kinds.push_back(kind.name);
    const toml::table* t = node.as_table();
    if (!t) {
      return Expected(node, path, "a table of prices per million tokens such as "
                                  "{ input = 1.25, output = 10 }");
    }
    enforcer::Rates rates;
    bool ok = true;
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      auto it = std::find(kinds.begin(), kinds.end(), key);
      if (it == kinds.end()) {
        Error(k.source(), path + "." + key,
              "unknown token kind `" + key + "` (one of " + Join(kinds, ", ") + ")" + Suggest(key, kinds));
        ok = false;
        continue;
      }
      double x = 0;
      if (const auto* i = v.as_integer()) {
        x = static_cast<double>(i->get());
      } else if (const auto* f = v.as_floating_point()) {
        x = f->get();
      } else {
        Expected(v, path + "." + key, "a number");
        ok = false;
        continue;
      }
      if (!(x >= 0) || !std::isfinite(x)) {
        Bad(v, path + "." + key, "a price must be a finite number at least 0.0");
        ok = false;
        continue;
      }
      rates.*RateKinds()[it - kinds.begin()].field = x;
    }
    if (ok && (!rates.input || !rates.output)) {
      return Bad(node, path, "a table of rates needs `input` and `output` (other kinds fall back to them)");
    }
    if (!ok) return {};
    return Value(rates);
  }

  std::optional<Value> Expected(const toml::node& node, const std::string& path, const std::string& what) {
    Error(node.source(), path, "expected " + what + ", got " + NodeTypeName(node));
    return {};
  }

  std::optional<Value> Bad(const toml::node& node, const std::string& path, std::string message) {
    Error(node.source(), path, std::move(message));
    return {};
  }

  std::optional<Value> ParseDurationNode(const toml::node& node, const std::string& path) {
    const auto* s = node.as_string();
    if (!s) {
      if (node.is_number()) {
        return Bad(node, path, "a duration is a string with a unit, e.g. \"10m\" (got the number " +
                                   NumberText(node) + ")");
      }
      return Expected(node, path, "a duration string such as \"10m\"");
    }
    Duration d;
    std::string error;
    if (!ParseDuration(s->get(), &d, &error)) return Bad(node, path, error);
    return Value(d);
  }

  static std::string NumberText(const toml::node& node) {
    if (const auto* i = node.as_integer()) return std::to_string(i->get());
    return FormatValue(Value(node.as_floating_point()->get()));
  }

  std::optional<Value> ParseEnum(const KeySpec& spec, const toml::node& node, const std::string& path) {
    const auto* s = node.as_string();
    if (!s) return Expected(node, path, "a string (one of " + Join(spec.choices, ", ") + ")");
    const std::string& v = s->get();
    if (std::find(spec.choices.begin(), spec.choices.end(), v) != spec.choices.end()) return Value(v);
    return Bad(node, path, "\"" + v + "\" is not one of " + Join(spec.choices, ", ") +
                               Suggest(v, spec.choices));
  }

  std::optional<Value> ParseNumber(const KeySpec& spec, const toml::node& node, const std::string& path) {
    double x = 0;
    Value v;
    if (const auto* i = node.as_integer()) {
      x = static_cast<double>(i->get());
      v = i->get();
      if (spec.type == KeyType::kNumber) v = x;
    } else if (const auto* f = node.as_floating_point(); f && spec.type == KeyType::kNumber) {
      x = f->get();
      v = x;
    } else {
      return Expected(node, path, spec.type == KeyType::kInteger ? "an integer" : "a number");
    }
    if (!std::isfinite(x)) return Bad(node, path, "must be a finite number");
    if ((spec.min && x < *spec.min) || (spec.max && x > *spec.max)) {
      std::string range = spec.min ? " at least " + FormatValue(Value(*spec.min)) : "";
      if (spec.max) range += (range.empty() ? " at most " : " and at most ") + FormatValue(Value(*spec.max));
      return Bad(node, path, "must be" + range);
    }
    return v;
  }

  std::optional<Value> ParseStrings(const toml::node& node, const std::string& path) {
    const toml::array* a = node.as_array();
    if (!a) return Expected(node, path, "an array of strings");
    std::vector<std::string> out;
    for (const toml::node& e : *a) {
      const auto* s = e.as_string();
      if (!s) return Expected(e, path, "a string in the array");
      if (s->get().empty()) return Bad(e, path, "array entries must not be empty");
      out.push_back(s->get());
    }
    return Value(std::move(out));
  }

  std::optional<Value> ParseMatchers(const toml::node& node, const std::string& path) {
    const toml::array* a = node.as_array();
    if (!a) return Expected(node, path, "an array of matchers ({ name = ..., exe = ..., args = [...] })");
    std::vector<ProviderMatcher> out;
    for (const toml::node& e : *a) {
      const toml::table* t = e.as_table();
      if (!t) return Expected(e, path, "a matcher table { name = ..., exe = ... }");
      ProviderMatcher m;
      if (!ParseMatcher(*t, path, &m)) return {};
      out.push_back(std::move(m));
    }
    return Value(std::move(out));
  }

  bool ParseMatcher(const toml::table& t, const std::string& path, ProviderMatcher* m) {
    bool ok = true;
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      const KeySpec* spec = (key == "name" || key == "exe" || key == "args") ? FindKey("provider." + key)
                                                                               : nullptr;
      if (!spec) {
        Error(k.source(), path + "." + key,
              "unknown key `" + key + "` in a matcher" + Suggest(key, {"name", "exe", "args"}));
        ok = false;
        continue;
      }
      auto value = ParseValue(*spec, v, path + "." + key);
      if (!value) {
        ok = false;
      } else if (key == "args") {
        m->args = std::get<std::vector<std::string>>(*value);
      } else {
        (key == "name" ? m->name : m->exe) = std::get<std::string>(*value);
      }
    }
    if (ok && (m->name.empty() || m->exe.empty())) {
      Error(t.source(), path, "a matcher needs a `name` and an `exe`");
      ok = false;
    }
    return ok;
  }

  std::string file_;
  int layer_;
  bool admin_;
  std::vector<Diagnostic>* errors_;
  std::vector<Diagnostic>* notices_;
  std::optional<std::pair<int, int>> fixed_;
  std::map<std::string, std::map<std::string, int>> seen_;  // table -> entry name -> line
  Layer layer_out_;
};

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values past
// U+10FFFF). TOML files are checked by the parser; --set strings are not.
bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = s[i + k];
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

// Resolves a --set key to its spec; fills `table` and `entry` for a key of an
// array of tables ("budget.daily.limit_credits": table budget, entry daily).
const KeySpec* ResolveSetKey(const std::string& key, const ArrayTable** table, std::string* entry,
                             std::string* error) {
  if (key == "lock" || key.starts_with("lock.")) {
    *error = "locks can only be set in admin files";
    return nullptr;
  }
  for (const ArrayTable& t : ArrayTables()) {
    if (!key.starts_with(t.table + ".")) continue;
    // The field is the last part: a price's match may itself hold dots.
    std::string rest = key.substr(t.table.size() + 1);
    size_t dot = rest.rfind('.');
    if (dot == std::string::npos || dot == 0) {
      *error = "a " + t.table + " key is " + t.table + ".NAME.FIELD, e.g. " +
               (t.table == "provider" ? "provider.codex.suspend_after"
                : t.table == "budget" ? "budget.daily.limit_credits"
                                      : "price.gpt-5.5.credits");
      return nullptr;
    }
    *table = &t;
    *entry = rest.substr(0, dot);
    std::string field = rest.substr(dot + 1);
    if (field == t.name_key) {
      *error = "a " + t.table + "'s " + t.name_key + " is part of its key (" + t.table +
               ".NAME.FIELD) and cannot be set";
      return nullptr;
    }
    const KeySpec* spec = FindField(t, field);
    if (!spec) {
      *error = "unknown key `" + field + "` in [[" + t.table + "]]" + Suggest(field, ChildNames(t.table));
    }
    return spec;
  }
  const KeySpec* spec = FindKey(key);
  if (spec && spec->scope == Scope::kPolicy) return spec;
  std::vector<std::string> keys;
  for (const auto& s : Schema()) {
    if (s.scope == Scope::kPolicy) keys.push_back(s.key);
  }
  *error = "unknown key `" + key + "`" + Suggest(key, keys);
  return nullptr;
}

}  // namespace

Layer ParseLayerText(std::string_view text, const std::string& file, int layer, bool admin,
                     std::vector<Diagnostic>* errors, std::vector<Diagnostic>* notices) {
  LayerParser parser(file, layer, admin, errors, notices);
  const size_t first_error = errors->size(), first_notice = notices->size();
  try {
    toml::table root = toml::parse(text, std::string_view(file));
    parser.Walk(root, "");
  } catch (const toml::parse_error& e) {
    errors->push_back({file, static_cast<int>(e.source().begin.line),
                       static_cast<int>(e.source().begin.column), "",
                       "not valid TOML: " + std::string(e.description())});
  }
  // toml++ keeps a table's keys sorted by name; report in file order.
  auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  };
  std::stable_sort(errors->begin() + first_error, errors->end(), by_position);
  std::stable_sort(notices->begin() + first_notice, notices->end(), by_position);
  return parser.Take();
}

Layer ParseSet(std::string_view arg, int index, std::vector<Diagnostic>* errors) {
  std::vector<Diagnostic> notices;
  LayerParser parser("--set", 6, false, errors, &notices);
  if (!ValidUtf8(arg)) {  // keep invalid bytes out of messages, which may become JSON
    errors->push_back({"--set", index, 1, "", "the override is not valid UTF-8"});
    return {};
  }
  size_t eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    errors->push_back({"--set", index, 1, "", "expected KEY=VALUE, got \"" + std::string(arg) + "\""});
    return {};
  }
  std::string key(arg.substr(0, eq));
  std::string value_text(arg.substr(eq + 1));
  std::string entry, error;
  const ArrayTable* table = nullptr;
  const KeySpec* spec = ResolveSetKey(key, &table, &entry, &error);
  if (!spec) {
    errors->push_back({"--set", index, 1, key, error});
    return {};
  }
  const int column = static_cast<int>(eq) + 2;
  parser.FixPosition(index, column);
  if (table) {
    toml::source_region none;
    if (!parser.ValidEntryName(*table, entry, none, key)) return {};
    parser.AddEntryName(*table, entry, none);
  }
  // VALUE as TOML when it is exactly one TOML value; otherwise a plain string.
  toml::table holder;
  try {
    holder = toml::parse("v = " + value_text, std::string_view("--set"));
    if (holder.size() != 1 || !holder.get("v")) holder = {};
  } catch (const toml::parse_error&) {
    holder = {};
  }
  if (holder.empty()) holder.insert("v", value_text);
  parser.AddValue(*spec, *holder.get("v"), key, entry);
  return parser.Take();
}

}  // namespace dormant::launcher
