#include "meter/json_scan.h"

#include <charconv>
#include <cstring>

#if defined(__SSE2__) && !defined(DORMANT_NO_SIMD)
#include <emmintrin.h>
#endif

#include <nlohmann/json.hpp>

namespace dormant::meter::json_scan {

namespace {

constexpr size_t npos = std::string_view::npos;

inline bool Blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

size_t SkipWs(std::string_view t, size_t p) {
  while (p < t.size() && Blank(t[p])) ++p;
  return p;
}

inline int Ctz(uint64_t x) { return __builtin_ctzll(x); }

// Key comparison, inline: keys are short, and a call to memcmp per key of a
// walked object costs more than the compare.
inline bool Same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Bit i set where byte i of the 64 at `p` is the character asked for.
struct Block {
  uint64_t quote = 0, backslash = 0, open = 0, close = 0;
};

inline Block Classify(const char* p) {
  Block b;
#if defined(__SSE2__) && !defined(DORMANT_NO_SIMD)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  // '[' | 0x20 == '{' and ']' | 0x20 == '}', and no other byte maps there.
  const __m128i lower = _mm_set1_epi8(0x20), open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}');
  for (int i = 0; i < 4; ++i) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
    __m128i v20 = _mm_or_si128(v, lower);
    auto bits = [&](__m128i eq) {
      return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(eq))) << (16 * i);
    };
    b.quote |= bits(_mm_cmpeq_epi8(v, quote));
    b.backslash |= bits(_mm_cmpeq_epi8(v, backslash));
    b.open |= bits(_mm_cmpeq_epi8(v20, open));
    b.close |= bits(_mm_cmpeq_epi8(v20, close));
  }
#else
  for (int i = 0; i < 64; ++i) {
    const char c = p[i];
    const uint64_t bit = uint64_t{1} << i;
    if (c == '"') b.quote |= bit;
    else if (c == '\\') b.backslash |= bit;
    else if (c == '{' || c == '[') b.open |= bit;
    else if (c == '}' || c == ']') b.close |= bit;
  }
#endif
  return b;
}

// Bit i = XOR of bits 0..i: set from an opening quote up to (not including)
// its closing one.
inline uint64_t PrefixXor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

// The characters escaped by a backslash in this block (`carry`: the first one
// is, by a backslash ending the previous block); sets `carry` for the next.
inline uint64_t Escaped(uint64_t backslash, bool* carry) {
  uint64_t escaped = *carry ? 1 : 0;
  *carry = false;
  while (backslash) {
    int i = Ctz(backslash);
    backslash &= backslash - 1;
    if (escaped >> i & 1) continue;  // itself escaped: "\\"
    if (i == 63) *carry = true;
    else escaped |= uint64_t{2} << i;
  }
  return escaped;
}

// t[p] is '"': returns one past the closing quote, or npos.
size_t SkipString(std::string_view t, size_t p) {
  const char* d = t.data();
  const size_t n = t.size();
  ++p;
#if defined(__SSE2__) && !defined(DORMANT_NO_SIMD)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  while (p + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + p));
    unsigned m = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
    if (m == 0) {
      p += 16;
      continue;
    }
    p += static_cast<size_t>(__builtin_ctz(m));
    if (d[p] == '"') return p + 1;
    p += 2;  // a backslash and what it escapes
  }
#endif
  while (p < n) {
    if (d[p] == '"') return p + 1;
    p += d[p] == '\\' ? 2 : 1;
  }
  return npos;
}

// t[p] is '{' or '[': returns one past its matching close, or npos. Works a
// block of 64 bytes at a time; the last, short block is copied into a padded
// one so nothing past the text is read.
size_t SkipContainer(std::string_view t, size_t p) {
  const char* d = t.data();
  const size_t n = t.size();
  int64_t depth = 0;
  bool in_string = false, escape = false;
  alignas(16) char tail[64];
  for (size_t at = p; at < n; at += 64) {
    const size_t avail = n - at;
    const char* block = d + at;
    uint64_t valid = ~uint64_t{0};
    if (avail < 64) {
      std::memcpy(tail, block, avail);
      std::memset(tail + avail, ' ', 64 - avail);
      block = tail;
      valid = (uint64_t{1} << avail) - 1;
    }
    Block b = Classify(block);
    uint64_t escaped = (b.backslash || escape) ? Escaped(b.backslash, &escape) : 0;
    uint64_t strings = PrefixXor(b.quote & ~escaped) ^ (in_string ? ~uint64_t{0} : 0);
    in_string = strings >> 63;
    uint64_t brackets = (b.open | b.close) & ~strings & valid;
    while (brackets) {
      int i = Ctz(brackets);
      brackets &= brackets - 1;
      if (b.open >> i & 1) ++depth;
      else if (--depth == 0) return at + static_cast<size_t>(i) + 1;
    }
  }
  return npos;
}

// After a key's closing quote at `p`: the start of its value, or npos.
inline size_t ValueStart(std::string_view t, size_t p) {
  p = SkipWs(t, p);
  if (p >= t.size() || t[p] != ':') return npos;
  return SkipWs(t, p + 1);
}

// After a value ending at `p`: the next key's opening quote (*more) or one
// past the closing brace (!*more), or npos.
inline size_t NextMember(std::string_view t, size_t p, bool* more) {
  p = SkipWs(t, p);
  if (p >= t.size()) return npos;
  if (t[p] == '}') {
    *more = false;
    return p + 1;
  }
  if (t[p] != ',') return npos;
  p = SkipWs(t, p + 1);
  if (p >= t.size() || t[p] != '"') return npos;
  *more = true;
  return p;
}

// What an on_member callback of Members() returns to end the walk early, as
// a success (no text is this long).
constexpr size_t kStop = npos - 1;

// Walks the members of the object at t[p] == '{': on_member(key, start)
// gets each key and where its value starts, and returns one past the value
// (npos: not well formed; kStop: enough seen). Returns one past the closing
// '}', npos when the object is not well formed, or kStop.
template <class OnMember>
size_t Members(std::string_view t, size_t p, OnMember&& on_member) {
  p = SkipWs(t, p + 1);
  if (p < t.size() && t[p] == '}') return p + 1;
  if (p >= t.size() || t[p] != '"') return npos;
  for (bool more = true; more;) {
    size_t key_end = SkipString(t, p);
    if (key_end == npos) return npos;
    std::string_view key = t.substr(p + 1, key_end - p - 2);
    p = ValueStart(t, key_end);
    if (p == npos || p >= t.size()) return npos;
    size_t end = on_member(key, p);
    if (end == npos || end == kStop) return end;
    p = NextMember(t, end, &more);
    if (p == npos) return npos;
  }
  return p;
}

}  // namespace

size_t SkipValue(std::string_view t, size_t p) {
  if (p >= t.size()) return npos;
  char c = t[p];
  if (c == '"') return SkipString(t, p);
  if (c == '{' || c == '[') return SkipContainer(t, p);
  size_t start = p;
  while (p < t.size() && t[p] != ',' && t[p] != '}' && t[p] != ']' && !Blank(t[p]) && t[p] != ':' &&
         t[p] != '"' && t[p] != '{' && t[p] != '[')
    ++p;
  return p > start ? p : npos;
}

bool Fields(std::string_view t, std::initializer_list<std::string_view> keys, std::string_view* out,
            bool stop_when_found) {
  for (size_t i = 0; i < keys.size(); ++i) out[i] = {};
  size_t found = 0;
  size_t p = SkipWs(t, 0);
  if (p >= t.size() || t[p] != '{') return false;
  size_t end = Members(t, p, [&](std::string_view key, size_t start) {
    size_t value_end = SkipValue(t, start);
    if (value_end == npos) return npos;
    size_t i = 0;
    for (std::string_view k : keys) {
      if (Same(k, key)) {
        if (out[i].empty()) ++found;
        out[i] = t.substr(start, value_end - start);
        break;
      }
      ++i;
    }
    return stop_when_found && found == keys.size() ? kStop : value_end;
  });
  if (end == kStop) return true;
  return end != npos && SkipWs(t, end) == t.size();
}

Paths::Paths(std::initializer_list<std::string_view> paths) {
  nodes_.emplace_back();
  for (std::string_view path : paths) {
    int node = 0;
    for (;;) {
      size_t dot = path.find('.');
      std::string_view key = path.substr(0, dot);
      int next = -1;
      for (int c : nodes_[static_cast<size_t>(node)].children)
        if (nodes_[static_cast<size_t>(c)].key == key) next = c;
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_.push_back(Node{std::string(key), -1, {}});
        nodes_[static_cast<size_t>(node)].children.push_back(next);
      }
      node = next;
      if (dot == std::string_view::npos) break;
      path.remove_prefix(dot + 1);
    }
    nodes_[static_cast<size_t>(node)].out = static_cast<int>(count_++);
  }
}

namespace {

struct Walker {
  std::string_view t;
  const std::vector<Paths::Node>& nodes;
  std::string_view* out;

  // t[p] is '{': walks the object whose wanted keys are node's children;
  // returns one past its '}', or npos.
  size_t Object(size_t p, const Paths::Node& node) const {
    return Members(t, p, [&](std::string_view key, size_t start) {
      const Paths::Node* want = nullptr;
      for (int c : node.children) {
        if (Same(nodes[static_cast<size_t>(c)].key, key)) {
          want = &nodes[static_cast<size_t>(c)];
          break;
        }
      }
      size_t end = want && !want->children.empty() && t[start] == '{' ? Object(start, *want)
                                                                       : SkipValue(t, start);
      if (end != npos && want && want->out >= 0) out[want->out] = t.substr(start, end - start);
      return end;
    });
  }
};

}  // namespace

bool Extract(std::string_view t, const Paths& paths, std::string_view* out) {
  for (size_t i = 0; i < paths.size(); ++i) out[i] = {};
  size_t p = SkipWs(t, 0);
  if (p >= t.size() || t[p] != '{') return false;
  Walker w{t, paths.nodes_, out};
  size_t end = w.Object(p, paths.nodes_[0]);
  return end != npos && SkipWs(t, end) == t.size();
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
  // 1.2e3 or 1200.0: a whole number written as a float. Out of range (or not
  // finite) it is no count at all: the cast would be undefined.
  auto d = Number(raw);
  if (d && *d >= -9.2e18 && *d <= 9.2e18) return static_cast<int64_t>(*d);
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
