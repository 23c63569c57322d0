// One policy layer (a file's text, or a --set override) turned into a list of
// validated assignments and locks. Merging layers is policy_loader.cc's job.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "launcher/policy_loader.h"
#include "launcher/policy_schema.h"

namespace dormant::launcher {

/// "key = value" from one layer, already checked against the key's type.
struct Assignment {
  std::string path;   // "idle.suspend_after", "provider.codex.exe", "budget.daily.window"
  const KeySpec* spec = nullptr;
  std::string entry;  // the entry's name for keys of an array of tables ("codex", "daily")
  Value value;
  Origin origin;
};

struct Layer {
  std::vector<Assignment> assignments;  // in file order; an entry's name comes before its fields
  std::vector<Lock> locks;
};

/// Parses one file's text. Problems are appended to `errors` (the file is
/// refused) or `notices` (something ignored). Never throws.
Layer ParseLayerText(std::string_view text, const std::string& file, int layer, bool admin,
                     std::vector<Diagnostic>* errors, std::vector<Diagnostic>* notices);

/// Parses the `index`-th (1-based) --set KEY=VALUE. VALUE is TOML when it
/// parses as a TOML value, otherwise a plain string (so `--set
/// idle.suspend_after=5m` needs no quotes). Never throws.
Layer ParseSet(std::string_view arg, int index, std::vector<Diagnostic>* errors);

}  // namespace dormant::launcher
