// A small reader for the few fields the meter needs from one JSON line,
// without building a tree: one pass over an object picks out the raw text of
// the wanted keys and skips the rest (strings by memchr, containers by depth).
// The ingestion speed comes from here; nlohmann-json builds a whole DOM per
// line, which costs ten times more on Codex's and Claude's lines.
//
// What it checks: strings are closed, brackets balance, an object has
// "key": value pairs separated by commas. It does not check numbers or
// literals character by character; a line it accepts but a strict parser would
// refuse yields wrong-typed fields, which the callers treat as absent.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

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

/// A raw value read as a string (unescaped), an integer or a number.
std::optional<std::string> String(std::string_view raw);
std::optional<int64_t> Int(std::string_view raw);
/// A number, or a string holding a number ("873.5").
std::optional<double> Number(std::string_view raw);
inline bool IsNull(std::string_view raw) { return raw == "null"; }

/// End of the value starting at text[pos] (one past it), or npos.
size_t SkipValue(std::string_view text, size_t pos);

}  // namespace dormant::meter::json_scan
