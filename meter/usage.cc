#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include "meter/parser.h"
#include "meter/usage.h"

namespace dormant::meter {

const char* ToString(ProviderKind kind) {
  return kind == ProviderKind::kCodex ? "codex" : "claude";
}

std::optional<ProviderKind> ParseProviderKind(std::string_view s) {
  if (s == "codex") return ProviderKind::kCodex;
  if (s == "claude") return ProviderKind::kClaude;
  return std::nullopt;
}

double RateLimits::MaxUsedPercent() const {
  return std::max(primary_used_percent.value_or(0), secondary_used_percent.value_or(0));
}

ParseStats& ParseStats::operator+=(const ParseStats& o) {
  lines += o.lines;
  malformed += o.malformed;
  events += o.events;
  repeats += o.repeats;
  bytes += o.bytes;
  return *this;
}

namespace {

// Reads exactly `n` digits at s[pos...]; -1 when they are not all digits.
int Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::optional<int64_t> ParseIsoTime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm). Hand-rolled: it runs on
  // every usage line and std::get_time is locale-bound and slow.
  int y = Digits(s, 0, 4), mo = Digits(s, 5, 2), d = Digits(s, 8, 2);
  int h = Digits(s, 11, 2), mi = Digits(s, 14, 2), sec = Digits(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
      sec < 0 || sec > 60 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  size_t pos = 19;
  int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ms += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = Digits(s, pos + 1, 2), om = Digits(s, pos + 4, 2);
    if (oh < 0 || om < 0) return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
  }
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  int64_t days_since = sys_days{ymd}.time_since_epoch().count();
  int64_t secs = days_since * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1000 + ms;
}

std::string FormatIsoTime(int64_t unix_ms) {
  using namespace std::chrono;
  int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  int64_t ms = unix_ms - secs * 1000;
  int64_t days_since = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t rest = secs - days_since * 86400;
  year_month_day ymd{sys_days{days{days_since}}};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(rest / 3600), static_cast<int>(rest / 60 % 60),
                static_cast<int>(rest % 60), static_cast<int>(ms));
  return buf;
}

int32_t LocalUtcOffset(int64_t unix_ms) {
  time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  if (!localtime_r(&t, &tm)) return 0;
  return static_cast<int32_t>(tm.tm_gmtoff);
}

int64_t NowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

size_t FeedLines(LineParser& parser, std::string_view bytes, const ParseSink& sink) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const void* nl = std::memchr(bytes.data() + pos, '\n', bytes.size() - pos);
    if (!nl) break;
    size_t end = static_cast<size_t>(static_cast<const char*>(nl) - bytes.data());
    parser.ParseLine(bytes.substr(pos, end - pos), sink);
    parser.stats().bytes += end + 1 - pos;
    pos = end + 1;
  }
  return pos;
}

bool LooksLikeJsonObject(std::string_view line) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && blank(line.back())) line.remove_suffix(1);
  return line.size() >= 2 && line.front() == '{' && line.back() == '}';
}

std::unique_ptr<LineParser> MakeParser(ProviderKind kind, std::string path) {
  return kind == ProviderKind::kCodex ? MakeCodexParser(std::move(path))
                                      : MakeClaudeParser(std::move(path));
}

}  // namespace dormant::meter
