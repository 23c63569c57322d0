// The policy schema: one entry per key, saying its type, unit, default, which
// direction is stricter (for locks), its documentation, and how to read and
// write it in the enforcer's Policy model. The loader, `policy show`, and the
// docs check test all iterate this one table, so adding a key is adding one
// entry to Schema() in policy_schema.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "enforcer/policy.h"

namespace dormant::launcher {

/// A key's value, independent of where it lives in the model. monostate is
/// "not set" (optional keys only).
using Value = std::variant<std::monostate, enforcer::Duration, bool, int64_t, double, std::string,
                           std::vector<std::string>, std::vector<enforcer::ProviderMatcher>>;

enum class KeyType {
  kDuration,          // "90s", "10m", "1h30m": a string with units, > 0
  kOptionalDuration,  // as kDuration, but may be left unset
  kEnum,              // a string from `choices`
  kString,            // any non-empty string
  kName,              // a non-empty identifier: letters, digits, '_' and '-'
  kStringList,        // array of non-empty strings
  kMatcherList,       // array of tables {name, exe, args}
  kBool,
  kInteger,           // within [min, max]
  kNumber,            // within [min, max]
};

/// Which change a locked key still accepts from a later layer.
enum class Strict {
  kFixed,     // none: a locked key cannot change at all
  kLower,     // a smaller value is stricter (unset counts as infinite)
  kHigher,    // a larger value is stricter
  kTrue,      // true is stricter than false
  kOrder,     // `choices` run from loosest to strictest
  kSuperset,  // an array that keeps every locked element is stricter
};

/// Keys under an array of tables ([[provider]]) have scope kProvider; their
/// path in origins and locks is "provider.NAME.FIELD".
enum class Scope { kPolicy, kProvider };

struct KeySpec {
  std::string key;  // "idle.suspend_after"; for [[provider]] fields "provider.exe"
  KeyType type = KeyType::kString;
  Scope scope = Scope::kPolicy;
  Strict strict = Strict::kFixed;
  std::vector<std::string> choices;  // kEnum: every value, loosest first
  std::string unit;                  // shown in docs, e.g. "duration"
  std::string default_text;          // docs text when it is not the model's default
  std::string doc;                   // one line
  std::string example;               // a TOML value, e.g. "\"5m\""
  std::optional<double> min, max;    // kInteger and kNumber
  bool required = false;             // [[provider]] exe: a new entry must set it
  // When this key (optional) is unset, `fallback` holds the value in force;
  // a lock on `fallback` also bounds this key ("provider.suspend_after" falls
  // back to "idle.suspend_after", so a locked idle time cannot be escaped).
  std::string fallback;
  // Read and write the model. `m` is the provider entry for kProvider keys.
  std::function<Value(const enforcer::Policy&, const enforcer::ProviderMatcher* m)> get;
  std::function<void(enforcer::Policy&, enforcer::ProviderMatcher* m, const Value&)> set;
};

/// Every key, in documentation order.
const std::vector<KeySpec>& Schema();
/// The spec of `key` ("idle.suspend_after", "provider.exe"), or null.
const KeySpec* FindKey(std::string_view key);
/// Tables that group keys ("idle", "power", "power.battery", "sandbox") and
/// arrays of tables ("provider").
bool IsTable(std::string_view path);
bool IsArrayTable(std::string_view path);
/// Known keys and tables directly below `path` ("" for the top level).
std::vector<std::string> ChildNames(std::string_view path);

/// Parses "1h30m", "90s", "250ms", "2d". Units: ms, s, m, h, d; whole numbers
/// only. Refuses zero, negative, and anything over 365 days, with a message.
bool ParseDuration(std::string_view text, enforcer::Duration* out, std::string* error);

/// The TOML spelling of a value ("\"10m\"", "[\"app-server\"]", "true").
std::string FormatValue(const Value& v);
/// Docs texts for the schema table.
std::string TypeText(const KeySpec& spec);
std::string StrictText(const KeySpec& spec);
std::string DefaultText(const KeySpec& spec);

/// Whether a locked key may move from `locked` to `proposed`.
bool IsAtLeastAsStrict(const KeySpec& spec, const Value& proposed, const Value& locked);
bool SameMatcher(const enforcer::ProviderMatcher& a, const enforcer::ProviderMatcher& b);

/// Levenshtein distance, and the nearest candidate when it is close enough to
/// be a likely typo.
size_t EditDistance(std::string_view a, std::string_view b);
std::optional<std::string> Nearest(std::string_view word, const std::vector<std::string>& candidates);

/// A "glob" lock pattern: '*' matches any run of characters (dots included).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace dormant::launcher
