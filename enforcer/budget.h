// Budgets, prices and the arithmetic between them. Pure: standard library only,
// no clock, no syscall. Every time is a wall-clock Unix time in milliseconds
// handed in by the caller, and local time comes from a TimeZone handed in too
// (the offset in force at any instant), so calendar windows ("day" in local
// time) stay testable and exact across DST changes.
//
// The policy model here (Budget, IdleBudget, PlanLimit, PriceTable) is what the
// TOML tables [[budget]], [budget_idle], [plan] and [prices] mean after
// validation. MakeBudget() & co. build it from plain key -> string maps, so the
// loader and tests share one validation path without toml.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enforcer/expected.h"
#include "enforcer/time.h"

namespace dormant::enforcer {

// ---------------------------------------------------------------- tokens, prices

/// Tokens of one usage event, as the provider reports them. Codex: `input`
/// includes `cached_input` and `output` includes `reasoning` (OpenAI's way).
/// Claude: `input`, `cache_write`, `cache_read` and `output` are disjoint.
/// `total` is what a token budget counts: Codex input + output; Claude the sum
/// of its four kinds. `cache_write_1h` is the part of `cache_write` written to
/// the one-hour cache (priced higher); it is not added to `total` again.
struct TokenCounts {
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  int64_t cache_write = 0;
  int64_t cache_read = 0;
  int64_t total = 0;
  int64_t cache_write_1h = 0;

  TokenCounts& operator+=(const TokenCounts& o);
  TokenCounts& operator-=(const TokenCounts& o);
  friend TokenCounts operator-(TokenCounts a, const TokenCounts& b) { return a -= b; }
  bool operator==(const TokenCounts&) const = default;
  bool Zero() const { return *this == TokenCounts{}; }
};

/// Price of one million tokens of each kind, in one currency. A kind left
/// unset is priced at the `input` rate (cached input, cache read, cache write)
/// or the `output` rate (reasoning is inside output and never priced apart).
struct Rates {
  std::optional<double> input;
  std::optional<double> cached_input;  // Codex cached input
  std::optional<double> output;
  std::optional<double> cache_write;     // Claude cache creation (5-minute cache)
  std::optional<double> cache_read;      // Claude cache read
  std::optional<double> cache_write_1h;  // Claude one-hour cache creation (else cache_write)
};

/// Prices for the models whose name contains `match` (case-insensitive). The
/// first entry of a table whose `match` is found in the model name wins.
struct ModelPrice {
  std::string match;
  std::optional<Rates> credits;  // credits per million tokens (Codex plans)
  std::optional<Rates> usd;      // US dollars per million tokens
};

struct PriceTable {
  std::vector<ModelPrice> models;
  // For a model no entry matches (the event is reported as priced unknown):
  ModelPrice fallback_codex;      // Codex-style usage (credits)
  ModelPrice fallback_claude;     // Claude-style usage (USD)
  double fast_multiplier = 2.0;   // Codex fast mode
};

/// What an event cost. `unknown_model` when the fallback priced it.
struct Cost {
  double credits = 0;
  double usd = 0;
  bool unknown_model = false;
};

/// Prices `tokens` of `model`. `codex_style` says how to read TokenCounts
/// (see above): true when `input` includes `cached_input`.
Cost PriceUsage(const PriceTable& table, std::string_view model, const TokenCounts& tokens,
                bool codex_style, bool fast);
/// PriceUsage in two steps, for a caller that prices many events of one model:
/// the table's entry for `model` (the first whose match is in its name, case
/// aside; else the fallback, with *unknown set), then the price of `tokens`.
const ModelPrice& MatchPrice(const PriceTable& table, std::string_view model, bool codex_style,
                             bool* unknown);
Cost PriceWith(const PriceTable& table, const ModelPrice& price, bool unknown,
               const TokenCounts& tokens, bool codex_style, bool fast);

/// The shipped defaults: Codex credits per million tokens (GPT-5.5, GPT-5.4,
/// GPT-5.3-Codex ...), Claude USD per million (Opus, Sonnet, Haiku).
PriceTable DefaultPriceTable();

// ---------------------------------------------------------------- the policy model

/// A budget window: a calendar period in local time, or a rolling duration.
struct BudgetWindow {
  enum class Kind { kHour, kDay, kWeek, kMonth, kRolling };
  Kind kind = Kind::kDay;
  Duration rolling{0};  // for kRolling

  bool operator==(const BudgetWindow&) const = default;
};

/// "hour" | "day" | "week" | "month" | a duration such as "5h", "90m", "2d".
Expected<BudgetWindow> ParseWindow(std::string_view text);
std::string ToString(const BudgetWindow& window);

enum class BudgetScope { kAll, kSupervised };
enum class OnExhausted { kKill, kSuspend };

/// One [[budget]]: at least one limit is set.
struct Budget {
  std::string name;
  BudgetWindow window;
  BudgetScope scope = BudgetScope::kAll;
  std::optional<double> limit_credits;
  std::optional<double> limit_usd;
  std::optional<int64_t> limit_tokens;
  std::vector<double> warn_at;  // fractions in (0, 1), ascending
  OnExhausted on_exhausted = OnExhausted::kKill;
  bool lockout = true;
};

/// [budget_idle]: spend allowed while the user is idle (per idle stretch).
struct IdleBudget {
  std::optional<double> limit_credits;
  std::optional<double> limit_usd;
  std::optional<int64_t> limit_tokens;
};

/// [plan]: the provider's own account-wide rate limits.
struct PlanLimit {
  double max_used_percent = 100;
};

struct BudgetPolicy {
  std::vector<Budget> budgets;
  std::optional<IdleBudget> idle;
  std::optional<PlanLimit> plan;
  PriceTable prices = DefaultPriceTable();
};

using Fields = std::map<std::string, std::string>;

/// Builds and validates a [[budget]] from its keys as strings:
/// name, window, scope, limit_credits, limit_usd, limit_tokens,
/// warn_at ("0.6,0.8" or "[0.6, 0.8]"), on_exhausted, lockout ("true"/"false").
Expected<Budget> MakeBudget(const Fields& fields);
Expected<IdleBudget> MakeIdleBudget(const Fields& fields);
Expected<PlanLimit> MakePlanLimit(const Fields& fields);

/// A toml-free description, one table a line, "#" comments:
///   budget name=daily window=day limit_credits=400 warn_at=0.6,0.8 on_exhausted=kill
///   budget_idle limit_tokens=0
///   plan max_used_percent=90
Expected<BudgetPolicy> ParseBudgetDescription(std::string_view text);

// ---------------------------------------------------------------- arithmetic

/// Wall-clock time with the local UTC offset in force (seconds east of UTC).
/// A tracker built with a TimeZone reads only `unix_ms`; without one, the
/// offset stands for a zone that never changes it.
struct WallTime {
  int64_t unix_ms = 0;
  int32_t utc_offset_s = 0;
};

/// A time zone: the UTC offset (seconds east of UTC) in force at a Unix time in
/// milliseconds. The launcher's reads the C library's zone (localtime_r's
/// tm_gmtoff); tests pass a fake with DST changes. It must answer the same for
/// the same instant while a tracker uses it (a changed zone is a new tracker).
using TimeZone = std::function<int32_t(int64_t unix_ms)>;

/// The zone whose offset is `utc_offset_s` at every instant.
TimeZone FixedZone(int32_t utc_offset_s);

/// The first instant at which the local clock of `zone` reads `local_ms` (local
/// wall-clock milliseconds counted as if UTC) or later. A local time skipped by
/// a spring-forward gap maps to the instant of the change (in a zone whose DST
/// starts at 00:00, the day starts at 01:00 local); one repeated by a fall-back
/// maps to its first occurrence.
int64_t LocalToUnix(int64_t local_ms, const TimeZone& zone);

/// A window's span: [start_ms, end_ms). For a rolling window, end is now and
/// start is now - duration, and the span is (start_ms, end_ms]: an event
/// leaves it exactly `duration` after it happened.
struct WindowSpan {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool operator==(const WindowSpan&) const = default;
};

/// The calendar (or rolling) window containing `now_ms` in `zone`. Weeks start
/// on Monday. A calendar window runs from the first instant the local clock
/// reads its start (local midnight, the hour, Monday 00:00, the 1st 00:00) to
/// the first instant it reads the next one, each under the offset in force at
/// that instant: a day with a spring-forward is 23 h long, one with a
/// fall-back 25 h, and the repeated hour of a fall-back belongs to the hour
/// that began first (that hour window lasts two hours, so no hour's limit is
/// handed out twice).
WindowSpan WindowAt(const BudgetWindow& window, int64_t now_ms, const TimeZone& zone);
/// The same in the fixed zone of `now.utc_offset_s`.
WindowSpan WindowAt(const BudgetWindow& window, WallTime now);

/// Spend in the three currencies a limit can use.
struct Spend {
  double credits = 0;
  double usd = 0;
  int64_t tokens = 0;
  Spend& operator+=(const Spend& o);
  Spend& operator-=(const Spend& o);
};

/// One priced usage event as the tracker sees it.
struct SpendSample {
  int64_t unix_ms = 0;
  Spend spend;
  bool supervised = false;     // attributed to a provider dormant supervises
  std::optional<bool> idle;    // user idle at that moment; nullopt = unknown
};

/// Something the caller should act on, with its reason.
struct BudgetNotice {
  enum class Kind {
    kWarn,          // a warn_at fraction was crossed (once per window)
    kExhausted,     // a budget reached its limit
    kReset,         // a new window began: an exhausted budget is lifted
    kIdleExceeded,  // spend while idle passed [budget_idle]
    kPlanExceeded,  // the provider's used_percent reached [plan] max_used_percent
    kPlanCleared,   // ... and went back below it
  };
  Kind kind;
  std::string budget;  // budget name, "budget_idle" or "plan"
  double fraction = 0; // spend / limit (the largest over the set limits)
  OnExhausted on_exhausted = OnExhausted::kSuspend;
  bool lockout = false;
  std::string reason;
};

const char* ToString(BudgetNotice::Kind kind);

/// A budget's current standing, for `dormant status`.
struct BudgetStatus {
  std::string name;
  Spend spend;
  double fraction = 0;
  bool exhausted = false;
  WindowSpan window;
  std::optional<int64_t> resets_at_ms;  // calendar: window end; rolling: when spend next drops
};

/// Tracks spend per budget window. Feed it every priced usage event (also the
/// ledger's history of the current windows at start-up) and call Advance() at
/// the times NextBoundary() returns. Calendar windows are local time in `zone`;
/// without one, in the fixed offset each WallTime carries.
class BudgetTracker {
 public:
  explicit BudgetTracker(BudgetPolicy policy, TimeZone zone = {});

  /// Adds a usage event seen at `now`; returns warnings / exhaustion crossed.
  std::vector<BudgetNotice> Add(const SpendSample& sample, WallTime now);
  /// Time passed: rolls calendar windows, drops old rolling spend, lifts
  /// exhausted budgets whose spend fell below the limit.
  std::vector<BudgetNotice> Advance(WallTime now);
  /// The user became active: the idle budget's stretch starts over.
  void OnActivity();
  /// The provider's plan usage (the highest used_percent of its windows).
  std::vector<BudgetNotice> SetPlanUsedPercent(double used_percent);

  /// The earliest time after `now` when Advance() can change something (the
  /// exact instant a calendar window ends, DST changes included).
  std::optional<int64_t> NextBoundary(WallTime now) const;
  /// A calendar window being counted has not ended, yet `now` now falls in a
  /// different one: the zone changed under the tracker (the machine's zone or
  /// its rules). The spend counted belongs to the old windows; the caller
  /// should seed a new tracker from its history instead of calling Advance().
  bool WindowsMoved(WallTime now) const;
  std::vector<BudgetStatus> Status(WallTime now) const;
  /// Some exhausted budget has lockout = true (or the plan limit is reached).
  bool LockedOut() const;
  bool AnyExhausted() const;
  const BudgetPolicy& policy() const { return policy_; }

 private:
  struct State {
    WindowSpan span;           // calendar windows: the current span
    Spend spend;               // in the current window
    std::deque<SpendSample> samples;  // rolling windows only
    size_t warned = 0;         // how many warn_at fractions were announced
    bool exhausted = false;
  };

  WindowSpan Window(const Budget& b, WallTime now) const;
  void Roll(size_t i, WallTime now, std::vector<BudgetNotice>* out);
  void Check(size_t i, std::vector<BudgetNotice>* out);
  double Fraction(const Budget& b, const Spend& s) const;

  BudgetPolicy policy_;
  TimeZone zone_;  // empty: each WallTime's fixed offset
  std::vector<State> states_;
  Spend idle_spend_;
  bool idle_exceeded_ = false;
  bool plan_exceeded_ = false;
};

/// Fraction of the largest set limit reached by `spend` (0 when none is set).
double SpendFraction(const Spend& spend, std::optional<double> limit_credits,
                     std::optional<double> limit_usd, std::optional<int64_t> limit_tokens);

}  // namespace dormant::enforcer
