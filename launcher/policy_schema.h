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
                           std::vector<std::string>, std::vector<enforcer::ProviderMatcher>,
                           std::vector<double>, enforcer::Rates>;

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
  kMatch,             // a model name part: letters, digits, '.', '_' and '-'
  kWindow,            // "hour" | "day" | "week" | "month" or a rolling duration ("5h")
  kFractions,         // array of numbers in (0, 1), kept sorted and without repeats
  kRates,             // table of prices per million tokens by token kind
};

/// Which change a locked key still accepts from a later layer.
enum class Strict {
  kFixed,     // none: a locked key cannot change at all
  kLower,     // a smaller value is stricter (unset counts as infinite)
  kHigher,    // a larger value is stricter
  kTrue,      // true is stricter than false
  kOrder,     // `choices` run from loosest to strictest
  kSuperset,  // an array that keeps every locked element is stricter
  kWider,     // a budget window that contains every window of the locked one
};

/// Keys under an array of tables ([[provider]], [[budget]], [[price]]) have
/// the scope of that table; their path in origins and locks is
/// "TABLE.NAME.FIELD" (NAME is the entry's `name`, or a price's `match`).
enum class Scope { kPolicy, kProvider, kBudget, kPrice };

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
  // Read and write the model. `entry` names the array-table entry for keys
  // that are not kPolicy ("" otherwise); get() of a missing entry is unset,
  // set() of a missing entry does nothing.
  std::function<Value(const enforcer::Policy&, const std::string& entry)> get;
  std::function<void(enforcer::Policy&, const std::string& entry, const Value&)> set;
};

/// An array of tables whose entries later layers merge by name.
struct ArrayTable {
  std::string table;     // "provider", "budget", "price"
  std::string name_key;  // the field naming an entry: "name", or "match" for [[price]]
  Scope scope = Scope::kProvider;
  /// Entry names, in the model's order.
  std::function<std::vector<std::string>(const enforcer::Policy&)> entries;
  /// Adds an entry with only its name set, where a new entry of this table
  /// goes (the end; for [[price]], before any more general match).
  std::function<void(enforcer::Policy&, const std::string& name)> add;
  /// Removes an entry (a refused new [[price]]).
  std::function<void(enforcer::Policy&, const std::string& name)> remove;
};

/// Every key, in documentation order.
const std::vector<KeySpec>& Schema();
/// The spec of `key` ("idle.suspend_after", "provider.exe"), or null.
const KeySpec* FindKey(std::string_view key);
/// Tables that group keys ("idle", "power", "power.battery", "sandbox") and
/// arrays of tables ("provider", "budget", "price").
bool IsTable(std::string_view path);
bool IsArrayTable(std::string_view path);
const std::vector<ArrayTable>& ArrayTables();
/// The array table named `table`, or the one holding keys of `scope`; null if none.
const ArrayTable* FindArrayTable(std::string_view table);
const ArrayTable* ArrayTableOf(Scope scope);
/// The spec of field `field` of array table `table` ("budget", "window"), or null.
const KeySpec* FindField(const ArrayTable& table, std::string_view field);
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
/// The token kinds of a table of rates, in the order they are printed:
/// input, cached_input, output, cache_write, cache_read, cache_write_1h.
struct RateKind {
  const char* name;
  std::optional<double> enforcer::Rates::*field;
};
const std::vector<RateKind>& RateKinds();
/// Whether every token kind costs at least as much in `a` as in `b`, each
/// unset kind taken at the rate it falls back to (see enforcer::Rates).
bool RatesAtLeast(const enforcer::Rates& a, const enforcer::Rates& b);
/// Whether every window of `locked` lies inside one window of `proposed`, so
/// the same limit over `proposed` allows no more spend ("day" inside "week";
/// a rolling "26h" contains any calendar day, DST days included).
bool WindowContains(const enforcer::BudgetWindow& proposed, const enforcer::BudgetWindow& locked);

/// Reads a budget window: "hour", "day", "week", "month", or a rolling
/// duration of whole seconds (as ParseDuration). False with a message if not.
bool ParseBudgetWindow(std::string_view text, enforcer::BudgetWindow* out, std::string* error);

/// Levenshtein distance, and the nearest candidate when it is close enough to
/// be a likely typo.
size_t EditDistance(std::string_view a, std::string_view b);
std::optional<std::string> Nearest(std::string_view word, const std::vector<std::string>& candidates);

/// A "glob" lock pattern: '*' matches any run of characters (dots included).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace dormant::launcher
