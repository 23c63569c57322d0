// Strings in a parser's saved state (JSON). Session ids, client names and
// request ids come from the logs and may hold bytes that are not UTF-8, which
// a JSON string cannot carry (nlohmann-json throws on dump): such a string is
// saved as {"hex": "..."} instead, so the state stays exact and a resumed
// parser builds the same event keys as before.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace dormant::meter::state_json {

inline nlohmann::json Save(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return s;
  } catch (const nlohmann::json::type_error&) {
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * s.size());
    for (unsigned char c : s) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    return nlohmann::json{{"hex", hex}};
  }
}

/// The string Save() stored, or nullopt when `v` is neither form.
inline std::optional<std::string> Load(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_object() || !v.contains("hex") || !v["hex"].is_string()) return std::nullopt;
  const std::string& hex = v["hex"].get_ref<const std::string&>();
  if (hex.size() % 2) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string s;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    s += static_cast<char>(hi << 4 | lo);
  }
  return s;
}

}  // namespace dormant::meter::state_json
