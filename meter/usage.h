// What the meter reads out of providers' logs: usage events and rate limits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "enforcer/budget.h"

namespace dormant::meter {

using enforcer::TokenCounts;

enum class ProviderKind { kCodex, kClaude };
const char* ToString(ProviderKind kind);
std::optional<ProviderKind> ParseProviderKind(std::string_view s);

/// One priced-to-be usage event, read from one log line.
struct UsageEvent {
  /// Unique across all logs: the ledger keeps each key once.
  /// Codex: "codex:<session id>:<cumulative total_tokens>" (a cumulative total
  /// identifies its step in the session, so a re-read or a repeated total maps
  /// to the same key). Claude: "claude:<message id>:<request id or ref>".
  std::string key;
  ProviderKind provider = ProviderKind::kCodex;
  int64_t unix_ms = 0;   // the line's timestamp
  std::string client;    // Codex originator; Claude entrypoint
  std::string model;
  std::string session;
  std::string cwd;
  TokenCounts tokens;
  bool fast = false;     // Codex fast service tier (priced x fast_multiplier)
};

/// The provider's account-wide rate limits, as of one log line (Codex).
struct RateLimits {
  int64_t unix_ms = 0;
  std::string session;
  std::optional<double> primary_used_percent;
  std::optional<int64_t> primary_window_minutes;
  std::optional<int64_t> primary_resets_at;   // Unix seconds
  std::optional<double> secondary_used_percent;
  std::optional<int64_t> secondary_window_minutes;
  std::optional<int64_t> secondary_resets_at;
  std::optional<double> credits_balance;

  /// The highest used_percent of the windows present (0 when none).
  double MaxUsedPercent() const;
};

/// Counters of one parser (or the sum over many).
struct ParseStats {
  uint64_t lines = 0;        // complete lines seen
  uint64_t malformed = 0;    // not JSON, or a usage line missing its fields
  uint64_t events = 0;       // usage events produced
  uint64_t repeats = 0;      // repeated cumulative totals / repeated request lines skipped
  uint64_t bytes = 0;
  ParseStats& operator+=(const ParseStats& o);
};

/// "2026-11-24T19:06:10.359Z" (or with +hh:mm) to Unix milliseconds.
std::optional<int64_t> ParseIsoTime(std::string_view s);
/// Unix milliseconds to "2026-11-24T19:06:10.359Z".
std::string FormatIsoTime(int64_t unix_ms);
/// The local UTC offset (seconds east) in force at `unix_ms`, from the C
/// library's time zone (TZ). For enforcer::WallTime.
int32_t LocalUtcOffset(int64_t unix_ms);
/// Now, as Unix milliseconds (the system clock).
int64_t NowUnixMs();

}  // namespace dormant::meter
