#include "enforcer/budget.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

namespace dormant::enforcer {

// ---------------------------------------------------------------- tokens, prices

TokenCounts& TokenCounts::operator+=(const TokenCounts& o) {
  input += o.input;
  cached_input += o.cached_input;
  output += o.output;
  reasoning += o.reasoning;
  cache_write += o.cache_write;
  cache_read += o.cache_read;
  total += o.total;
  cache_write_1h += o.cache_write_1h;
  return *this;
}

TokenCounts& TokenCounts::operator-=(const TokenCounts& o) {
  input -= o.input;
  cached_input -= o.cached_input;
  output -= o.output;
  reasoning -= o.reasoning;
  cache_write -= o.cache_write;
  cache_read -= o.cache_read;
  total -= o.total;
  cache_write_1h -= o.cache_write_1h;
  return *this;
}

namespace {

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Case-insensitive substring test without allocating: it runs per event.
bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && LowerAscii(hay[i + k]) == LowerAscii(needle[k])) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

// Cost in one currency, per million tokens.
double PriceIn(const Rates& r, const TokenCounts& t, bool codex_style) {
  double in = r.input.value_or(0);
  double out = r.output.value_or(0);
  if (codex_style) {
    // OpenAI counts cached tokens inside input: price them apart once.
    int64_t cached = std::min(t.cached_input, t.input);
    double uncached = static_cast<double>(t.input - cached);
    return uncached * in + static_cast<double>(cached) * r.cached_input.value_or(in) +
           static_cast<double>(t.output) * out;
  }
  int64_t write_1h = std::min(t.cache_write_1h, t.cache_write);
  double write = r.cache_write.value_or(in);
  return static_cast<double>(t.input) * in +
         static_cast<double>(t.cache_write - write_1h) * write +
         static_cast<double>(write_1h) * r.cache_write_1h.value_or(write) +
         static_cast<double>(t.cache_read) * r.cache_read.value_or(in) +
         static_cast<double>(t.output) * out;
}

Rates Claude(double in, double out) {
  // Anthropic prices 5-minute cache writes at 1.25x input, one-hour writes at
  // 2x, cache reads at 0.1x.
  return Rates{in, std::nullopt, out, in * 1.25, in * 0.1, in * 2};
}

Rates CodexCredits(double in, double cached, double out) {
  return Rates{in, cached, out, std::nullopt, std::nullopt, std::nullopt};
}

}  // namespace

const ModelPrice& MatchPrice(const PriceTable& table, std::string_view model, bool codex_style,
                             bool* unknown) {
  for (const ModelPrice& m : table.models) {
    if (!m.match.empty() && ContainsNoCase(model, m.match)) {
      *unknown = false;
      return m;
    }
  }
  *unknown = true;
  return codex_style ? table.fallback_codex : table.fallback_claude;
}

Cost PriceWith(const PriceTable& table, const ModelPrice& price, bool unknown,
               const TokenCounts& tokens, bool codex_style, bool fast) {
  Cost cost;
  cost.unknown_model = unknown;
  double factor = fast ? table.fast_multiplier : 1.0;
  if (price.credits) cost.credits = PriceIn(*price.credits, tokens, codex_style) / 1e6 * factor;
  if (price.usd) cost.usd = PriceIn(*price.usd, tokens, codex_style) / 1e6 * factor;
  return cost;
}

Cost PriceUsage(const PriceTable& table, std::string_view model, const TokenCounts& tokens,
                bool codex_style, bool fast) {
  bool unknown = false;
  const ModelPrice& price = MatchPrice(table, model, codex_style, &unknown);
  return PriceWith(table, price, unknown, tokens, codex_style, fast);
}

PriceTable DefaultPriceTable() {
  PriceTable t;
  // Codex: credits per million tokens (input / cached input / output).
  t.models.push_back({"gpt-5.5", CodexCredits(125, 12.5, 750), std::nullopt});
  t.models.push_back({"gpt-5.4", CodexCredits(62.5, 6.25, 375), std::nullopt});
  t.models.push_back({"gpt-5.3-codex", CodexCredits(43.75, 4.375, 350), std::nullopt});
  // Claude: USD per million. Opus before 4.5 kept the old 15 / 75.
  t.models.push_back({"claude-3-opus", std::nullopt, Claude(15, 75)});
  t.models.push_back({"opus-4-1", std::nullopt, Claude(15, 75)});
  t.models.push_back({"opus-4-2025", std::nullopt, Claude(15, 75)});
  t.models.push_back({"opus", std::nullopt, Claude(5, 25)});  // Opus 4.5 and later
  t.models.push_back({"sonnet", std::nullopt, Claude(3, 15)});
  t.models.push_back({"3-5-haiku", std::nullopt, Claude(0.8, 4)});
  t.models.push_back({"3-haiku", std::nullopt, Claude(0.25, 1.25)});
  t.models.push_back({"haiku", std::nullopt, Claude(1, 5)});  // Haiku 4.5
  // Unknown models are priced high rather than free: GPT-5.5 and Opus rates.
  t.fallback_codex = {"", CodexCredits(125, 12.5, 750), std::nullopt};
  t.fallback_claude = {"", std::nullopt, Claude(5, 25)};
  return t;
}

// ---------------------------------------------------------------- the policy model

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Error Bad(std::string what) { return Error{22, std::move(what)}; }

Expected<double> ParseNumber(std::string_view key, std::string_view text) {
  text = Trim(text);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v) || v < 0)
    return Bad(std::string(key) + ": expected a number >= 0, got '" + std::string(text) + "'");
  return v;
}

Expected<bool> ParseBool(std::string_view key, std::string_view text) {
  text = Trim(text);
  if (text == "true") return true;
  if (text == "false") return false;
  return Bad(std::string(key) + ": expected true or false, got '" + std::string(text) + "'");
}

// Reads the limit_* keys shared by [[budget]] and [budget_idle].
template <typename T>
Expected<void> ReadLimits(const Fields& f, T* out) {
  if (auto it = f.find("limit_credits"); it != f.end()) {
    auto v = ParseNumber(it->first, it->second);
    if (!v) return v.error();
    out->limit_credits = *v;
  }
  if (auto it = f.find("limit_usd"); it != f.end()) {
    auto v = ParseNumber(it->first, it->second);
    if (!v) return v.error();
    out->limit_usd = *v;
  }
  if (auto it = f.find("limit_tokens"); it != f.end()) {
    auto v = ParseNumber(it->first, it->second);
    if (!v) return v.error();
    if (*v != std::floor(*v)) return Bad("limit_tokens: expected a whole number");
    out->limit_tokens = static_cast<int64_t>(*v);
  }
  if (!out->limit_credits && !out->limit_usd && !out->limit_tokens)
    return Bad("needs one of limit_credits, limit_usd, limit_tokens");
  return {};
}

Expected<std::vector<double>> ParseFractions(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '[') text.remove_prefix(1);
  if (!text.empty() && text.back() == ']') text.remove_suffix(1);
  std::vector<double> out;
  while (!Trim(text).empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    auto v = ParseNumber("warn_at", item);
    if (!v) return v.error();
    if (*v <= 0 || *v >= 1) return Bad("warn_at: fractions must be in (0, 1)");
    out.push_back(*v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

const std::vector<std::string> kBudgetKeys = {"name",        "window",    "scope",
                                              "limit_credits", "limit_usd", "limit_tokens",
                                              "warn_at",     "on_exhausted", "lockout"};

Expected<void> OnlyKeys(const Fields& f, const std::vector<std::string>& keys,
                        const std::string& table) {
  for (const auto& [k, v] : f) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      return Bad(table + ": unknown key '" + k + "'");
  }
  return {};
}

}  // namespace

Expected<BudgetWindow> ParseWindow(std::string_view text) {
  text = Trim(text);
  if (text == "hour") return BudgetWindow{BudgetWindow::Kind::kHour};
  if (text == "day") return BudgetWindow{BudgetWindow::Kind::kDay};
  if (text == "week") return BudgetWindow{BudgetWindow::Kind::kWeek};
  if (text == "month") return BudgetWindow{BudgetWindow::Kind::kMonth};
  // A rolling duration: one or more <number><unit>, unit in d h m s.
  Duration total{0};
  std::string_view rest = text;
  while (!rest.empty()) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || p == rest.data() + rest.size() || n < 0) break;
    char unit = *p;
    rest.remove_prefix(static_cast<size_t>(p - rest.data()) + 1);
    if (unit == 'd') total += std::chrono::hours(24 * n);
    else if (unit == 'h') total += std::chrono::hours(n);
    else if (unit == 'm') total += std::chrono::minutes(n);
    else if (unit == 's') total += std::chrono::seconds(n);
    else return Bad("window: unknown unit in '" + std::string(text) + "'");
  }
  if (!rest.empty() || total <= Duration::zero())
    return Bad("window: expected hour, day, week, month or a duration like 5h, got '" +
               std::string(text) + "'");
  return BudgetWindow{BudgetWindow::Kind::kRolling, total};
}

std::string ToString(const BudgetWindow& w) {
  switch (w.kind) {
    case BudgetWindow::Kind::kHour: return "hour";
    case BudgetWindow::Kind::kDay: return "day";
    case BudgetWindow::Kind::kWeek: return "week";
    case BudgetWindow::Kind::kMonth: return "month";
    case BudgetWindow::Kind::kRolling: return FormatDuration(w.rolling);
  }
  return "?";
}

Expected<Budget> MakeBudget(const Fields& f) {
  Budget b;
  auto name = f.find("name");
  b.name = name == f.end() ? "" : std::string(Trim(name->second));
  if (b.name.empty()) return Bad("[[budget]]: needs a name");
  std::string where = "budget '" + b.name + "': ";
  auto fail = [&](const Error& e) { return Bad(where + e.message); };
  if (auto ok = OnlyKeys(f, kBudgetKeys, "[[budget]]"); !ok) return fail(ok.error());
  auto window = f.find("window");
  if (window == f.end()) return Bad(where + "needs a window");
  auto w = ParseWindow(window->second);
  if (!w) return fail(w.error());
  b.window = *w;
  if (auto it = f.find("scope"); it != f.end()) {
    std::string_view s = Trim(it->second);
    if (s == "all") b.scope = BudgetScope::kAll;
    else if (s == "supervised") b.scope = BudgetScope::kSupervised;
    else return Bad(where + "scope: expected all or supervised");
  }
  if (auto ok = ReadLimits(f, &b); !ok) return fail(ok.error());
  if (auto it = f.find("warn_at"); it != f.end()) {
    auto v = ParseFractions(it->second);
    if (!v) return fail(v.error());
    b.warn_at = *v;
  }
  if (auto it = f.find("on_exhausted"); it != f.end()) {
    std::string_view s = Trim(it->second);
    if (s == "kill") b.on_exhausted = OnExhausted::kKill;
    else if (s == "suspend") b.on_exhausted = OnExhausted::kSuspend;
    else return Bad(where + "on_exhausted: expected kill or suspend");
  }
  if (auto it = f.find("lockout"); it != f.end()) {
    auto v = ParseBool("lockout", it->second);
    if (!v) return fail(v.error());
    b.lockout = *v;
  }
  return b;
}

Expected<IdleBudget> MakeIdleBudget(const Fields& f) {
  if (auto ok = OnlyKeys(f, {"limit_credits", "limit_usd", "limit_tokens"}, "[budget_idle]"); !ok)
    return ok.error();
  IdleBudget b;
  if (auto ok = ReadLimits(f, &b); !ok) return Bad("[budget_idle]: " + ok.error().message);
  return b;
}

Expected<PlanLimit> MakePlanLimit(const Fields& f) {
  if (auto ok = OnlyKeys(f, {"max_used_percent"}, "[plan]"); !ok) return ok.error();
  auto it = f.find("max_used_percent");
  if (it == f.end()) return Bad("[plan]: needs max_used_percent");
  auto v = ParseNumber("max_used_percent", it->second);
  if (!v) return Bad("[plan]: " + v.error().message);
  if (*v > 100) return Bad("[plan]: max_used_percent must be <= 100");
  return PlanLimit{*v};
}

Expected<BudgetPolicy> ParseBudgetDescription(std::string_view text) {
  BudgetPolicy policy;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t sp = line.find_first_of(" \t");
    std::string_view table = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? "" : line.substr(sp);
    Fields fields;
    while (!(rest = Trim(rest)).empty()) {
      size_t end = rest.find_first_of(" \t");
      std::string_view item = rest.substr(0, end);
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
      size_t eq = item.find('=');
      if (eq == std::string_view::npos)
        return Bad("line " + std::to_string(line_no) + ": expected key=value, got '" +
                   std::string(item) + "'");
      fields[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    }
    auto at = [&](const Error& e) { return Bad("line " + std::to_string(line_no) + ": " + e.message); };
    if (table == "budget") {
      auto b = MakeBudget(fields);
      if (!b) return at(b.error());
      policy.budgets.push_back(*b);
    } else if (table == "budget_idle") {
      auto b = MakeIdleBudget(fields);
      if (!b) return at(b.error());
      policy.idle = *b;
    } else if (table == "plan") {
      auto p = MakePlanLimit(fields);
      if (!p) return at(p.error());
      policy.plan = *p;
    } else {
      return at(Error{22, "unknown table '" + std::string(table) + "'"});
    }
  }
  return policy;
}

// ---------------------------------------------------------------- arithmetic

namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t DaysToMs(std::chrono::sys_days d) {
  return static_cast<int64_t>(d.time_since_epoch().count()) * kDayMs;
}

// The start of the calendar period containing `local` (local wall-clock ms).
int64_t PeriodStart(BudgetWindow::Kind kind, int64_t local) {
  using namespace std::chrono;
  switch (kind) {
    case BudgetWindow::Kind::kHour:
      return FloorDiv(local, kHourMs) * kHourMs;
    case BudgetWindow::Kind::kWeek: {
      sys_days day{days{FloorDiv(local, kDayMs)}};
      // iso_encoding: Monday 1 .. Sunday 7.
      return DaysToMs(day - days{weekday{day}.iso_encoding() - 1});
    }
    case BudgetWindow::Kind::kMonth: {
      year_month_day ymd{sys_days{days{FloorDiv(local, kDayMs)}}};
      return DaysToMs(sys_days{ymd.year() / ymd.month() / 1});
    }
    default:
      return FloorDiv(local, kDayMs) * kDayMs;
  }
}

// The start of the period after the one starting at `start`.
int64_t PeriodAfter(BudgetWindow::Kind kind, int64_t start) {
  using namespace std::chrono;
  switch (kind) {
    case BudgetWindow::Kind::kHour: return start + kHourMs;
    case BudgetWindow::Kind::kWeek: return start + 7 * kDayMs;
    case BudgetWindow::Kind::kMonth: {
      year_month_day ymd{sys_days{days{FloorDiv(start, kDayMs)}}};
      year_month next = ymd.year() / ymd.month() + months{1};
      return DaysToMs(sys_days{next / 1});
    }
    default: return start + kDayMs;
  }
}

}  // namespace

TimeZone FixedZone(int32_t utc_offset_s) {
  return [utc_offset_s](int64_t) { return utc_offset_s; };
}

int64_t LocalToUnix(int64_t local_ms, const TimeZone& zone) {
  auto offset_ms = [&](int64_t u) { return static_cast<int64_t>(zone(u)) * 1000; };
  // Every instant whose local clock reads `local_ms` is local_ms - offset for
  // an offset in force then. Offsets are within a day of UTC, so the ones in
  // force a day either side (and at the candidates themselves, should two
  // changes fall that close) are all there are to try.
  std::vector<int64_t> offsets;
  auto note = [&](int64_t o) {
    if (offsets.size() < 8 && std::find(offsets.begin(), offsets.end(), o) == offsets.end())
      offsets.push_back(o);
  };
  note(offset_ms(local_ms - kDayMs));
  note(offset_ms(local_ms));
  note(offset_ms(local_ms + kDayMs));
  std::optional<int64_t> first;
  for (size_t i = 0; i < offsets.size(); ++i) {
    int64_t u = local_ms - offsets[i];
    int64_t at = offset_ms(u);
    if (at == offsets[i]) {
      // The local clock reads local_ms at u; a fall-back makes that twice.
      if (!first || u < *first) first = u;
    } else {
      note(at);
    }
  }
  if (first) return *first;
  // Nobody's clock reads local_ms: a spring-forward skipped it. The answer is
  // the change itself, the first instant reading later; it lies between the
  // candidates, where the local clock only moves forward.
  auto [min_o, max_o] = std::minmax_element(offsets.begin(), offsets.end());
  int64_t lo = local_ms - *max_o;  // reads before local_ms
  int64_t hi = local_ms - *min_o;  // reads after it
  if (lo + offset_ms(lo) >= local_ms || hi + offset_ms(hi) < local_ms) {
    return local_ms - offset_ms(local_ms - offset_ms(local_ms));  // a zone we cannot read: best effort
  }
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    (mid + offset_ms(mid) >= local_ms ? hi : lo) = mid;
  }
  return hi;
}

WindowSpan WindowAt(const BudgetWindow& window, int64_t now_ms, const TimeZone& zone) {
  if (window.kind == BudgetWindow::Kind::kRolling) return {now_ms - window.rolling.count(), now_ms};
  int64_t local = now_ms + static_cast<int64_t>(zone(now_ms)) * 1000;
  int64_t from = PeriodStart(window.kind, local);
  int64_t to = PeriodAfter(window.kind, from);
  WindowSpan span{LocalToUnix(from, zone), LocalToUnix(to, zone)};
  // A fall-back across a period's start (a clock set back from 03:30 to 02:30
  // read 03:00 before) leaves `now` past the end: the next period began first.
  for (int i = 0; span.end_ms <= now_ms && i < 4; ++i) {
    to = PeriodAfter(window.kind, to);
    span = {span.end_ms, LocalToUnix(to, zone)};
  }
  return span;
}

WindowSpan WindowAt(const BudgetWindow& window, WallTime now) {
  return WindowAt(window, now.unix_ms, FixedZone(now.utc_offset_s));
}

Spend& Spend::operator+=(const Spend& o) {
  credits += o.credits;
  usd += o.usd;
  tokens += o.tokens;
  return *this;
}

Spend& Spend::operator-=(const Spend& o) {
  credits -= o.credits;
  usd -= o.usd;
  tokens -= o.tokens;
  return *this;
}

double SpendFraction(const Spend& s, std::optional<double> limit_credits,
                     std::optional<double> limit_usd, std::optional<int64_t> limit_tokens) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  auto frac = [&](double spent, double limit) {
    if (limit <= 0) return spent > 0 ? kInf : 0.0;
    return spent / limit;
  };
  double f = 0;
  if (limit_credits) f = std::max(f, frac(s.credits, *limit_credits));
  if (limit_usd) f = std::max(f, frac(s.usd, *limit_usd));
  if (limit_tokens) f = std::max(f, frac(static_cast<double>(s.tokens), static_cast<double>(*limit_tokens)));
  return f;
}

const char* ToString(BudgetNotice::Kind kind) {
  switch (kind) {
    case BudgetNotice::Kind::kWarn: return "warn";
    case BudgetNotice::Kind::kExhausted: return "exhausted";
    case BudgetNotice::Kind::kReset: return "reset";
    case BudgetNotice::Kind::kIdleExceeded: return "idle-exceeded";
    case BudgetNotice::Kind::kPlanExceeded: return "plan-exceeded";
    case BudgetNotice::Kind::kPlanCleared: return "plan-cleared";
  }
  return "?";
}

namespace {

std::string Percent(double f) {
  if (std::isinf(f)) return "over a zero limit";
  return std::to_string(static_cast<int64_t>(std::floor(f * 100 + 1e-9))) + "%";
}

bool Rolling(const Budget& b) { return b.window.kind == BudgetWindow::Kind::kRolling; }

}  // namespace

BudgetTracker::BudgetTracker(BudgetPolicy policy, TimeZone zone)
    : policy_(std::move(policy)), zone_(std::move(zone)), states_(policy_.budgets.size()) {}

WindowSpan BudgetTracker::Window(const Budget& b, WallTime now) const {
  return zone_ ? WindowAt(b.window, now.unix_ms, zone_) : WindowAt(b.window, now);
}

double BudgetTracker::Fraction(const Budget& b, const Spend& s) const {
  return SpendFraction(s, b.limit_credits, b.limit_usd, b.limit_tokens);
}

void BudgetTracker::Roll(size_t i, WallTime now, std::vector<BudgetNotice>* out) {
  const Budget& b = policy_.budgets[i];
  State& st = states_[i];
  WindowSpan span = Window(b, now);
  if (Rolling(b)) {
    bool dropped = false;
    while (!st.samples.empty() && st.samples.front().unix_ms <= span.start_ms) {
      st.samples.pop_front();
      dropped = true;
    }
    if (dropped) {
      // Re-sum rather than subtract so rounding never leaves a residue.
      st.spend = {};
      for (const SpendSample& s : st.samples) st.spend += s.spend;
      double f = Fraction(b, st.spend);
      while (st.warned > 0 && f < b.warn_at[st.warned - 1]) --st.warned;
      if (st.exhausted && f < 1.0) {
        st.exhausted = false;
        out->push_back({BudgetNotice::Kind::kReset, b.name, f, b.on_exhausted, b.lockout,
                        "budget '" + b.name + "' back under its limit (" + Percent(f) + " of the last " +
                            ToString(b.window) + ")"});
      }
    }
    st.span = span;
    return;
  }
  if (span.start_ms == st.span.start_ms && span.end_ms == st.span.end_ms) return;
  bool was_exhausted = st.exhausted;
  bool first = st.span.start_ms == 0 && st.span.end_ms == 0;
  st.span = span;
  st.spend = {};
  st.warned = 0;
  st.exhausted = false;
  if (was_exhausted && !first) {
    out->push_back({BudgetNotice::Kind::kReset, b.name, 0, b.on_exhausted, b.lockout,
                    "budget '" + b.name + "': a new " + ToString(b.window) + " began"});
  }
}

void BudgetTracker::Check(size_t i, std::vector<BudgetNotice>* out) {
  const Budget& b = policy_.budgets[i];
  State& st = states_[i];
  double f = Fraction(b, st.spend);
  while (st.warned < b.warn_at.size() && f >= b.warn_at[st.warned]) {
    double at = b.warn_at[st.warned++];
    if (f >= 1.0) continue;  // exhaustion says it all
    out->push_back({BudgetNotice::Kind::kWarn, b.name, f, b.on_exhausted, b.lockout,
                    "budget '" + b.name + "' passed " + Percent(at) + ": " + Percent(f) +
                        " of its limit this " + ToString(b.window)});
  }
  if (!st.exhausted && f >= 1.0) {
    st.exhausted = true;
    out->push_back({BudgetNotice::Kind::kExhausted, b.name, f, b.on_exhausted, b.lockout,
                    "budget '" + b.name + "' exhausted: " + Percent(f) + " of its limit this " +
                        ToString(b.window)});
  }
}

std::vector<BudgetNotice> BudgetTracker::Add(const SpendSample& sample, WallTime now) {
  std::vector<BudgetNotice> out;
  for (size_t i = 0; i < states_.size(); ++i) Roll(i, now, &out);
  for (size_t i = 0; i < states_.size(); ++i) {
    const Budget& b = policy_.budgets[i];
    State& st = states_[i];
    if (b.scope == BudgetScope::kSupervised && !sample.supervised) continue;
    // Before this window (a rolling window excludes its start: an event
    // leaves it exactly `rolling` after it happened).
    if (sample.unix_ms < st.span.start_ms || (Rolling(b) && sample.unix_ms == st.span.start_ms))
      continue;
    if (Rolling(b)) {
      auto pos = std::upper_bound(st.samples.begin(), st.samples.end(), sample.unix_ms,
                                  [](int64_t t, const SpendSample& s) { return t < s.unix_ms; });
      st.samples.insert(pos, sample);
    }
    st.spend += sample.spend;
    Check(i, &out);
  }
  if (policy_.idle && sample.idle.value_or(false)) {
    idle_spend_ += sample.spend;
    const IdleBudget& ib = *policy_.idle;
    bool over = (ib.limit_credits && idle_spend_.credits > *ib.limit_credits) ||
                (ib.limit_usd && idle_spend_.usd > *ib.limit_usd) ||
                (ib.limit_tokens && idle_spend_.tokens > *ib.limit_tokens);
    if (over && !idle_exceeded_) {
      idle_exceeded_ = true;
      out.push_back({BudgetNotice::Kind::kIdleExceeded, "budget_idle",
                     SpendFraction(idle_spend_, ib.limit_credits, ib.limit_usd, ib.limit_tokens),
                     OnExhausted::kSuspend, false,
                     "spend while idle passed [budget_idle]: " + std::to_string(idle_spend_.tokens) +
                         " tokens"});
    }
  }
  return out;
}

std::vector<BudgetNotice> BudgetTracker::Advance(WallTime now) {
  std::vector<BudgetNotice> out;
  for (size_t i = 0; i < states_.size(); ++i) Roll(i, now, &out);
  return out;
}

void BudgetTracker::OnActivity() {
  idle_spend_ = {};
  idle_exceeded_ = false;
}

std::vector<BudgetNotice> BudgetTracker::SetPlanUsedPercent(double used_percent) {
  std::vector<BudgetNotice> out;
  if (!policy_.plan) return out;
  double max = policy_.plan->max_used_percent;
  bool over = used_percent >= max;
  if (over == plan_exceeded_) return out;
  plan_exceeded_ = over;
  std::string pct = std::to_string(used_percent);
  pct.erase(pct.find_last_not_of('0') + 1);
  if (!pct.empty() && pct.back() == '.') pct.pop_back();
  std::string limit = std::to_string(static_cast<int64_t>(max));
  if (over) {
    out.push_back({BudgetNotice::Kind::kPlanExceeded, "plan", used_percent / 100,
                   OnExhausted::kSuspend, true,
                   "plan usage " + pct + "% >= max_used_percent " + limit});
  } else {
    out.push_back({BudgetNotice::Kind::kPlanCleared, "plan", used_percent / 100,
                   OnExhausted::kSuspend, true,
                   "plan usage " + pct + "% < max_used_percent " + limit});
  }
  return out;
}

std::optional<int64_t> BudgetTracker::NextBoundary(WallTime now) const {
  std::optional<int64_t> next;
  auto consider = [&](int64_t t) {
    if (t > now.unix_ms && (!next || t < *next)) next = t;
  };
  for (size_t i = 0; i < states_.size(); ++i) {
    const Budget& b = policy_.budgets[i];
    const State& st = states_[i];
    if (Rolling(b)) {
      for (const SpendSample& s : st.samples) {
        int64_t out_at = s.unix_ms + b.window.rolling.count();
        if (out_at > now.unix_ms) {
          consider(out_at);
          break;
        }
      }
    } else {
      consider(Window(b, now).end_ms);
    }
  }
  return next;
}

std::vector<BudgetStatus> BudgetTracker::Status(WallTime now) const {
  std::vector<BudgetStatus> out;
  for (size_t i = 0; i < states_.size(); ++i) {
    const Budget& b = policy_.budgets[i];
    const State& st = states_[i];
    BudgetStatus s;
    s.name = b.name;
    s.window = Window(b, now);
    bool current = Rolling(b) || (st.span.start_ms == s.window.start_ms);
    if (Rolling(b)) {
      for (const SpendSample& x : st.samples)
        if (x.unix_ms > s.window.start_ms) s.spend += x.spend;
      for (const SpendSample& x : st.samples) {
        if (x.unix_ms > s.window.start_ms) {
          s.resets_at_ms = x.unix_ms + b.window.rolling.count();
          break;
        }
      }
    } else {
      if (current) s.spend = st.spend;
      s.resets_at_ms = s.window.end_ms;
    }
    s.fraction = Fraction(b, s.spend);
    s.exhausted = current && st.exhausted && s.fraction >= 1.0;
    out.push_back(s);
  }
  return out;
}

bool BudgetTracker::WindowsMoved(WallTime now) const {
  for (size_t i = 0; i < states_.size(); ++i) {
    const Budget& b = policy_.budgets[i];
    const State& st = states_[i];
    if (Rolling(b) || st.span == WindowSpan{}) continue;
    WindowSpan span = Window(b, now);
    // The next window starts where the counted one ends; one that starts
    // before that end overlaps it: the zone moved the windows.
    if (span != st.span && span.start_ms < st.span.end_ms) return true;
  }
  return false;
}

bool BudgetTracker::LockedOut() const {
  if (plan_exceeded_) return true;
  for (size_t i = 0; i < states_.size(); ++i)
    if (states_[i].exhausted && policy_.budgets[i].lockout) return true;
  return false;
}

bool BudgetTracker::AnyExhausted() const {
  if (plan_exceeded_) return true;
  for (const State& st : states_)
    if (st.exhausted) return true;
  return false;
}

}  // namespace dormant::enforcer
