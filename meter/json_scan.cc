#include "meter/json_scan.h"

#include <array>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

namespace dormant::meter::json_scan {

namespace {

constexpr size_t npos = std::string_view::npos;

size_t SkipWs(std::string_view t, size_t p) {
  while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\r' || t[p] == '\n')) ++p;
  return p;
}

// t[p] is '"': returns one past the closing quote, or npos.
size_t SkipString(std::string_view t, size_t p) {
  ++p;
  for (;;) {
    const void* q = std::memchr(t.data() + p, '"', t.size() - p);
    if (!q) return npos;
    size_t at = static_cast<size_t>(static_cast<const char*>(q) - t.data());
    // Escaped if preceded by an odd run of backslashes.
    size_t back = at;
    while (back > p && t[back - 1] == '\\') --back;
    if ((at - back) % 2 == 0) return at + 1;
    p = at + 1;
  }
}

// t[p] is '{' or '[': returns one past its matching close, or npos.
// Only quotes and brackets matter here: a table finds them, so runs of plain
// characters cost one load and test each.
size_t SkipContainer(std::string_view t, size_t p) {
  static const auto kSpecial = [] {
    std::array<bool, 256> a{};
    for (unsigned char c : {'"', '{', '}', '[', ']'}) a[c] = true;
    return a;
  }();
  const char* d = t.data();
  const size_t n = t.size();
  int depth = 0;
  while (p < n) {
    while (p < n && !kSpecial[static_cast<unsigned char>(d[p])]) ++p;
    if (p >= n) break;
    char c = d[p];
    if (c == '"') {
      p = SkipString(t, p);
      if (p == npos) return npos;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (--depth == 0) {
      return p + 1;
    }
    ++p;
  }
  return npos;
}

}  // namespace

size_t SkipValue(std::string_view t, size_t p) {
  if (p >= t.size()) return npos;
  char c = t[p];
  if (c == '"') return SkipString(t, p);
  if (c == '{' || c == '[') return SkipContainer(t, p);
  size_t start = p;
  while (p < t.size() && t[p] != ',' && t[p] != '}' && t[p] != ']' && t[p] != ' ' &&
         t[p] != '\t' && t[p] != '\r' && t[p] != '\n' && t[p] != ':' && t[p] != '"')
    ++p;
  return p > start ? p : npos;
}

bool Fields(std::string_view t, std::initializer_list<std::string_view> keys, std::string_view* out,
            bool stop_when_found) {
  for (size_t i = 0; i < keys.size(); ++i) out[i] = {};
  size_t found = 0;
  size_t p = SkipWs(t, 0);
  if (p >= t.size() || t[p] != '{') return false;
  p = SkipWs(t, p + 1);
  if (p < t.size() && t[p] == '}') return SkipWs(t, p + 1) == t.size();
  for (;;) {
    if (p >= t.size() || t[p] != '"') return false;
    size_t key_end = SkipString(t, p);
    if (key_end == npos) return false;
    std::string_view key = t.substr(p + 1, key_end - p - 2);
    p = SkipWs(t, key_end);
    if (p >= t.size() || t[p] != ':') return false;
    p = SkipWs(t, p + 1);
    size_t end = SkipValue(t, p);
    if (end == npos) return false;
    size_t i = 0;
    for (std::string_view k : keys) {
      if (k == key) {
        if (out[i].empty()) ++found;
        out[i] = t.substr(p, end - p);
        break;
      }
      ++i;
    }
    if (stop_when_found && found == keys.size()) return true;
    p = SkipWs(t, end);
    if (p >= t.size()) return false;
    if (t[p] == '}') return SkipWs(t, p + 1) == t.size();
    if (t[p] != ',') return false;
    p = SkipWs(t, p + 1);
  }
}

std::optional<std::string> String(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  std::string_view body = raw.substr(1, raw.size() - 2);
  if (body.find('\\') == npos) return std::string(body);
  // Escapes are rare in the fields read (ids, names, paths): let the full
  // parser decode them.
  auto j = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  if (j.is_discarded() || !j.is_string()) return std::nullopt;
  return j.get<std::string>();
}

std::optional<int64_t> Int(std::string_view raw) {
  if (raw.empty() || raw.front() == '"') return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec == std::errc() && p == raw.data() + raw.size()) return v;
  auto d = Number(raw);
  if (d) return static_cast<int64_t>(*d);
  return std::nullopt;
}

std::optional<double> Number(std::string_view raw) {
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') raw = raw.substr(1, raw.size() - 2);
  double v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec == std::errc() && p == raw.data() + raw.size()) return v;
  return std::nullopt;
}

}  // namespace dormant::meter::json_scan
