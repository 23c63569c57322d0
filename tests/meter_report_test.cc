// The report's in-memory grouping against SQLite's own GROUP BY over the
// `usage` view (the version-1 report query): same groups, same sums, in
// zones with whole-hour, half-hour and odd offsets and across a DST change.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <random>

#include "meter/ledger.h"
#include "meter/report.h"
#include "meter/sqlite_util.h"
#include "tests/meter_test_util.h"

namespace dormant::meter {
namespace {

using dormant::testing::TempDir;

// The version-1 group expressions (SQL over the text columns).
const char* SqlGroup(ReportBy by) {
  switch (by) {
    case ReportBy::kHour: return "strftime('%Y-%m-%d %H:00', ts_ms / 1000, 'unixepoch', 'localtime')";
    case ReportBy::kDay: return "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch', 'localtime')";
    case ReportBy::kClient: return "provider || '/' || CASE WHEN client = '' THEN '?' ELSE client END";
    case ReportBy::kModel: return "CASE WHEN model = '' THEN '?' ELSE model END";
    case ReportBy::kSession: return "provider || '/' || session";
    case ReportBy::kProvider: return "provider";
  }
  return "provider";
}

struct SqlRow {
  std::string group;
  int64_t events, total, idle_events, unknown_idle;
  double credits, usd, idle_credits;
};

std::vector<SqlRow> SqlReport(Ledger& l, const ReportQuery& q) {
  std::string sql = std::string("SELECT ") + SqlGroup(q.by) +
                    " AS g, count(*), sum(total), sum(idle = 1), sum(idle IS NULL), sum(credits), "
                    "sum(usd), ifnull(sum(CASE WHEN idle = 1 THEN credits END), 0) FROM usage "
                    "WHERE ts_ms >= ?1" +
                    (q.idle_only ? " AND idle = 1" : "") + " GROUP BY g ORDER BY g";
  Stmt st(l.db(), sql.c_str());
  EXPECT_TRUE(st.ok()) << st.error();
  st.Bind(1, q.since_ms);
  std::vector<SqlRow> out;
  while (st.Step() == SQLITE_ROW)
    out.push_back({st.Text(0), st.Int(1), st.Int(2), st.Int(3), st.Int(4), st.Real(5), st.Real(6), st.Real(7)});
  return out;
}

class TimeZone {
 public:
  explicit TimeZone(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~TimeZone() {
    if (old_) setenv("TZ", old_->c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST(MeterReport, GroupsEqualSqlGroupBy) {
  TempDir dir;
  auto opened = Ledger::Open(dir / "ledger.sqlite");
  ASSERT_TRUE(opened.ok());
  Ledger& ledger = **opened;
  // 3000 events over 40 days around the US DST change of 2026-03-08 and the
  // EU one of 2026-03-29, at any second; clients, models (one empty),
  // sessions; idle unknown, idle, active.
  std::mt19937_64 rng(7);
  const int64_t start = 1771200000000;  // 2026-02-16
  std::vector<LedgerEvent> events;
  for (int i = 0; i < 3000; ++i) {
    LedgerEvent e;
    UsageEvent& u = e.usage;
    u.provider = i % 5 == 0 ? ProviderKind::kClaude : ProviderKind::kCodex;
    u.key = "k:" + std::to_string(i);
    u.unix_ms = start + static_cast<int64_t>(rng() % (40 * 86'400'000ULL));
    u.client = std::vector<std::string>{"codex_exec", "t3code_desktop", "", "cli"}[rng() % 4];
    u.model = std::vector<std::string>{"gpt-5.5", "", "opus", "sonnet", "gpt-test"}[rng() % 5];
    u.session = "s" + std::to_string(rng() % 60);
    u.cwd = "/p" + std::to_string(rng() % 3);
    u.tokens.input = static_cast<int64_t>(rng() % 5000);
    u.tokens.output = static_cast<int64_t>(rng() % 500);
    u.tokens.total = u.tokens.input + u.tokens.output;
    e.cost.credits = static_cast<double>(rng() % 1000) / 1000;
    e.cost.usd = static_cast<double>(rng() % 1000) / 100000;
    int idle = static_cast<int>(rng() % 3);
    if (idle < 2) e.idle = idle == 1;
    e.source = "/logs/" + u.session;
    events.push_back(std::move(e));
  }
  auto r = ledger.Commit(events, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->inserted.size(), 3000u);

  for (const char* tz : {"UTC0", "EST5EDT,M3.2.0,M11.1.0", "IST-5:30", "<+0133>-1:33",
                         "CET-1CEST,M3.5.0,M10.5.0/3"}) {
    TimeZone zone(tz);
    for (ReportBy by : {ReportBy::kHour, ReportBy::kDay, ReportBy::kClient, ReportBy::kModel,
                        ReportBy::kSession, ReportBy::kProvider}) {
      for (int64_t since : {int64_t{0}, int64_t{start + 30 * 86'400'000LL + 1234}}) {
        for (bool idle_only : {false, true}) {
          ReportQuery q{since, by, idle_only};
          SCOPED_TRACE(std::string(tz) + " by " + ToString(by) + " since " + std::to_string(since) +
                       (idle_only ? " idle" : ""));
          auto report = QueryReport(ledger, q);
          ASSERT_TRUE(report.ok()) << report.error().message;
          std::vector<SqlRow> want = SqlReport(ledger, q);
          std::vector<ReportRow> got = report->rows;
          std::sort(got.begin(), got.end(), [](const ReportRow& a, const ReportRow& b) { return a.group < b.group; });
          ASSERT_EQ(got.size(), want.size());
          int64_t events_total = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].group, want[i].group);
            EXPECT_EQ(got[i].events, want[i].events) << want[i].group;
            EXPECT_EQ(got[i].tokens.total, want[i].total) << want[i].group;
            EXPECT_EQ(got[i].idle_events, want[i].idle_events) << want[i].group;
            EXPECT_EQ(got[i].unknown_idle_events, want[i].unknown_idle) << want[i].group;
            EXPECT_NEAR(got[i].credits, want[i].credits, 1e-9) << want[i].group;
            EXPECT_NEAR(got[i].usd, want[i].usd, 1e-12) << want[i].group;
            EXPECT_NEAR(got[i].idle_credits, want[i].idle_credits, 1e-9) << want[i].group;
            events_total += want[i].events;
          }
          EXPECT_EQ(report->total.events, events_total);
          auto totals = ledger.TotalsSince(since);
          if (!idle_only) {
            EXPECT_EQ(totals->events, events_total);
          }
          // Time groups in time order; the others by spend, most first.
          for (size_t i = 1; i < report->rows.size(); ++i) {
            const ReportRow& a = report->rows[i - 1];
            const ReportRow& b = report->rows[i];
            if (by == ReportBy::kHour || by == ReportBy::kDay) {
              EXPECT_LT(a.group, b.group);
            } else {
              EXPECT_GE(a.credits + a.usd * 100, b.credits + b.usd * 100);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace dormant::meter

namespace dormant::meter {
namespace {

// Names come from the logs: a client that is not UTF-8 is shown, not thrown.
TEST(MeterReport, NamesThatAreNotUtf8InJsonAndCsv) {
  TempDir dir;
  auto opened = Ledger::Open(dir / "ledger.sqlite");
  ASSERT_TRUE(opened.ok());
  LedgerEvent e;
  e.usage.provider = ProviderKind::kCodex;
  e.usage.key = "k:bad";
  e.usage.unix_ms = 1771200000000;
  e.usage.client = "t3\xff\xfe";
  e.usage.tokens.input = 10;
  e.usage.tokens.total = 10;
  e.source = "/logs/x";
  ASSERT_TRUE((*opened)->Commit({e}, {}).ok());
  ReportQuery q;
  q.by = ReportBy::kClient;
  auto report = QueryReport(**opened, q);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->rows.size(), 1u);
  std::string json = FormatJson(*report);  // threw on the invalid bytes
  EXPECT_NE(json.find("codex/t3\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos) << json;
  EXPECT_NE(FormatCsv(*report).find("t3\xff\xfe"), std::string::npos);
}

}  // namespace
}  // namespace dormant::meter
