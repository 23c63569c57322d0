#include "meter/report.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "meter/sqlite_util.h"

namespace dormant::meter {

std::optional<ReportBy> ParseReportBy(std::string_view s) {
  if (s == "hour") return ReportBy::kHour;
  if (s == "day") return ReportBy::kDay;
  if (s == "client") return ReportBy::kClient;
  if (s == "model") return ReportBy::kModel;
  if (s == "session") return ReportBy::kSession;
  if (s == "provider") return ReportBy::kProvider;
  return std::nullopt;
}

const char* ToString(ReportBy by) {
  switch (by) {
    case ReportBy::kHour: return "hour";
    case ReportBy::kDay: return "day";
    case ReportBy::kClient: return "client";
    case ReportBy::kModel: return "model";
    case ReportBy::kSession: return "session";
    case ReportBy::kProvider: return "provider";
  }
  return "?";
}

namespace {

const char* GroupExpr(ReportBy by) {
  switch (by) {
    case ReportBy::kHour:
      return "strftime('%Y-%m-%d %H:00', ts_ms / 1000, 'unixepoch', 'localtime')";
    case ReportBy::kDay: return "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch', 'localtime')";
    case ReportBy::kClient:
      return "provider || '/' || CASE WHEN client = '' THEN '?' ELSE client END";
    case ReportBy::kModel: return "CASE WHEN model = '' THEN '?' ELSE model END";
    case ReportBy::kSession: return "provider || '/' || session";
    case ReportBy::kProvider: return "provider";
  }
  return "provider";
}

bool TimeGrouped(ReportBy by) { return by == ReportBy::kHour || by == ReportBy::kDay; }

void Accumulate(ReportRow* total, const ReportRow& r) {
  total->events += r.events;
  total->tokens += r.tokens;
  total->credits += r.credits;
  total->usd += r.usd;
  total->idle_credits += r.idle_credits;
  total->idle_usd += r.idle_usd;
  total->active_credits += r.active_credits;
  total->active_usd += r.active_usd;
  total->idle_events += r.idle_events;
  total->unknown_idle_events += r.unknown_idle_events;
  total->unknown_price_events += r.unknown_price_events;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

Expected<Report> QueryReport(Ledger& ledger, const ReportQuery& query) {
  std::string sql = std::string("SELECT ") + GroupExpr(query.by) +
                    " AS g, count(*), sum(input), sum(cached_input), sum(output), sum(reasoning), "
                    "sum(cache_write), sum(cache_read), sum(total), sum(credits), sum(usd), "
                    "ifnull(sum(CASE WHEN idle = 1 THEN credits END), 0), "
                    "ifnull(sum(CASE WHEN idle = 1 THEN usd END), 0), "
                    "ifnull(sum(CASE WHEN idle = 0 THEN credits END), 0), "
                    "ifnull(sum(CASE WHEN idle = 0 THEN usd END), 0), "
                    "sum(idle = 1), sum(idle IS NULL), sum(unknown_price), sum(cache_write_1h) "
                    "FROM usage WHERE ts_ms >= ?1";
  if (query.idle_only) sql += " AND idle = 1";
  sql += " GROUP BY g ORDER BY ";
  sql += TimeGrouped(query.by) ? "g" : "sum(credits) + sum(usd) * 100 DESC, g";
  Stmt st(ledger.db(), sql.c_str());
  if (!st.ok()) return Error{5, st.error()};
  st.Bind(1, query.since_ms);
  Report report;
  report.query = query;
  report.total.group = "total";
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ReportRow r;
    r.group = st.Text(0);
    r.events = st.Int(1);
    r.tokens = {st.Int(2), st.Int(3), st.Int(4), st.Int(5), st.Int(6), st.Int(7), st.Int(8), st.Int(18)};
    r.credits = st.Real(9);
    r.usd = st.Real(10);
    r.idle_credits = st.Real(11);
    r.idle_usd = st.Real(12);
    r.active_credits = st.Real(13);
    r.active_usd = st.Real(14);
    r.idle_events = st.Int(15);
    r.unknown_idle_events = st.Int(16);
    r.unknown_price_events = st.Int(17);
    Accumulate(&report.total, r);
    report.rows.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return st.Err("report");
  return report;
}

std::string FormatTable(const Report& report) {
  struct Col {
    const char* name;
    bool left;
  };
  const std::vector<Col> cols = {
      {ToString(report.query.by), true}, {"events", false}, {"input", false}, {"cached", false},
      {"output", false},  {"reasoning", false}, {"cache_w", false}, {"cache_r", false},
      {"credits", false}, {"usd", false},      {"idle_cr", false}, {"idle_usd", false},
      {"active_cr", false}, {"active_usd", false}, {"idle?", false}};
  auto cells = [](const ReportRow& r) {
    return std::vector<std::string>{
        r.group,
        std::to_string(r.events),
        std::to_string(r.tokens.input),
        std::to_string(r.tokens.cached_input),
        std::to_string(r.tokens.output),
        std::to_string(r.tokens.reasoning),
        std::to_string(r.tokens.cache_write),
        std::to_string(r.tokens.cache_read),
        Fixed(r.credits, 2),
        Fixed(r.usd, 4),
        Fixed(r.idle_credits, 2),
        Fixed(r.idle_usd, 4),
        Fixed(r.active_credits, 2),
        Fixed(r.active_usd, 4),
        std::to_string(r.unknown_idle_events)};
  };
  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> header;
  for (const Col& c : cols) header.push_back(c.name);
  lines.push_back(header);
  for (const ReportRow& r : report.rows) lines.push_back(cells(r));
  lines.push_back(cells(report.total));
  std::vector<size_t> width(cols.size(), 0);
  for (const auto& l : lines)
    for (size_t i = 0; i < l.size(); ++i) width[i] = std::max(width[i], l[i].size());
  std::string out;
  for (size_t n = 0; n < lines.size(); ++n) {
    if (n == lines.size() - 1) {
      for (size_t i = 0; i < cols.size(); ++i) out += std::string(width[i], '-') + (i + 1 < cols.size() ? "  " : "\n");
    }
    for (size_t i = 0; i < cols.size(); ++i) {
      const std::string& s = lines[n][i];
      std::string pad(width[i] - s.size(), ' ');
      out += cols[i].left ? s + pad : pad + s;
      out += i + 1 < cols.size() ? "  " : "\n";
    }
  }
  if (report.total.unknown_price_events > 0)
    out += std::to_string(report.total.unknown_price_events) +
           " event(s) of models without a price were priced at the default rates.\n";
  if (report.total.unknown_idle_events > 0)
    out += "idle? counts events from times dormant did not watch (imported): neither idle nor active.\n";
  return out;
}

namespace {

nlohmann::json RowJson(const ReportRow& r) {
  return {{"group", r.group},
          {"events", r.events},
          {"input_tokens", r.tokens.input},
          {"cached_input_tokens", r.tokens.cached_input},
          {"output_tokens", r.tokens.output},
          {"reasoning_tokens", r.tokens.reasoning},
          {"cache_write_tokens", r.tokens.cache_write},
          {"cache_read_tokens", r.tokens.cache_read},
          {"total_tokens", r.tokens.total},
          {"credits", r.credits},
          {"usd", r.usd},
          {"idle_credits", r.idle_credits},
          {"idle_usd", r.idle_usd},
          {"active_credits", r.active_credits},
          {"active_usd", r.active_usd},
          {"idle_events", r.idle_events},
          {"unknown_idle_events", r.unknown_idle_events},
          {"unknown_price_events", r.unknown_price_events}};
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string FormatJson(const Report& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const ReportRow& r : report.rows) rows.push_back(RowJson(r));
  nlohmann::json j = {{"by", ToString(report.query.by)},
                      {"since_ms", report.query.since_ms},
                      {"idle_only", report.query.idle_only},
                      {"rows", rows},
                      {"total", RowJson(report.total)}};
  return j.dump(2) + "\n";
}

std::string FormatCsv(const Report& report) {
  std::string out = std::string(ToString(report.query.by)) +
                    ",events,input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,"
                    "cache_write_tokens,cache_read_tokens,total_tokens,credits,usd,idle_credits,"
                    "idle_usd,active_credits,active_usd,idle_events,unknown_idle_events,"
                    "unknown_price_events\n";
  auto line = [&](const ReportRow& r) {
    out += CsvField(r.group) + "," + std::to_string(r.events) + "," + std::to_string(r.tokens.input) +
           "," + std::to_string(r.tokens.cached_input) + "," + std::to_string(r.tokens.output) + "," +
           std::to_string(r.tokens.reasoning) + "," + std::to_string(r.tokens.cache_write) + "," +
           std::to_string(r.tokens.cache_read) + "," + std::to_string(r.tokens.total) + "," +
           Fixed(r.credits, 6) + "," + Fixed(r.usd, 6) + "," + Fixed(r.idle_credits, 6) + "," +
           Fixed(r.idle_usd, 6) + "," + Fixed(r.active_credits, 6) + "," + Fixed(r.active_usd, 6) +
           "," + std::to_string(r.idle_events) + "," + std::to_string(r.unknown_idle_events) + "," +
           std::to_string(r.unknown_price_events) + "\n";
  };
  for (const ReportRow& r : report.rows) line(r);
  line(report.total);
  return out;
}

std::optional<int64_t> ParseSince(std::string_view text, int64_t now_ms, int32_t utc_offset_s) {
  if (text == "all") return 0;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    auto t = ParseIsoTime(std::string(text) + "T00:00:00Z");
    if (!t) return std::nullopt;
    return *t - static_cast<int64_t>(utc_offset_s) * 1000;
  }
  if (text.size() > 10 && text[4] == '-') return ParseIsoTime(text);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p + 1 != text.data() + text.size() || n < 0) return std::nullopt;
  int64_t unit = 0;
  switch (*p) {
    case 'm': unit = 60'000; break;
    case 'h': unit = 3'600'000; break;
    case 'd': unit = 86'400'000; break;
    case 'w': unit = 7 * 86'400'000LL; break;
    default: return std::nullopt;
  }
  return now_ms - n * unit;
}

}  // namespace dormant::meter
