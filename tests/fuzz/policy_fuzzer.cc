// libFuzzer target for the policy loader: arbitrary bytes as an admin policy
// file; after a line "--", each further line is a --set override. Besides
// "no crash, no sanitizer report", it checks one property: a policy that loads
// clean prints (policy show) as TOML that loads back to the same policy.
// Build and run: tools/fuzz-policy.sh [SECONDS]
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "launcher/policy_cli.h"
#include "launcher/policy_loader.h"

using dormant::launcher::LayerSource;
using dormant::launcher::LoadLayers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > dormant::launcher::kMaxPolicyBytes) return 0;
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t split = input.find("\n--\n");
  std::string text = input.substr(0, split);
  std::vector<LayerSource> layers = {{LayerSource::Kind::kText, "fuzz.toml", text, 3, true, false}};
  for (size_t start = split == std::string::npos ? input.size() : split + 4; start < input.size();) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    layers.push_back({LayerSource::Kind::kSet, "--set", input.substr(start, end - start), 6, false, false});
    start = end + 1;
  }
  auto loaded = LoadLayers(layers);
  for (const auto& d : loaded.errors) (void)d.ToString();
  if (!loaded.errors.empty()) return 0;

  std::string shown = dormant::launcher::FormatPolicyToml(loaded, false);
  (void)dormant::launcher::FormatPolicyToml(loaded, true);
  (void)dormant::launcher::FormatPolicyJson(loaded, true);
  auto again = LoadLayers({{LayerSource::Kind::kText, "shown.toml", shown, 5, false, false}});
  if (!again.errors.empty() || dormant::launcher::FormatPolicyJson(again, false) !=
                                   dormant::launcher::FormatPolicyJson(loaded, false)) {
    __builtin_trap();  // `policy show` printed something that does not load back
  }
  return 0;
}
