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

namespace {

// toml++ 3.3.0's is_non_ascii_horizontal_whitespace() reaches
// TOML_UNREACHABLE (__builtin_unreachable) for U+00A1..U+0499 and
// U+2C0E..U+3007 (but U+3000) when it meets one between tokens ("v = \u0212"):
// its bitmask lets those through to a switch without a case for them.
// UBSan stops there. Debian's GCC build of the library reports the syntax
// error it should (tests/policy_loader_test.cc checks that); the fuzzer skips
// inputs holding such a code point, so it can go on finding our bugs.
// Mirrors toml++ 3.3.0's is_non_ascii_horizontal_whitespace(): the code
// points that reach its TOML_UNREACHABLE are those of its 0x3FA-wide buckets
// 0, 11 and 63 over U+00A0..U+FEFF (U+00A1..U+0499, U+2C5E..U+3057,
// U+FB26..U+FEFE), but for U+3000 itself.
bool ReachesTomlUnreachable(uint32_t c) {
  if (c < 0xa0 || c > 0xfeff) return false;
  const uint64_t bucket = (c - 0xa0) / 0x3fa;
  if ((uint64_t{1} << bucket) & 0x7FFFFFFFFFFFF75Eull) return false;
  if (c == 0xa0 || c == 0x3000 || c == 0xfeff) return false;
  return bucket != 5 && bucket != 7;  // the two buckets its switch handles
}

bool HasTomlUnreachableCodePoint(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    uint32_t cp = 0;
    if ((c >> 5) == 0x6 && i + 1 < s.size()) {
      cp = ((c & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
    } else if ((c >> 4) == 0xe && i + 2 < s.size()) {
      cp = ((c & 0x0fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3fu) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3fu);
    }
    if (ReachesTomlUnreachable(cp)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > dormant::launcher::kMaxPolicyBytes) return 0;
  std::string input(reinterpret_cast<const char*>(data), size);
  if (HasTomlUnreachableCodePoint(input)) return 0;
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
