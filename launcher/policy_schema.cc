#include "launcher/policy_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace dormant::launcher {

using enforcer::Duration;
using enforcer::Policy;
using enforcer::ProviderMatcher;

namespace {

// Builders: each takes an accessor `ref` written as
//   [](auto& p) -> auto& { return p.idle.suspend_after; }
// which works on a const and a mutable model alike, and fills get/set.

KeySpec Base(std::string key, KeyType type, Strict strict, std::string doc, std::string example) {
  KeySpec s;
  s.key = std::move(key);
  s.type = type;
  s.strict = strict;
  s.unit = type == KeyType::kDuration || type == KeyType::kOptionalDuration ? "ms, s, m, h, d" : "-";
  s.doc = std::move(doc);
  s.example = std::move(example);
  return s;
}

template <typename Ref>
KeySpec DurationKey(std::string key, Ref ref, Strict strict, std::string doc, std::string example) {
  KeySpec s = Base(std::move(key), KeyType::kDuration, strict, std::move(doc), std::move(example));
  s.get = [ref](const Policy& p, const ProviderMatcher*) { return Value(ref(p)); };
  s.set = [ref](Policy& p, ProviderMatcher*, const Value& v) { ref(p) = std::get<Duration>(v); };
  return s;
}

template <typename Ref>
KeySpec OptionalDurationKey(std::string key, Ref ref, Strict strict, std::string doc,
                            std::string example) {
  KeySpec s =
      Base(std::move(key), KeyType::kOptionalDuration, strict, std::move(doc), std::move(example));
  s.get = [ref](const Policy& p, const ProviderMatcher*) {
    const auto& o = ref(p);
    return o ? Value(*o) : Value();
  };
  s.set = [ref](Policy& p, ProviderMatcher*, const Value& v) {
    if (auto* d = std::get_if<Duration>(&v)) {
      ref(p) = *d;
    } else {
      ref(p).reset();
    }
  };
  return s;
}

// An enum stored as a C++ enum; `names` pairs each value with its spelling,
// loosest first when `strict` is kOrder.
template <typename E, typename Ref>
KeySpec EnumKey(std::string key, Ref ref, std::vector<std::pair<E, std::string>> names,
                Strict strict, std::string doc, std::string example) {
  KeySpec s = Base(std::move(key), KeyType::kEnum, strict, std::move(doc), std::move(example));
  for (const auto& [value, name] : names) s.choices.push_back(name);
  s.get = [ref, names](const Policy& p, const ProviderMatcher*) {
    for (const auto& [value, name] : names) {
      if (value == ref(p)) return Value(name);
    }
    return Value();
  };
  s.set = [ref, names](Policy& p, ProviderMatcher*, const Value& v) {
    for (const auto& [value, name] : names) {
      if (name == std::get<std::string>(v)) ref(p) = value;
    }
  };
  return s;
}

template <typename Ref>
KeySpec ProviderKey(std::string field, KeyType type, Ref ref, Strict strict, std::string doc,
                    std::string example) {
  KeySpec s = Base("provider." + field, type, strict, std::move(doc), std::move(example));
  s.scope = Scope::kProvider;
  s.get = [ref](const Policy&, const ProviderMatcher* m) -> Value {
    if (!m) return Value();
    if constexpr (std::is_same_v<std::decay_t<decltype(ref(*m))>, std::optional<Duration>>) {
      const auto& o = ref(*m);
      return o ? Value(*o) : Value();
    } else {
      return Value(ref(*m));
    }
  };
  s.set = [ref](Policy&, ProviderMatcher* m, const Value& v) {
    if (!m) return;
    auto& field = ref(*m);
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::optional<Duration>>) {
      if (auto* d = std::get_if<Duration>(&v)) {
        field = *d;
      } else {
        field.reset();
      }
    } else {
      field = std::get<std::decay_t<decltype(field)>>(v);
    }
  };
  return s;
}

std::vector<KeySpec> BuildSchema() {
  using enforcer::AfterWake;
  using enforcer::OnLock;
  using enforcer::SandboxGate;
  using enforcer::SandboxNetwork;
  std::vector<KeySpec> keys;

  // [idle]
  // A string in the model (more sources will come), an enum in the file.
  KeySpec source = Base("idle.source", KeyType::kEnum, Strict::kFixed, "where idle time comes from",
                        "\"auto\"");
  source.choices = {"manual", "auto", "x11", "gnome", "kde", "wayland", "logind", "tty"};
  source.get = [](const Policy& p, const ProviderMatcher*) { return Value(p.idle.source); };
  source.set = [](Policy& p, ProviderMatcher*, const Value& v) {
    p.idle.source = std::get<std::string>(v);
  };
  keys.push_back(std::move(source));
  keys.push_back(DurationKey(
      "idle.suspend_after", [](auto& p) -> auto& { return p.idle.suspend_after; }, Strict::kLower,
      "idle time after which every provider (and all below it) is stopped", "\"5m\""));
  keys.push_back(DurationKey(
      "idle.kill_after", [](auto& p) -> auto& { return p.idle.kill_after; }, Strict::kLower,
      "idle time after which providers are ended (SIGCONT, SIGTERM, SIGKILL after kill_grace)",
      "\"1h\""));
  keys.push_back(DurationKey(
      "idle.kill_grace", [](auto& p) -> auto& { return p.idle.kill_grace; }, Strict::kLower,
      "time between SIGTERM and SIGKILL when ending a provider", "\"3s\""));
  keys.push_back(OptionalDurationKey(
      "idle.warn_after", [](auto& p) -> auto& { return p.idle.warn_after; }, Strict::kLower,
      "idle time at which a warning is shown; shorter than suspend_after", "\"8m\""));
  keys.push_back(DurationKey(
      "idle.network_after", [](auto& p) -> auto& { return p.idle.network_after; }, Strict::kLower,
      "with sandbox.network = \"when-active\": idle time after which providers' new IP "
      "connections are refused",
      "\"1m\""));

  // [[provider]]
  keys.push_back(ProviderKey(
      "name", KeyType::kName, [](auto& m) -> auto& { return m.name; }, Strict::kFixed,
      "the provider's name in status and logs; a later layer with the same name changes that "
      "entry",
      "\"codex\""));
  keys.back().required = true;
  keys.back().default_text = "(required)";
  keys.push_back(ProviderKey(
      "exe", KeyType::kString, [](auto& m) -> auto& { return m.exe; }, Strict::kFixed,
      "program base name to match (of the executable, argv[0], or an interpreter's script)",
      "\"codex\""));
  keys.back().required = true;
  keys.back().default_text = "(required)";
  keys.push_back(ProviderKey(
      "args", KeyType::kStringList, [](auto& m) -> auto& { return m.args; }, Strict::kFixed,
      "strings that must all appear among the arguments", "[\"app-server\"]"));
  keys.back().default_text = "[]";
  keys.push_back(ProviderKey(
      "suspend_after", KeyType::kOptionalDuration,
      [](auto& m) -> auto& { return m.suspend_after; }, Strict::kLower,
      "this provider's own idle.suspend_after", "\"3m\""));
  keys.back().default_text = "idle.suspend_after";
  keys.back().fallback = "idle.suspend_after";
  keys.push_back(ProviderKey(
      "kill_after", KeyType::kOptionalDuration, [](auto& m) -> auto& { return m.kill_after; },
      Strict::kLower, "this provider's own idle.kill_after", "\"30m\""));
  keys.back().default_text = "idle.kill_after";
  keys.back().fallback = "idle.kill_after";

  // [power]
  keys.push_back(EnumKey<AfterWake>(
      "power.after_wake", [](auto& p) -> auto& { return p.power.after_wake; },
      {{AfterWake::kResume, "resume"}, {AfterWake::kWaitForInput, "wait-for-input"}},
      Strict::kOrder, "after a wake from sleep: keep providers suspended until the user is back, "
      "or resume them at once",
      "\"resume\""));
  keys.push_back(EnumKey<OnLock>(
      "power.on_lock", [](auto& p) -> auto& { return p.power.on_lock; },
      {{OnLock::kIgnore, "ignore"}, {OnLock::kSuspend, "suspend"}}, Strict::kOrder,
      "when the session locks: suspend providers at once, or ignore it", "\"suspend\""));
  keys.push_back(OptionalDurationKey(
      "power.battery.suspend_after", [](auto& p) -> auto& { return p.power.battery.suspend_after; },
      Strict::kLower, "idle.suspend_after while on battery", "\"2m\""));
  keys.back().fallback = "idle.suspend_after";
  keys.push_back(OptionalDurationKey(
      "power.battery.kill_after", [](auto& p) -> auto& { return p.power.battery.kill_after; },
      Strict::kLower, "idle.kill_after while on battery", "\"20m\""));
  keys.back().fallback = "idle.kill_after";

  // [sandbox]
  keys.push_back(EnumKey<SandboxGate>(
      "sandbox.gate", [](auto& p) -> auto& { return p.sandbox.gate; },
      {{SandboxGate::kOff, "off"}, {SandboxGate::kAuto, "auto"}, {SandboxGate::kOn, "on"}},
      Strict::kOrder,
      "the seccomp gate on exec and connect: on (refuse to start without it), auto, off",
      "\"on\""));
  keys.push_back(EnumKey<SandboxNetwork>(
      "sandbox.network", [](auto& p) -> auto& { return p.sandbox.network; },
      {{SandboxNetwork::kAlways, "always"}, {SandboxNetwork::kWhenActive, "when-active"}},
      Strict::kOrder, "when providers may open new IP connections (loopback always allowed)",
      "\"when-active\""));
  KeySpec deny = Base("sandbox.deny_exec", KeyType::kMatcherList, Strict::kSuperset,
                      "matchers (name, exe, args) whose exec the gate refuses",
                      "[{ name = \"aider\", exe = \"aider\" }]");
  deny.get = [](const Policy& p, const ProviderMatcher*) { return Value(p.sandbox.deny_exec); };
  deny.set = [](Policy& p, ProviderMatcher*, const Value& v) {
    p.sandbox.deny_exec = std::get<std::vector<ProviderMatcher>>(v);
  };
  keys.push_back(std::move(deny));
  return keys;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string FormatStrings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Quote(v[i]);
  return out + "]";
}

std::string FormatMatcher(const ProviderMatcher& m) {
  std::string out = "{ name = " + Quote(m.name) + ", exe = " + Quote(m.exe);
  if (!m.args.empty()) out += ", args = " + FormatStrings(m.args);
  return out + " }";
}

// Numbers a strictness comparison can order; unset is +inf for "lower".
std::optional<double> AsNumber(const Value& v) {
  if (auto* d = std::get_if<Duration>(&v)) return static_cast<double>(d->count());
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* x = std::get_if<double>(&v)) return *x;
  return std::nullopt;
}

bool Equal(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (auto* ma = std::get_if<std::vector<ProviderMatcher>>(&a)) {
    const auto& mb = std::get<std::vector<ProviderMatcher>>(b);
    return std::equal(ma->begin(), ma->end(), mb.begin(), mb.end(), SameMatcher);
  }
  return FormatValue(a) == FormatValue(b);
}

}  // namespace

const std::vector<KeySpec>& Schema() {
  static const std::vector<KeySpec> schema = BuildSchema();
  return schema;
}

const KeySpec* FindKey(std::string_view key) {
  for (const auto& spec : Schema()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

bool IsTable(std::string_view path) {
  if (path.empty()) return true;
  std::string prefix = std::string(path) + ".";
  for (const auto& spec : Schema()) {
    if (spec.key.starts_with(prefix)) return true;
  }
  return false;
}

bool IsArrayTable(std::string_view path) { return path == "provider"; }

std::vector<std::string> ChildNames(std::string_view path) {
  std::string prefix = path.empty() ? "" : std::string(path) + ".";
  std::vector<std::string> names;
  for (const auto& spec : Schema()) {
    if (!spec.key.starts_with(prefix)) continue;
    std::string rest = spec.key.substr(prefix.size());
    std::string child = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), child) == names.end()) names.push_back(child);
  }
  return names;
}

bool ParseDuration(std::string_view text, Duration* out, std::string* error) {
  constexpr int64_t kMaxMs = 365LL * 24 * 3600 * 1000;
  const std::string hint = " (write a whole number and a unit: ms, s, m, h or d, e.g. \"90s\", \"1h30m\")";
  if (text.empty()) {
    *error = "empty duration" + hint;
    return false;
  }
  if (text[0] == '-') {
    *error = "duration must be positive";
    return false;
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxMs) {
        *error = "duration is longer than 365d";
        return false;
      }
      ++i;
    }
    if (i == start) {
      *error = "bad duration \"" + std::string(text) + "\"" + hint;
      return false;
    }
    int64_t unit = 0;
    if (text.substr(i, 2) == "ms") {
      unit = 1, i += 2;
    } else if (i < text.size()) {
      switch (text[i]) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 24 * 3600 * 1000; break;
      }
      if (unit) ++i;
    }
    if (!unit) {
      *error = i < text.size() ? "bad duration \"" + std::string(text) + "\": unknown unit at \"" +
                                     std::string(text.substr(i)) + "\"" + hint
                               : "bad duration \"" + std::string(text) + "\": missing unit" + hint;
      return false;
    }
    if (n > (kMaxMs - total) / unit) {
      *error = "duration is longer than 365d";
      return false;
    }
    total += n * unit;
  }
  if (total == 0) {
    *error = "duration must be longer than zero";
    return false;
  }
  *out = Duration(total);
  return true;
}

std::string FormatValue(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) return "unset";
  if (auto* d = std::get_if<Duration>(&v)) return Quote(enforcer::FormatDuration(*d));
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* x = std::get_if<double>(&v)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", *x);
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
  }
  if (auto* s = std::get_if<std::string>(&v)) return Quote(*s);
  if (auto* l = std::get_if<std::vector<std::string>>(&v)) return FormatStrings(*l);
  const auto& ms = std::get<std::vector<ProviderMatcher>>(v);
  std::string out = "[";
  for (size_t i = 0; i < ms.size(); ++i) out += (i ? ", " : "") + FormatMatcher(ms[i]);
  return out + "]";
}

std::string TypeText(const KeySpec& spec) {
  switch (spec.type) {
    case KeyType::kDuration: return "duration";
    case KeyType::kOptionalDuration: return "duration, optional";
    case KeyType::kEnum: {
      std::string out = "one of";
      for (size_t i = 0; i < spec.choices.size(); ++i) out += (i ? ", " : " ") + spec.choices[i];
      return out;
    }
    case KeyType::kString: return "string";
    case KeyType::kName: return "name";
    case KeyType::kStringList: return "array of strings";
    case KeyType::kMatcherList: return "array of matchers";
    case KeyType::kBool: return "boolean";
    case KeyType::kInteger: return "integer";
    case KeyType::kNumber: return "number";
  }
  return "?";
}

std::string StrictText(const KeySpec& spec) {
  switch (spec.strict) {
    case Strict::kFixed: return "fixed";
    case Strict::kLower: return "lower";
    case Strict::kHigher: return "higher";
    case Strict::kTrue: return "true";
    case Strict::kSuperset: return "superset";
    case Strict::kOrder: {
      std::string out;
      for (size_t i = 0; i < spec.choices.size(); ++i) out += (i ? " < " : "") + spec.choices[i];
      return out;
    }
  }
  return "?";
}

std::string DefaultText(const KeySpec& spec) {
  if (!spec.default_text.empty()) return spec.default_text;
  return FormatValue(spec.get(enforcer::DefaultPolicy(), nullptr));
}

bool SameMatcher(const ProviderMatcher& a, const ProviderMatcher& b) {
  return a.name == b.name && a.exe == b.exe && a.args == b.args;
}

bool IsAtLeastAsStrict(const KeySpec& spec, const Value& proposed, const Value& locked) {
  const bool proposed_unset = std::holds_alternative<std::monostate>(proposed);
  const bool locked_unset = std::holds_alternative<std::monostate>(locked);
  switch (spec.strict) {
    case Strict::kFixed: return Equal(proposed, locked);
    case Strict::kLower:
    case Strict::kHigher: {
      if (locked_unset) return true;  // no limit yet: any limit is stricter
      if (proposed_unset) return false;
      auto p = AsNumber(proposed), l = AsNumber(locked);
      if (!p || !l) return Equal(proposed, locked);
      return spec.strict == Strict::kLower ? *p <= *l : *p >= *l;
    }
    case Strict::kTrue: {
      auto* p = std::get_if<bool>(&proposed);
      auto* l = std::get_if<bool>(&locked);
      return p && l ? (*p || !*l) : Equal(proposed, locked);
    }
    case Strict::kOrder: {
      auto rank = [&](const Value& v) -> std::ptrdiff_t {
        auto* s = std::get_if<std::string>(&v);
        if (!s) return -1;
        auto it = std::find(spec.choices.begin(), spec.choices.end(), *s);
        return it == spec.choices.end() ? -1 : it - spec.choices.begin();
      };
      return rank(proposed) >= rank(locked);
    }
    case Strict::kSuperset: {
      if (auto* l = std::get_if<std::vector<std::string>>(&locked)) {
        auto* p = std::get_if<std::vector<std::string>>(&proposed);
        return p && std::all_of(l->begin(), l->end(), [&](const std::string& s) {
                 return std::find(p->begin(), p->end(), s) != p->end();
               });
      }
      if (auto* l = std::get_if<std::vector<ProviderMatcher>>(&locked)) {
        auto* p = std::get_if<std::vector<ProviderMatcher>>(&proposed);
        return p && std::all_of(l->begin(), l->end(), [&](const ProviderMatcher& m) {
                 return std::any_of(p->begin(), p->end(),
                                    [&](const ProviderMatcher& q) { return SameMatcher(m, q); });
               });
      }
      return Equal(proposed, locked);
    }
  }
  return false;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::optional<std::string> Nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // A typo is a couple of edits, or a third of the word for long keys.
  if (best && (best_d <= 2 || best_d <= word.size() / 3) && best_d < word.size()) return best;
  return std::nullopt;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++, mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1, t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace dormant::launcher
