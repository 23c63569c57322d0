// Reports over the ledger: spend grouped by time, client, model or session,
// with idle, active and unknown-idle spend apart. Formatting as a text table,
// JSON or CSV. The command line lives in launcher/report_cli.*.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enforcer/expected.h"
#include "meter/ledger.h"

namespace dormant::meter {

enum class ReportBy { kHour, kDay, kClient, kModel, kSession, kProvider };
std::optional<ReportBy> ParseReportBy(std::string_view s);
const char* ToString(ReportBy by);

struct ReportQuery {
  int64_t since_ms = 0;  // events at or after (0: all)
  ReportBy by = ReportBy::kClient;
  bool idle_only = false;
};

struct ReportRow {
  std::string group;
  int64_t events = 0;
  TokenCounts tokens;
  double credits = 0;
  double usd = 0;
  double idle_credits = 0;    // idle = 1
  double idle_usd = 0;
  double active_credits = 0;  // idle = 0
  double active_usd = 0;
  int64_t idle_events = 0;
  int64_t unknown_idle_events = 0;  // idle NULL: dormant was not watching
  int64_t unknown_price_events = 0; // priced by the fallback
};

struct Report {
  ReportQuery query;
  std::vector<ReportRow> rows;
  ReportRow total;  // group "total"
};

Expected<Report> QueryReport(Ledger& ledger, const ReportQuery& query);

std::string FormatTable(const Report& report);
std::string FormatJson(const Report& report);
std::string FormatCsv(const Report& report);

/// "7d", "24h", "90m", "2w" (before `now_ms`), "2026-11-01" (local midnight,
/// given the UTC offset), an ISO time, or "all" (0).
std::optional<int64_t> ParseSince(std::string_view text, int64_t now_ms, int32_t utc_offset_s);

}  // namespace dormant::meter
