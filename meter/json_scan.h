// A small reader for the few fields the meter needs from one JSON line,
// without building a tree: one pass over an object picks out the raw text of
// the wanted values and skips the rest. Skipping is where the bytes are, so it
// works on 64-byte blocks: bit masks of quotes, backslashes and brackets (SSE2
// on x86-64, a plain loop elsewhere, or with -DDORMANT_NO_SIMD, which the
// tests build to check that path too), the inside of strings from a prefix XOR
// of the quote mask, and only the brackets outside strings looked at one by
// one. nlohmann-json builds a whole DOM per line, which costs tens of times
// more on Codex's and Claude's lines.
//
// What it checks: strings are closed, brackets balance, and every object it
// walks (the wanted paths' objects, and the top one) is "key": value pairs
// separated by commas. Inside values it skips it does not check the syntax
// between brackets, nor numbers and literals character by character; a line
// it accepts but a strict parser would refuse yields wrong-typed fields, which
// the callers treat as absent.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dormant::meter::json_scan {

/// Scans the object that is the whole of `text` (blanks around allowed) and
/// stores in out[i] the raw value of keys[i] (e.g. `{"a":1}`, `"x"`, `12`).
/// Keys not present stay empty. Returns false when `text` is not one
/// well-formed object (a cut line, garbage after it...).
/// With `stop_when_found`, returns as soon as every key was seen, without
/// checking the rest (for a value inside text a full Fields() already checked).
bool Fields(std::string_view text, std::initializer_list<std::string_view> keys,
            std::string_view* out, bool stop_when_found = false);

/// Same for a value that must be an object (a raw value from Fields(), whose
/// brackets were already checked: it stops once every key was seen).
/// Returns false when it is not an object.
inline bool ObjectFields(std::string_view raw, std::initializer_list<std::string_view> keys,
                         std::string_view* out) {
  return !raw.empty() && raw.front() == '{' && Fields(raw, keys, out, true);
}

/// Dotted key paths into one object ("payload.info.total_token_usage"),
/// compiled once into a small tree. A path may also be the prefix of another
/// ("payload.info" and "payload.info.last_token_usage"). Keys containing '.'
/// cannot be named.
class Paths {
 public:
  explicit Paths(std::initializer_list<std::string_view> paths);
  size_t size() const { return count_; }

  struct Node {
    std::string key;
    int out = -1;             // index into the caller's out[], or -1
    std::vector<int> children;
  };

 private:
  friend bool Extract(std::string_view, const Paths&, std::string_view*);
  std::vector<Node> nodes_;   // nodes_[0] is the root (the whole object)
  size_t count_ = 0;
};

/// One pass over the object that is the whole of `text`: checks it as
/// Fields() does (the objects on the wanted paths are walked key by key, the
/// rest skipped) and stores in out[i] the raw value at path i, empty when absent
/// (or when a parent on its path is not an object). Returns false when `text`
/// is not one well-formed object.
bool Extract(std::string_view text, const Paths& paths, std::string_view* out);

/// A raw value read as a string (unescaped), an integer or a number.
std::optional<std::string> String(std::string_view raw);
std::optional<int64_t> Int(std::string_view raw);
/// A number, or a string holding a number ("873.5").
std::optional<double> Number(std::string_view raw);
inline bool IsNull(std::string_view raw) { return raw == "null"; }
/// String(raw), or "" when it is absent or not a string.
inline std::string Text(std::string_view raw) { return String(raw).value_or(""); }
/// Int(raw), or 0 when it is absent or not a number.
inline int64_t Count(std::string_view raw) { return raw.empty() ? 0 : Int(raw).value_or(0); }
/// A string value without its quotes and not unescaped, for values that
/// hold no escapes (timestamps: anything else fails to parse further on);
/// "" when it is not a string.
inline std::string_view Unquoted(std::string_view raw) {
  return raw.size() >= 2 && raw.front() == '"' ? raw.substr(1, raw.size() - 2) : std::string_view();
}

/// End of the value starting at text[pos] (one past it), or npos.
size_t SkipValue(std::string_view text, size_t pos);

}  // namespace dormant::meter::json_scan
