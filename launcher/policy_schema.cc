#include "launcher/policy_schema.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>

namespace dormant::launcher {

using enforcer::Duration;
using enforcer::Policy;
using enforcer::ProviderMatcher;

namespace {

using enforcer::Budget;
using enforcer::BudgetScope;
using enforcer::BudgetWindow;
using enforcer::ModelPrice;
using enforcer::OnExhausted;
using enforcer::Rates;

// ---- model <-> Value, by the model's field type

Value ToValue(const Duration& d) { return d; }
Value ToValue(bool b) { return b; }
Value ToValue(double x) { return x; }
Value ToValue(const std::string& s) { return s; }
Value ToValue(const std::vector<std::string>& v) { return v; }
Value ToValue(const std::vector<double>& v) { return v; }
Value ToValue(const std::vector<enforcer::ProviderMatcher>& v) { return v; }
Value ToValue(const BudgetWindow& w) { return enforcer::ToString(w); }
Value ToValue(BudgetScope s) { return std::string(s == BudgetScope::kSupervised ? "supervised" : "all"); }
Value ToValue(OnExhausted o) { return std::string(o == OnExhausted::kSuspend ? "suspend" : "kill"); }
template <typename T>
Value ToValue(const std::optional<T>& o) {
  return o ? Value(*o) : Value();
}

template <typename T>
void FromValue(const Value& v, T* out) {
  if (auto* x = std::get_if<T>(&v)) *out = *x;
}
template <typename T>
void FromValue(const Value& v, std::optional<T>* out) {
  if (auto* x = std::get_if<T>(&v)) {
    *out = *x;
  } else {
    out->reset();
  }
}
void FromValue(const Value& v, BudgetWindow* out) {
  std::string error;
  if (auto* s = std::get_if<std::string>(&v)) ParseBudgetWindow(*s, out, &error);
}
void FromValue(const Value& v, BudgetScope* out) {
  if (auto* s = std::get_if<std::string>(&v)) {
    *out = *s == "supervised" ? BudgetScope::kSupervised : BudgetScope::kAll;
  }
}
void FromValue(const Value& v, OnExhausted* out) {
  if (auto* s = std::get_if<std::string>(&v)) {
    *out = *s == "suspend" ? OnExhausted::kSuspend : OnExhausted::kKill;
  }
}

// ---- builders

KeySpec Base(std::string key, KeyType type, Strict strict, std::string doc, std::string example) {
  KeySpec s;
  s.key = std::move(key);
  s.type = type;
  s.strict = strict;
  switch (type) {
    case KeyType::kDuration:
    case KeyType::kOptionalDuration: s.unit = "ms, s, m, h, d"; break;
    case KeyType::kWindow: s.unit = "calendar, or s, m, h, d"; break;
    case KeyType::kFractions: s.unit = "fraction of the limit"; break;
    case KeyType::kRates: s.unit = "per million tokens"; break;
    default: s.unit = "-";
  }
  s.doc = std::move(doc);
  s.example = std::move(example);
  return s;
}

// A key of the policy itself. `ref` is an accessor written as
//   [](auto& p) -> auto& { return p.idle.suspend_after; }
// which works on a const and a mutable model alike.
template <typename Ref>
KeySpec PolicyKey(std::string key, KeyType type, Ref ref, Strict strict, std::string doc,
                  std::string example) {
  KeySpec s = Base(std::move(key), type, strict, std::move(doc), std::move(example));
  s.get = [ref](const Policy& p, const std::string&) { return ToValue(ref(p)); };
  s.set = [ref](Policy& p, const std::string&, const Value& v) { FromValue(v, &ref(p)); };
  return s;
}

// A key of an optional table ([budget_idle], [plan]): unset while the table
// is absent; setting any of its keys brings the table into being.
template <typename Table, typename Ref>
KeySpec OptionalTableKey(std::string key, KeyType type, Table table, Ref ref, Strict strict,
                         std::string doc, std::string example) {
  KeySpec s = Base(std::move(key), type, strict, std::move(doc), std::move(example));
  s.get = [table, ref](const Policy& p, const std::string&) {
    const auto& t = table(p);
    return t ? ToValue(ref(*t)) : Value();
  };
  s.set = [table, ref](Policy& p, const std::string&, const Value& v) {
    auto& t = table(p);
    if (!t) t.emplace();
    FromValue(v, &ref(*t));
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
  s.get = [ref, names](const Policy& p, const std::string&) {
    for (const auto& [value, name] : names) {
      if (value == ref(p)) return Value(name);
    }
    return Value();
  };
  s.set = [ref, names](Policy& p, const std::string&, const Value& v) {
    for (const auto& [value, name] : names) {
      if (name == std::get<std::string>(v)) ref(p) = value;
    }
  };
  return s;
}

// The three arrays of tables, their entries found by name.
auto& Providers(auto& p) { return p.providers; }
auto& Budgets(auto& p) { return p.budget.budgets; }
auto& Prices(auto& p) { return p.budget.prices.models; }
const std::string& NameOf(const enforcer::ProviderMatcher& m) { return m.name; }
const std::string& NameOf(const Budget& b) { return b.name; }
const std::string& NameOf(const ModelPrice& m) { return m.match; }

// A field of an array-of-tables entry. `list` gives the entries, `ref` the
// field of one. Its default is the field's value in a fresh entry.
template <typename List, typename Ref>
KeySpec EntryKey(Scope scope, std::string table, std::string field, KeyType type, List list, Ref ref,
                 Strict strict, std::string doc, std::string example) {
  KeySpec s = Base(table + "." + field, type, strict, std::move(doc), std::move(example));
  s.scope = scope;
  s.get = [list, ref](const Policy& p, const std::string& entry) -> Value {
    for (const auto& e : list(p)) {
      if (NameOf(e) == entry) return ToValue(ref(e));
    }
    return Value();
  };
  s.set = [list, ref](Policy& p, const std::string& entry, const Value& v) {
    for (auto& e : list(p)) {
      if (NameOf(e) == entry) FromValue(v, &ref(e));
    }
  };
  using Entry = std::decay_t<decltype(list(std::declval<const Policy&>()).front())>;
  const Entry fresh{};
  s.default_text = FormatValue(ToValue(ref(fresh)));
  return s;
}

KeySpec ProviderKey(std::string field, KeyType type, auto ref, Strict strict, std::string doc,
                    std::string example) {
  return EntryKey(Scope::kProvider, "provider", std::move(field), type,
                  [](auto& p) -> auto& { return Providers(p); }, ref, strict, std::move(doc),
                  std::move(example));
}

KeySpec BudgetKey(std::string field, KeyType type, auto ref, Strict strict, std::string doc,
                  std::string example) {
  return EntryKey(Scope::kBudget, "budget", std::move(field), type,
                  [](auto& p) -> auto& { return Budgets(p); }, ref, strict, std::move(doc),
                  std::move(example));
}

KeySpec PriceKey(std::string field, KeyType type, auto ref, Strict strict, std::string doc,
                 std::string example) {
  return EntryKey(Scope::kPrice, "price", std::move(field), type,
                  [](auto& p) -> auto& { return Prices(p); }, ref, strict, std::move(doc),
                  std::move(example));
}

void AddIdleKeys(std::vector<KeySpec>& keys) {
  // A string in the model (more sources will come), an enum in the file.
  KeySpec source = Base("idle.source", KeyType::kEnum, Strict::kFixed, "where idle time comes from",
                        "\"auto\"");
  source.choices = {"manual", "auto", "x11", "gnome", "kde", "wayland", "logind", "tty"};
  source.get = [](const Policy& p, const std::string&) { return Value(p.idle.source); };
  source.set = [](Policy& p, const std::string&, const Value& v) {
    p.idle.source = std::get<std::string>(v);
  };
  keys.push_back(std::move(source));
  keys.push_back(PolicyKey(
      "idle.suspend_after", KeyType::kDuration, [](auto& p) -> auto& { return p.idle.suspend_after; },
      Strict::kLower, "idle time after which every provider (and all below it) is stopped", "\"5m\""));
  keys.push_back(PolicyKey(
      "idle.kill_after", KeyType::kDuration, [](auto& p) -> auto& { return p.idle.kill_after; },
      Strict::kLower,
      "idle time after which providers are ended (SIGCONT, SIGTERM, SIGKILL after kill_grace)",
      "\"1h\""));
  keys.push_back(PolicyKey(
      "idle.kill_grace", KeyType::kDuration, [](auto& p) -> auto& { return p.idle.kill_grace; },
      Strict::kLower, "time between SIGTERM and SIGKILL when ending a provider", "\"3s\""));
  keys.push_back(PolicyKey(
      "idle.warn_after", KeyType::kOptionalDuration, [](auto& p) -> auto& { return p.idle.warn_after; },
      Strict::kLower, "idle time at which a warning is shown; shorter than suspend_after", "\"8m\""));
  keys.push_back(PolicyKey(
      "idle.network_after", KeyType::kDuration, [](auto& p) -> auto& { return p.idle.network_after; },
      Strict::kLower,
      "with sandbox.network = \"when-active\": idle time after which providers' new IP "
      "connections are refused",
      "\"1m\""));
}

void AddProviderKeys(std::vector<KeySpec>& keys) {
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
  keys.push_back(ProviderKey(
      "suspend_after", KeyType::kOptionalDuration, [](auto& m) -> auto& { return m.suspend_after; },
      Strict::kLower, "this provider's own idle.suspend_after", "\"3m\""));
  keys.back().default_text = "idle.suspend_after";
  keys.back().fallback = "idle.suspend_after";
  keys.push_back(ProviderKey(
      "kill_after", KeyType::kOptionalDuration, [](auto& m) -> auto& { return m.kill_after; },
      Strict::kLower, "this provider's own idle.kill_after", "\"30m\""));
  keys.back().default_text = "idle.kill_after";
  keys.back().fallback = "idle.kill_after";
}

void AddPowerAndSandboxKeys(std::vector<KeySpec>& keys) {
  using enforcer::AfterWake;
  using enforcer::OnLock;
  using enforcer::SandboxGate;
  using enforcer::SandboxNetwork;
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
  keys.push_back(PolicyKey(
      "power.battery.suspend_after", KeyType::kOptionalDuration,
      [](auto& p) -> auto& { return p.power.battery.suspend_after; }, Strict::kLower,
      "idle.suspend_after while on battery", "\"2m\""));
  keys.back().fallback = "idle.suspend_after";
  keys.push_back(PolicyKey(
      "power.battery.kill_after", KeyType::kOptionalDuration,
      [](auto& p) -> auto& { return p.power.battery.kill_after; }, Strict::kLower,
      "idle.kill_after while on battery", "\"20m\""));
  keys.back().fallback = "idle.kill_after";

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
  keys.push_back(PolicyKey(
      "sandbox.deny_exec", KeyType::kMatcherList, [](auto& p) -> auto& { return p.sandbox.deny_exec; },
      Strict::kSuperset, "matchers (name, exe, args) whose exec the gate refuses",
      "[{ name = \"aider\", exe = \"aider\" }]"));

  using enforcer::SuspendFreezer;
  keys.push_back(EnumKey<SuspendFreezer>(
      "suspend.freezer", [](auto& p) -> auto& { return p.suspend.freezer; },
      {{SuspendFreezer::kSignal, "signal"}, {SuspendFreezer::kAuto, "auto"}, {SuspendFreezer::kCgroup, "cgroup"}},
      Strict::kFixed,
      "how providers are stopped: signal (SIGSTOP), cgroup (the cgroup v2 freezer in dormant's own "
      "delegated cgroup; refuse to start without it), auto (cgroup where it works, else signal)",
      "\"auto\""));
}

void AddBudgetKeys(std::vector<KeySpec>& keys) {
  keys.push_back(BudgetKey(
      "name", KeyType::kName, [](auto& b) -> auto& { return b.name; }, Strict::kFixed,
      "the budget's name in status, notices and logs; a later layer with the same name changes "
      "that budget",
      "\"daily\""));
  keys.back().required = true;
  keys.back().default_text = "(required)";
  keys.push_back(BudgetKey(
      "window", KeyType::kWindow, [](auto& b) -> auto& { return b.window; }, Strict::kWider,
      "the period spend is counted over: a calendar hour, day, week (from Monday) or month in "
      "local time, or a rolling duration",
      "\"5h\""));
  keys.back().required = true;
  keys.back().default_text = "(required)";
  keys.push_back(EntryKey(
      Scope::kBudget, "budget", "scope", KeyType::kEnum, [](auto& p) -> auto& { return Budgets(p); },
      [](auto& b) -> auto& { return b.scope; }, Strict::kOrder,
      "what spend counts: all of this user's usage on this machine, or only supervised providers'",
      "\"supervised\""));
  keys.back().choices = {"supervised", "all"};
  const std::string limit_doc = "spend allowed per window; a budget sets at least one limit";
  keys.push_back(BudgetKey(
      "limit_credits", KeyType::kNumber, [](auto& b) -> auto& { return b.limit_credits; },
      Strict::kLower, limit_doc, "400"));
  keys.back().min = 0;
  keys.back().unit = "credits";
  keys.push_back(BudgetKey(
      "limit_usd", KeyType::kNumber, [](auto& b) -> auto& { return b.limit_usd; }, Strict::kLower,
      limit_doc, "25.5"));
  keys.back().min = 0;
  keys.back().unit = "US dollars";
  keys.push_back(BudgetKey(
      "limit_tokens", KeyType::kInteger, [](auto& b) -> auto& { return b.limit_tokens; },
      Strict::kLower, limit_doc, "2000000"));
  keys.back().min = 0;
  keys.back().unit = "tokens";
  keys.push_back(BudgetKey(
      "warn_at", KeyType::kFractions, [](auto& b) -> auto& { return b.warn_at; }, Strict::kSuperset,
      "fractions of the limit at which a notification and a log line are given, once per window",
      "[0.6, 0.8]"));
  keys.push_back(BudgetKey(
      "on_exhausted", KeyType::kEnum, [](auto& b) -> auto& { return b.on_exhausted; },
      Strict::kOrder, "what happens to supervised providers when the limit is reached",
      "\"suspend\""));
  keys.back().choices = {"suspend", "kill"};
  keys.push_back(BudgetKey(
      "lockout", KeyType::kBool, [](auto& b) -> auto& { return b.lockout; }, Strict::kTrue,
      "while exhausted, a provider that starts again is ended (or suspended) on sight, until the "
      "next window",
      "false"));

  auto idle = [](auto& p) -> auto& { return p.budget.idle; };
  const std::string idle_doc = "spend allowed while the user is idle (per idle stretch); past it, "
                               "providers are suspended at once";
  keys.push_back(OptionalTableKey(
      "budget_idle.limit_credits", KeyType::kNumber, idle,
      [](auto& t) -> auto& { return t.limit_credits; }, Strict::kLower, idle_doc, "0"));
  keys.back().min = 0;
  keys.back().unit = "credits";
  keys.push_back(OptionalTableKey(
      "budget_idle.limit_usd", KeyType::kNumber, idle, [](auto& t) -> auto& { return t.limit_usd; },
      Strict::kLower, idle_doc, "0.5"));
  keys.back().min = 0;
  keys.back().unit = "US dollars";
  keys.push_back(OptionalTableKey(
      "budget_idle.limit_tokens", KeyType::kInteger, idle,
      [](auto& t) -> auto& { return t.limit_tokens; }, Strict::kLower, idle_doc, "0"));
  keys.back().min = 0;
  keys.back().unit = "tokens";
  keys.push_back(OptionalTableKey(
      "plan.max_used_percent", KeyType::kNumber, [](auto& p) -> auto& { return p.budget.plan; },
      [](auto& t) -> auto& { return t.max_used_percent; }, Strict::kLower,
      "the provider's own account-wide rate-limit usage (across machines) at which its "
      "providers are stopped",
      "90"));
  keys.back().min = 0;
  keys.back().max = 100;
  keys.back().unit = "percent";
}

void AddPriceKeys(std::vector<KeySpec>& keys) {
  keys.push_back(PriceKey(
      "match", KeyType::kMatch, [](auto& m) -> auto& { return m.match; }, Strict::kFixed,
      "the entry prices every model whose name contains this (case-insensitive); a later layer "
      "with the same match changes that entry",
      "\"gpt-5.5\""));
  keys.back().required = true;
  keys.back().default_text = "(required)";
  keys.push_back(PriceKey(
      "credits", KeyType::kRates, [](auto& m) -> auto& { return m.credits; }, Strict::kHigher,
      "credits per million tokens of each kind (Codex plans)",
      "{ input = 125, cached_input = 12.5, output = 750 }"));
  keys.push_back(PriceKey(
      "usd", KeyType::kRates, [](auto& m) -> auto& { return m.usd; }, Strict::kHigher,
      "US dollars per million tokens of each kind",
      "{ input = 3, output = 15, cache_write = 3.75, cache_read = 0.3 }"));

  keys.push_back(PolicyKey(
      "prices.fast_multiplier", KeyType::kNumber,
      [](auto& p) -> auto& { return p.budget.prices.fast_multiplier; }, Strict::kHigher,
      "factor applied to the price of Codex usage in fast mode", "2.5"));
  keys.back().min = 1;
  keys.back().max = 1000;
  const std::vector<std::tuple<std::string, std::string>> fallbacks = {
      {"unknown_codex", "Codex usage of a model no [[price]] matches"},
      {"unknown_claude", "Claude usage of a model no [[price]] matches"}};
  for (const auto& [table, what] : fallbacks) {
    bool codex = table == "unknown_codex";
    auto fallback = [codex](auto& p) -> auto& {
      return codex ? p.budget.prices.fallback_codex : p.budget.prices.fallback_claude;
    };
    keys.push_back(PolicyKey(
        "prices." + table + ".credits", KeyType::kRates,
        [fallback](auto& p) -> auto& { return fallback(p).credits; }, Strict::kHigher,
        "credits per million tokens for " + what, "{ input = 125, cached_input = 12.5, output = 750 }"));
    keys.push_back(PolicyKey(
        "prices." + table + ".usd", KeyType::kRates,
        [fallback](auto& p) -> auto& { return fallback(p).usd; }, Strict::kHigher,
        "US dollars per million tokens for " + what, "{ input = 5, output = 25 }"));
  }
}

void AddNotifyKeys(std::vector<KeySpec>& keys) {
  // Notifications on is the stricter side: an admin may lock them on (users
  // then cannot silence dormant's warnings), while locking them off, which
  // would hide why a provider was ended, is not a tightening.
  keys.push_back(PolicyKey(
      "notify.desktop", KeyType::kBool, [](auto& p) -> auto& { return p.notify.desktop; },
      Strict::kTrue,
      "desktop notifications of warnings (idle.warn_after, budget.warn_at) and of providers "
      "ended or stopped by a budget",
      "false"));
}

std::vector<KeySpec> BuildSchema() {
  std::vector<KeySpec> keys;
  AddIdleKeys(keys);
  AddProviderKeys(keys);
  AddPowerAndSandboxKeys(keys);
  AddBudgetKeys(keys);
  AddPriceKeys(keys);
  AddNotifyKeys(keys);
  return keys;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Where a new [[price]] goes: before the first entry whose match it contains
// (a more general one that would otherwise price its models first).
void AddPrice(Policy& p, const std::string& match) {
  auto& models = p.budget.prices.models;
  std::string lower = Lower(match);
  auto it = std::find_if(models.begin(), models.end(), [&](const ModelPrice& m) {
    return lower.find(Lower(m.match)) != std::string::npos;
  });
  models.insert(it, ModelPrice{match, std::nullopt, std::nullopt});
}

template <typename List>
std::vector<std::string> Names(const List& list) {
  std::vector<std::string> names;
  for (const auto& e : list) names.push_back(NameOf(e));
  return names;
}

template <typename List>
void RemoveNamed(List& list, const std::string& name) {
  std::erase_if(list, [&](const auto& e) { return NameOf(e) == name; });
}

std::vector<ArrayTable> BuildArrayTables() {
  std::vector<ArrayTable> tables;
  tables.push_back({"provider", "name", Scope::kProvider,
                    [](const Policy& p) { return Names(p.providers); },
                    [](Policy& p, const std::string& name) {
                      p.providers.push_back({name, "", {}, std::nullopt, std::nullopt});
                    },
                    [](Policy& p, const std::string& name) { RemoveNamed(p.providers, name); }});
  tables.push_back({"budget", "name", Scope::kBudget,
                    [](const Policy& p) { return Names(p.budget.budgets); },
                    [](Policy& p, const std::string& name) {
                      Budget b;
                      b.name = name;
                      p.budget.budgets.push_back(b);
                    },
                    [](Policy& p, const std::string& name) { RemoveNamed(p.budget.budgets, name); }});
  tables.push_back({"price", "match", Scope::kPrice,
                    [](const Policy& p) { return Names(p.budget.prices.models); }, AddPrice,
                    [](Policy& p, const std::string& name) {
                      RemoveNamed(p.budget.prices.models, name);
                    }});
  return tables;
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

std::string FormatNumber(double x) {
  // The shortest text that reads back as the same double ("0.6", not
  // "0.59999999999999998"), always with a '.', 'e' or "inf"/"nan" so TOML
  // reads it as a float.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string FormatRates(const Rates& r) {
  std::string out = "{";
  bool first = true;
  for (const RateKind& kind : RateKinds()) {
    if (const auto& v = r.*kind.field) {
      out += std::string(first ? " " : ", ") + kind.name + " = " + FormatNumber(*v);
      first = false;
    }
  }
  return out + " }";
}

// The rate each token kind is priced at, following enforcer::Rates' rules
// for unset kinds: cached input, cache reads and writes at the input rate,
// one-hour cache writes at the cache-write rate.
std::vector<double> EffectiveRates(const Rates& r) {
  double in = r.input.value_or(0), out = r.output.value_or(0);
  double write = r.cache_write.value_or(in);
  return {in, r.cached_input.value_or(in), out, write, r.cache_read.value_or(in),
          r.cache_write_1h.value_or(write)};
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

// The longest a calendar window can last (a DST change can lengthen a day,
// week or month by an hour).
std::optional<Duration> LongestSpan(const BudgetWindow& w) {
  using std::chrono::hours;
  switch (w.kind) {
    case BudgetWindow::Kind::kHour: return hours(1);
    case BudgetWindow::Kind::kDay: return hours(25);
    case BudgetWindow::Kind::kWeek: return hours(7 * 24 + 1);
    case BudgetWindow::Kind::kMonth: return hours(31 * 24 + 1);
    case BudgetWindow::Kind::kRolling: break;
  }
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

bool IsArrayTable(std::string_view path) { return FindArrayTable(path) != nullptr; }

const std::vector<ArrayTable>& ArrayTables() {
  static const std::vector<ArrayTable> tables = BuildArrayTables();
  return tables;
}

const ArrayTable* FindArrayTable(std::string_view table) {
  for (const auto& t : ArrayTables()) {
    if (t.table == table) return &t;
  }
  return nullptr;
}

const ArrayTable* ArrayTableOf(Scope scope) {
  for (const auto& t : ArrayTables()) {
    if (t.scope == scope) return &t;
  }
  return nullptr;
}

const KeySpec* FindField(const ArrayTable& table, std::string_view field) {
  const KeySpec* spec = FindKey(table.table + "." + std::string(field));
  return spec && spec->scope == table.scope ? spec : nullptr;
}

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

bool ParseBudgetWindow(std::string_view text, BudgetWindow* out, std::string* error) {
  static const std::vector<std::pair<std::string, BudgetWindow::Kind>> calendar = {
      {"hour", BudgetWindow::Kind::kHour},
      {"day", BudgetWindow::Kind::kDay},
      {"week", BudgetWindow::Kind::kWeek},
      {"month", BudgetWindow::Kind::kMonth}};
  for (const auto& [name, kind] : calendar) {
    if (text == name) {
      *out = BudgetWindow{kind, Duration(0)};
      return true;
    }
  }
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) {
    auto near = Nearest(text, {"hour", "day", "week", "month"});
    *error = "\"" + std::string(text) +
             "\" is not hour, day, week, month or a rolling duration such as \"5h\"" +
             (near ? "; did you mean `" + *near + "`?" : "");
    return false;
  }
  Duration d;
  if (!ParseDuration(text, &d, error)) return false;
  // The ledger and the budget tracker count whole seconds.
  if (d.count() % 1000 != 0) {
    *error = "a rolling window is a whole number of seconds, got \"" + std::string(text) + "\"";
    return false;
  }
  *out = BudgetWindow{BudgetWindow::Kind::kRolling, d};
  return true;
}

std::string FormatValue(const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) return "unset";
  if (auto* d = std::get_if<Duration>(&v)) return Quote(enforcer::FormatDuration(*d));
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* x = std::get_if<double>(&v)) return FormatNumber(*x);
  if (auto* s = std::get_if<std::string>(&v)) return Quote(*s);
  if (auto* l = std::get_if<std::vector<std::string>>(&v)) return FormatStrings(*l);
  if (auto* r = std::get_if<Rates>(&v)) return FormatRates(*r);
  if (auto* f = std::get_if<std::vector<double>>(&v)) {
    std::string out = "[";
    for (size_t i = 0; i < f->size(); ++i) out += (i ? ", " : "") + FormatNumber((*f)[i]);
    return out + "]";
  }
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
    case KeyType::kMatch: return "model name part";
    case KeyType::kWindow: return "hour, day, week, month or a duration";
    case KeyType::kFractions: return "array of numbers in (0, 1)";
    case KeyType::kRates: return "table of rates";
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
    case Strict::kWider: return "wider";
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
  return FormatValue(spec.get(enforcer::DefaultPolicy(), ""));
}

bool SameMatcher(const ProviderMatcher& a, const ProviderMatcher& b) {
  return a.name == b.name && a.exe == b.exe && a.args == b.args;
}

const std::vector<RateKind>& RateKinds() {
  static const std::vector<RateKind> kinds = {
      {"input", &Rates::input},           {"cached_input", &Rates::cached_input},
      {"output", &Rates::output},         {"cache_write", &Rates::cache_write},
      {"cache_read", &Rates::cache_read}, {"cache_write_1h", &Rates::cache_write_1h}};
  return kinds;
}

bool RatesAtLeast(const Rates& a, const Rates& b) {
  std::vector<double> ea = EffectiveRates(a), eb = EffectiveRates(b);
  for (size_t i = 0; i < ea.size(); ++i) {
    if (!(ea[i] >= eb[i])) return false;
  }
  return true;
}

bool WindowContains(const BudgetWindow& proposed, const BudgetWindow& locked) {
  using Kind = BudgetWindow::Kind;
  if (proposed == locked) return true;
  if (proposed.kind == Kind::kRolling) {
    // A rolling window of length D holds every interval no longer than D.
    if (locked.kind == Kind::kRolling) return proposed.rolling >= locked.rolling;
    return proposed.rolling >= *LongestSpan(locked);
  }
  if (locked.kind == Kind::kRolling) return false;  // it slides across any calendar boundary
  // Calendar periods nest: hour in day in week, day in month (not week in month).
  auto rank = [](Kind k) { return k == Kind::kHour ? 0 : k == Kind::kDay ? 1 : 2; };
  if (proposed.kind == Kind::kWeek && locked.kind == Kind::kMonth) return false;
  if (proposed.kind == Kind::kMonth && locked.kind == Kind::kWeek) return false;
  return rank(proposed.kind) > rank(locked.kind);
}

bool IsAtLeastAsStrict(const KeySpec& spec, const Value& proposed, const Value& locked) {
  const bool proposed_unset = std::holds_alternative<std::monostate>(proposed);
  const bool locked_unset = std::holds_alternative<std::monostate>(locked);
  switch (spec.strict) {
    case Strict::kFixed: return Equal(proposed, locked);
    case Strict::kWider: {
      auto* p = std::get_if<std::string>(&proposed);
      auto* l = std::get_if<std::string>(&locked);
      BudgetWindow pw, lw;
      std::string error;
      if (!p || !l || !ParseBudgetWindow(*p, &pw, &error) || !ParseBudgetWindow(*l, &lw, &error)) {
        return Equal(proposed, locked);
      }
      return WindowContains(pw, lw);
    }
    case Strict::kLower:
    case Strict::kHigher: {
      if (locked_unset) return true;  // no limit yet: any limit is stricter
      if (proposed_unset) return false;
      if (auto* l = std::get_if<Rates>(&locked)) {
        auto* p = std::get_if<Rates>(&proposed);
        return p && (spec.strict == Strict::kHigher ? RatesAtLeast(*p, *l) : RatesAtLeast(*l, *p));
      }
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
      if (auto* l = std::get_if<std::vector<double>>(&locked)) {
        auto* p = std::get_if<std::vector<double>>(&proposed);
        return p && std::all_of(l->begin(), l->end(), [&](double x) {
                 return std::find(p->begin(), p->end(), x) != p->end();
               });
      }
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
