// Loading the policy stack: built-in defaults, the admin file and fleet
// drop-ins (which may lock keys), the user's file, --policy files, --set
// overrides. Validates every value against the schema (policy_schema.h) and
// reports each problem as "FILE:LINE:COLUMN: KEY: message". Never throws:
// toml++'s exceptions are caught here.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "enforcer/policy.h"

namespace dormant::launcher {

/// One problem, printed as "FILE:LINE:COLUMN: KEY: message". Parts that do
/// not apply are left out: "FILE: message" for a file that cannot be read,
/// "FILE:LINE:COLUMN: message" for a syntax error. --set overrides name the
/// file "--set" and the line is the override's position among them.
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;
  std::string message;
  std::string ToString() const;
};

struct PolicySources {
  std::vector<std::string> files;  // --policy FILE, in order (layer 5)
  std::vector<std::string> sets;   // --set KEY=VALUE, in order (layer 6)
  bool system = true;              // layers 2-3: $DORMANT_SYSTEM_DIR or /etc/dormant
  bool user = true;                // layer 4: $XDG_CONFIG_HOME/dormant/policy.toml or ~/.config/...
};

/// Where an effective value came from. `layer` is 1 (built-in) to 6 (--set).
struct Origin {
  std::string file;  // "(built-in)" for defaults, "--set" for overrides
  int line = 0;
  int column = 0;
  int layer = 1;
  std::string Where() const;  // "FILE:LINE:COLUMN", "FILE" or "(built-in)"
};

/// A lock from an admin file: keys matching `pattern` only get stricter.
struct Lock {
  std::string pattern;  // "idle.suspend_after", "budget.*"
  Origin origin;
};

struct LoadedPolicy {
  enforcer::Policy policy;
  std::vector<Diagnostic> errors;   // non-empty => refuse (exit 2, nothing started / old policy kept)
  std::vector<Diagnostic> notices;  // e.g. a looser value of a locked key not applied
  /// Origin of each effective value, by key path: "idle.suspend_after",
  /// "provider.codex.exe", "budget.daily.limit_credits", "price.gpt-5.5.credits".
  /// Keys absent here hold their built-in default.
  std::map<std::string, Origin> origins;
  std::vector<Lock> locks;
  std::vector<std::string> files;  // every file read, in layer order

  /// The lock that covers `key_path`, or null.
  const Lock* LockFor(const std::string& key_path) const;
  /// The origin of `key_path` ((built-in) when never set by a file).
  Origin OriginOf(const std::string& key_path) const;
};

/// Loads the whole stack. Never throws.
LoadedPolicy LoadPolicy(const PolicySources& sources);

/// One layer to load, for callers that build their own stack.
struct LayerSource {
  enum class Kind { kFile, kText, kSet } kind = Kind::kFile;
  std::string name;    // file path, or a label for kText
  std::string text;    // kText: the TOML; kSet: "KEY=VALUE"
  int layer = 5;       // 2..6, as in the layer list
  bool admin = false;  // may hold [lock]
  bool optional = false;  // a missing file is not an error
};

/// Loads built-in defaults and then `layers` in order. Never throws.
LoadedPolicy LoadLayers(const std::vector<LayerSource>& layers);

/// The layers LoadPolicy would read, in order (system files that exist, the
/// user file, --policy files, --set overrides).
std::vector<LayerSource> StackFor(const PolicySources& sources);

/// The system directory ($DORMANT_SYSTEM_DIR or /etc/dormant) and the user
/// file ($XDG_CONFIG_HOME/dormant/policy.toml, else ~/.config/dormant/policy.toml).
std::string SystemDir();
std::string UserPolicyPath();

/// Policy files are text of at most this many bytes.
inline constexpr size_t kMaxPolicyBytes = 1 << 20;

}  // namespace dormant::launcher
