#include "meter/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <unordered_map>

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

namespace {

void Add(ReportRow* r, const Stmt& st) {
  ++r->events;
  r->tokens += TokenCounts{st.Int(2), st.Int(3), st.Int(4), st.Int(5),
                           st.Int(6), st.Int(7), st.Int(8), st.Int(9)};
  double credits = st.Real(10), usd = st.Real(11);
  r->credits += credits;
  r->usd += usd;
  if (st.Null(12)) {
    ++r->unknown_idle_events;
  } else if (st.Int(12) != 0) {
    ++r->idle_events;
    r->idle_credits += credits;
    r->idle_usd += usd;
  } else {
    r->active_credits += credits;
    r->active_usd += usd;
  }
  r->unknown_price_events += st.Int(13);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b < 0); }

// Whether to read the events through the time index: for a window that
// holds most of the ledger, reading the table in order is faster than one
// index look-up per event. min/max come from the index, at no cost.
bool UseTimeIndex(sqlite3* db, int64_t since_ms) {
  if (since_ms <= 0) return false;
  Stmt st(db, "SELECT min(ts_ms), max(ts_ms) FROM events");
  if (!st.ok() || st.Step() != SQLITE_ROW || st.Null(0)) return true;
  int64_t lo = st.Int(0), hi = st.Int(1);
  return since_ms > lo && (hi - since_ms) < (hi - lo) / 2;
}

// Local time labels of one bucket ("2026-11-24" or "2026-11-24 19:00"), or
// nullopt when the zone's offset there is not a multiple of the bucket (then
// events of one bucket could fall into two labels).
std::optional<std::string> BucketLabel(int64_t bucket, int64_t width_ms, bool hour) {
  time_t first = static_cast<time_t>(FloorDiv(bucket * width_ms, 1000));
  time_t last = static_cast<time_t>(FloorDiv(bucket * width_ms + width_ms - 1, 1000));
  struct tm a, b;
  if (!localtime_r(&first, &a) || !localtime_r(&last, &b)) return std::nullopt;
  if (a.tm_gmtoff != b.tm_gmtoff || (a.tm_gmtoff * 1000) % width_ms != 0) return std::nullopt;
  char buf[64];
  if (hour)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:00", a.tm_year + 1900, a.tm_mon + 1,
                  a.tm_mday, a.tm_hour);
  else
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", a.tm_year + 1900, a.tm_mon + 1, a.tm_mday);
  return std::string(buf);
}

}  // namespace

// One pass over the events in the window, summed per group in memory (a
// hash map on integer ids or a 15-minute bucket), then named: SQLite's GROUP
// BY would sort every event first. Time labels are local time, computed once
// per bucket; every zone offset in use is a multiple of 15 minutes, and a
// zone where one is not is summed per second instead.
Expected<Report> QueryReport(Ledger& ledger, const ReportQuery& query) {
  sqlite3* db = ledger.db();
  const bool timed = TimeGrouped(query.by);
  // Columns 0 and 1 are the group's two parts.
  std::string sql = "SELECT ";
  switch (query.by) {
    case ReportBy::kHour:
    case ReportBy::kDay: sql += "ts_ms, 0"; break;
    case ReportBy::kClient: sql += "provider, client"; break;
    case ReportBy::kModel: sql += "0, model"; break;
    case ReportBy::kSession: sql += "provider, session"; break;
    case ReportBy::kProvider: sql += "provider, 0"; break;
  }
  sql += ", input, cached_input, output, reasoning, cache_write, cache_read, total, cache_write_1h, "
         "credits, usd, idle, unknown_price FROM events WHERE ";
  sql += UseTimeIndex(db, query.since_ms) ? "ts_ms >= ?1" : "+ts_ms >= ?1";
  if (query.idle_only) sql += " AND idle = 1";
  Stmt st(db, sql.c_str());
  if (!st.ok()) return Error{5, st.error()};

  std::map<std::string, ReportRow> named;
  for (int64_t width : {int64_t{900'000}, int64_t{1000}}) {
    std::unordered_map<uint64_t, ReportRow> groups;
    st.Reset().Bind(1, query.since_ms);
    uint64_t last_key = 0;
    ReportRow* last = nullptr;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      uint64_t key = timed ? static_cast<uint64_t>(FloorDiv(st.Int(0), width))
                           : (static_cast<uint64_t>(st.Int(0)) << 32) | static_cast<uint64_t>(st.Int(1));
      if (!last || key != last_key) {  // events come in runs of one group
        last = &groups[key];
        last_key = key;
      }
      Add(last, st);
    }
    if (rc != SQLITE_DONE) return st.Err("report");

    named.clear();
    bool exact = true;
    Stmt name(db, "SELECT text FROM names WHERE id = ?");
    if (!name.ok()) return Error{5, name.error()};
    std::unordered_map<int64_t, std::string> names;
    auto text = [&](int64_t id) -> const std::string& {
      auto [it, fresh] = names.try_emplace(id);
      if (fresh && name.Reset().Bind(1, id).Step() == SQLITE_ROW) it->second = name.Text(0);
      return it->second;
    };
    for (auto& [key, row] : groups) {
      int64_t hi = static_cast<int64_t>(key >> 32), lo = static_cast<int64_t>(key & 0xffffffffu);
      std::string label;
      switch (query.by) {
        case ReportBy::kHour:
        case ReportBy::kDay: {
          auto l = BucketLabel(static_cast<int64_t>(key), width, query.by == ReportBy::kHour);
          if (!l) exact = false;
          else label = std::move(*l);
          break;
        }
        case ReportBy::kClient:
          label = text(hi) + "/" + (text(lo).empty() ? std::string("?") : text(lo));
          break;
        case ReportBy::kModel: label = text(lo).empty() ? std::string("?") : text(lo); break;
        case ReportBy::kSession: label = text(hi) + "/" + text(lo); break;
        case ReportBy::kProvider: label = text(hi); break;
      }
      if (!exact) break;
      ReportRow& r = named[label];
      Accumulate(&r, row);
    }
    if (exact || !timed) break;
  }

  Report report;
  report.query = query;
  report.total.group = "total";
  for (auto& [label, row] : named) {
    row.group = label;
    Accumulate(&report.total, row);
    report.rows.push_back(std::move(row));
  }
  // Time groups in time order (the map's); the others by spend, most first.
  if (!timed) {
    std::stable_sort(report.rows.begin(), report.rows.end(), [](const ReportRow& a, const ReportRow& b) {
      return a.credits + a.usd * 100 > b.credits + b.usd * 100;
    });
  }
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
  // Names come from the logs: bytes that are not UTF-8 are shown as U+FFFD.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
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
