// The ledger and the ingestor on real files: exact totals of all the samples,
// re-reading adds nothing, truncation, rotation, partial lines, kill -9 in the
// middle of an ingestion, intervals, and the report over it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "launcher/report_cli.h"
#include "meter/follower.h"
#include "meter/ingest.h"
#include "meter/ledger.h"
#include "meter/report.h"
#include "tests/helper.h"
#include "tests/meter_test_util.h"

namespace dormant::meter {
namespace {

using dormant::testing::LayOutSamples;
using dormant::testing::Lines;
using dormant::testing::ReadAll;
using dormant::testing::TempDir;
using dormant::testing::WriteFile;

std::unique_ptr<Ledger> OpenLedger(const std::string& path) {
  auto l = Ledger::Open(path);
  EXPECT_TRUE(l.ok()) << l.error().message;
  return l.ok() ? std::move(*l) : nullptr;
}

// Reads every log under the laid-out sample tree.
size_t IngestTree(Ingestor& in, const TempDir& dir) {
  size_t files = 0;
  for (const auto& [kind, root] : {std::pair{ProviderKind::kCodex, dir / "codex/sessions"},
                                   std::pair{ProviderKind::kClaude, dir / "claude/projects"}}) {
    for (const std::string& f : ListLogFiles(root)) {
      auto r = in.IngestFile(f, kind, false);
      EXPECT_TRUE(r.ok()) << r.error().message;
      ++files;
    }
  }
  EXPECT_TRUE(in.Flush().ok());
  return files;
}

// Codex: 1 event (exec) + 2 (app-server), each 1200 in / 200 cached / 34 out /
// 12 reasoning / 1234 total; gpt-test priced at the GPT-5.5 fallback, 0.153
// credits each.
void ExpectCodexTotals(Ledger& l) {
  auto t = l.TotalsSince(0, ProviderKind::kCodex);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->events, 3);
  EXPECT_EQ(t->tokens, (TokenCounts{3600, 600, 102, 36, 0, 0, 3702}));  // 3 x each
  EXPECT_NEAR(t->credits, 0.459, 1e-9);                                // 3 x 0.153
  EXPECT_EQ(t->usd, 0);
  EXPECT_EQ(t->unknown_price, 3);
}

// Claude: session-1 and session-2 (900 / 300 / 2000 / 7 each, Opus $0.00755)
// and the two real 2.1.126 lines (Sonnet).
//   input        900 + 900 + 1 + 3          = 1804
//   cache write  300 + 300 + 576 + 4087     = 5263
//   cache read   2000 + 2000 + 12342 + 10777 = 27119
//   output       7 + 7 + 117 + 1191         = 1322
//   total        1804 + 5263 + 27119 + 1322 = 35508
//   1h writes    576 + 4087                  = 4663 (the Sonnet lines' cache writes)
//   usd          2 x 0.00755 + 0.0089166 + 0.0456291 = 0.0696457, where the
//                Sonnet lines are 1 x 3 + 576 x 6 + 12342 x 0.3 + 117 x 15 = 8916.6
//                and 3 x 3 + 4087 x 6 + 10777 x 0.3 + 1191 x 15 = 45629.1 (per 1e6)
void ExpectClaudeTotals(Ledger& l) {
  auto t = l.TotalsSince(0, ProviderKind::kClaude);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->events, 4);
  EXPECT_EQ(t->tokens, (TokenCounts{1804, 0, 1322, 0, 5263, 27119, 35508, 4663}));
  EXPECT_NEAR(t->usd, 0.0696457, 1e-12);
  EXPECT_EQ(t->credits, 0);
  EXPECT_EQ(t->unknown_price, 0);
}

TEST(MeterLedger, AllSamplesExactTotals) {
  TempDir dir;
  LayOutSamples(dir);
  auto ledger = OpenLedger(dir / "state/dormant/ledger.sqlite");
  ASSERT_TRUE(ledger);
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  ASSERT_TRUE(in.LoadCursors().ok());
  EXPECT_EQ(IngestTree(in, dir), 5u);
  EXPECT_EQ(in.committed(), 7u);
  EXPECT_EQ(in.duplicates(), 0u);
  // 14 + 23 codex lines, 22 + 22 + 3 claude lines.
  EXPECT_EQ(in.stats().lines, 84u);
  EXPECT_EQ(in.stats().malformed, 0u);
  ExpectCodexTotals(*ledger);
  ExpectClaudeTotals(*ledger);
  auto limits = ledger->LatestRateLimits();
  ASSERT_TRUE(limits.ok() && limits->has_value());
  EXPECT_EQ((*limits)->primary_used_percent, 42.5);
  EXPECT_EQ((*limits)->credits_balance, 873.5);
  // The journal is WAL.
  EXPECT_TRUE(std::filesystem::exists(dir / "state/dormant/ledger.sqlite-wal"));
}

TEST(MeterLedger, RestartReadsNothingAgain) {
  TempDir dir;
  LayOutSamples(dir);
  std::string path = dir / "ledger.sqlite";
  {
    auto ledger = OpenLedger(path);
    Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
    ASSERT_TRUE(in.LoadCursors().ok());
    IngestTree(in, dir);
    EXPECT_EQ(in.committed(), 7u);
  }
  {
    // A restart: the offsets say everything was read.
    auto ledger = OpenLedger(path);
    Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
    ASSERT_TRUE(in.LoadCursors().ok());
    IngestTree(in, dir);
    EXPECT_EQ(in.stats().bytes, 0u);
    EXPECT_EQ(in.committed(), 0u);
  }
  {
    // Offsets lost (a fresh ingestor that never loads them): every line is
    // read again and every event is refused by its key.
    auto ledger = OpenLedger(path);
    Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
    IngestTree(in, dir);
    EXPECT_EQ(in.committed(), 0u);
    EXPECT_EQ(in.duplicates(), 7u);
    ExpectCodexTotals(*ledger);
    ExpectClaudeTotals(*ledger);
  }
}

TEST(MeterLedger, PartialLineWaitsForItsNewline) {
  TempDir dir;
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  std::vector<std::string> lines = Lines(dormant::testing::CodexSample2());
  std::string file = dir / "rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
  std::string head;
  for (size_t i = 0; i < 12; ++i) head += lines[i] + "\n";
  const std::string& tc = lines[12];  // the first token_count
  WriteFile(file, head + tc.substr(0, 200));
  auto r = in.IngestFile(file, ProviderKind::kCodex);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events, 0u);
  EXPECT_EQ(r->bytes, head.size());
  WriteFile(file, tc.substr(200) + "\n", /*append=*/true);
  r = in.IngestFile(file, ProviderKind::kCodex);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events, 1u);
  EXPECT_EQ(r->bytes, tc.size() + 1);
  EXPECT_EQ(in.stats().malformed, 0u);
  EXPECT_EQ(ledger->TotalsSince(0)->tokens.total, 1234);
}

TEST(MeterLedger, TruncationStartsOverWithoutDoubleCounting) {
  TempDir dir;
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  std::vector<std::string> lines = Lines(dormant::testing::CodexSample2());
  std::string file = dir / "rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  WriteFile(file, all);
  ASSERT_TRUE(in.IngestFile(file, ProviderKind::kCodex).ok());
  EXPECT_EQ(ledger->TotalsSince(0)->events, 2);
  // Truncated and rewritten shorter: the first turn only (same keys) and one
  // new token_count whose cumulative total is 3702 (a third turn).
  std::string third = lines[21];
  size_t at = third.find("\"total_token_usage\":{\"input_tokens\":2400");
  ASSERT_NE(at, std::string::npos);
  third.replace(at, std::string("\"total_token_usage\":{\"input_tokens\":2400").size(),
                "\"total_token_usage\":{\"input_tokens\":3600");
  at = third.find("\"total_tokens\":2468");
  ASSERT_NE(at, std::string::npos);
  third.replace(at, std::string("\"total_tokens\":2468").size(), "\"total_tokens\":3702");
  std::string shorter = lines[0] + "\n" + lines[5] + "\n" + lines[12] + "\n" + third + "\n";
  ASSERT_LT(shorter.size(), all.size());
  WriteFile(file, shorter);
  auto r = in.IngestFile(file, ProviderKind::kCodex);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->truncated);
  EXPECT_FALSE(r->rotated);
  EXPECT_EQ(in.duplicates(), 1u);  // the first turn again
  auto t = ledger->TotalsSince(0);
  EXPECT_EQ(t->events, 3);
  // 1234 + 1234 + (3702 - 1234): the new step is the difference from the
  // first turn's total, read again after the truncation.
  EXPECT_EQ(t->tokens.total, 1234 + 1234 + 2468);
}

TEST(MeterLedger, RotationReadsTheNewFileFromItsStart) {
  TempDir dir;
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  std::string file = dir / "projects/p/session.jsonl";
  std::vector<std::string> lines = Lines(dormant::testing::ClaudeRealLines());
  WriteFile(file, lines[0] + "\n" + lines[1] + "\n");
  ASSERT_TRUE(in.IngestFile(file, ProviderKind::kClaude).ok());
  EXPECT_EQ(ledger->TotalsSince(0)->events, 1);
  // Rotate: the old file moves away, a new one (bigger than the old offset
  // would need, so only the inode tells) takes its name.
  std::filesystem::rename(file, file + ".1");
  WriteFile(file, lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n" + lines[1] + "\n");
  auto r = in.IngestFile(file, ProviderKind::kClaude);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rotated);
  EXPECT_EQ(in.duplicates(), 1u);
  auto t = ledger->TotalsSince(0);
  EXPECT_EQ(t->events, 2);
  EXPECT_EQ(t->tokens.total, 13036 + 16058);
}

TEST(MeterLedger, Intervals) {
  TempDir dir;
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  auto idle = ledger->OpenInterval("idle", "user", 1000, "idle for 10m");
  ASSERT_TRUE(idle.ok());
  auto sus = ledger->OpenInterval("suspended", "codex 4242", 1500, "idle for 10m >= suspend_after 10m");
  ASSERT_TRUE(sus.ok());
  ASSERT_TRUE(ledger->CloseInterval(*sus, 2500).ok());
  ASSERT_TRUE(ledger->CloseOpenIntervals(3000).ok());  // as after a crash
  auto all = ledger->Intervals(0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].kind, "idle");
  EXPECT_EQ((*all)[0].end_ms, 3000);
  EXPECT_EQ((*all)[1].subject, "codex 4242");
  EXPECT_EQ((*all)[1].end_ms, 2500);
  EXPECT_EQ(ledger->Intervals(2800)->size(), 1u);
}

TEST(MeterLedger, AnnotatedEventsAndSeedSamples) {
  TempDir dir;
  LayOutSamples(dir);
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  in.SetAnnotate([](LedgerEvent& e) {
    if (e.usage.client == "t3code_desktop") {
      e.pid = 4242;
      e.idle = true;
    } else if (e.usage.provider == ProviderKind::kCodex) {
      e.idle = false;
    }
  });
  std::vector<LedgerEvent> seen;
  in.SetOnCommitted([&](const std::vector<LedgerEvent>& es) {
    seen.insert(seen.end(), es.begin(), es.end());
  });
  IngestTree(in, dir);
  EXPECT_EQ(seen.size(), 7u);
  auto samples = ledger->SamplesSince(0);
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 7u);
  int supervised = 0, idle = 0, unknown = 0;
  for (const auto& s : *samples) {
    supervised += s.supervised;
    idle += s.idle.value_or(false);
    unknown += !s.idle.has_value();
  }
  EXPECT_EQ(supervised, 2);
  EXPECT_EQ(idle, 2);
  EXPECT_EQ(unknown, 4);  // the Claude events

  auto report = QueryReport(*ledger, ReportQuery{0, ReportBy::kClient, false});
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->rows.size(), 3u);
  // Ordered by spend: credits + usd x 100.
  EXPECT_EQ(report->rows[0].group, "claude/sdk-cli");
  EXPECT_EQ(report->rows[1].group, "codex/t3code_desktop");
  EXPECT_EQ(report->rows[1].events, 2);
  EXPECT_NEAR(report->rows[1].idle_credits, 0.306, 1e-9);
  EXPECT_EQ(report->rows[2].group, "codex/codex_exec");
  EXPECT_NEAR(report->rows[2].active_credits, 0.153, 1e-9);
  EXPECT_EQ(report->total.events, 7);
  EXPECT_EQ(report->total.unknown_idle_events, 4);
  EXPECT_EQ(report->total.tokens.total, 3702 + 35508);
  auto idle_only = QueryReport(*ledger, ReportQuery{0, ReportBy::kModel, true});
  ASSERT_TRUE(idle_only.ok());
  ASSERT_EQ(idle_only->rows.size(), 1u);
  EXPECT_EQ(idle_only->rows[0].group, "gpt-test");
  EXPECT_EQ(idle_only->total.events, 2);
  std::string csv = FormatCsv(*report);
  EXPECT_NE(csv.find("\ntotal,7,"), std::string::npos) << csv;
  std::string table = FormatTable(*report);
  EXPECT_NE(table.find("codex/t3code_desktop"), std::string::npos);
  auto by_day = QueryReport(*ledger, ReportQuery{0, ReportBy::kDay, false});
  ASSERT_TRUE(by_day.ok());
  EXPECT_GE(by_day->rows.size(), 2u);  // 2026-05-03/04 and 2026-11-24 (local time)
}

TEST(MeterReport, ParseSince) {
  const int64_t now = 1795547170000;
  EXPECT_EQ(ParseSince("7d", now, 0), now - 7 * 86'400'000LL);
  EXPECT_EQ(ParseSince("24h", now, 0), now - 86'400'000LL);
  EXPECT_EQ(ParseSince("all", now, 0), 0);
  EXPECT_EQ(ParseSince("2026-11-24", now, 0), 1795478400000);
  EXPECT_EQ(ParseSince("2026-11-24", now, 3600), 1795478400000 - 3'600'000);
  EXPECT_EQ(ParseSince("7x", now, 0), std::nullopt);
  EXPECT_EQ(ParseSince("", now, 0), std::nullopt);
}

// --- kill -9 in the middle of an ingestion ---------------------------------

// Writes `copies` Codex sessions (3 turns each, fresh ids) under `root`.
void WriteManySessions(const std::string& root, int copies) {
  std::vector<std::string> lines = Lines(dormant::testing::CodexSample2());
  for (int i = 0; i < copies; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "01a20ef3-aaf8-7b31-ae43-%012d", i);
    std::string text;
    for (std::string l : lines) {
      size_t at;
      while ((at = l.find("01a20ef3-aaf8-7b31-ae43-693bd7daac61")) != std::string::npos)
        l.replace(at, 36, id);
      text += l + "\n";
    }
    WriteFile(root + "/2026/11/24/rollout-2026-11-24T19-06-19-" + id + ".jsonl", text);
  }
}

// argv: ledger path, sessions root. Ingests file by file, committing each.
DORMANT_HELPER(meter_ingest_slowly) {
  auto ledger = Ledger::Open(argv[0]);
  if (!ledger) return 1;
  Ingestor in(ledger->get(), enforcer::DefaultPriceTable());
  if (!in.LoadCursors()) return 1;
  for (const std::string& f : ListLogFiles(argv[1])) {
    if (!in.IngestFile(f, ProviderKind::kCodex, true)) return 1;
  }
  return 0;
}

TEST(MeterLedger, KillNineLosesNothingCommittedAndDuplicatesNothing) {
  TempDir dir;
  const int kSessions = 400;  // 2 events each
  WriteManySessions(dir / "sessions", kSessions);
  std::string ledger_path = dir / "ledger.sqlite";
  { auto l = OpenLedger(ledger_path); }  // create it first
  std::vector<std::string> args =
      dormant::testing::HelperArgv("meter_ingest_slowly", {ledger_path, dir / "sessions"});
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  // Kill it once some, but not all, of the work is committed.
  int64_t committed = 0;
  for (int i = 0; i < 20000; ++i) {
    auto l = Ledger::Open(ledger_path);
    if (l.ok()) committed = (*l)->TotalsSince(0)->events;
    if (committed >= 40) break;
    usleep(1000);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  auto ledger = OpenLedger(ledger_path);
  int64_t after_kill = ledger->TotalsSince(0)->events;
  EXPECT_GE(after_kill, committed);
  // Every committed event is whole: tokens are a multiple of the 1234 steps.
  EXPECT_EQ(ledger->TotalsSince(0)->tokens.total, after_kill * 1234);
  // Finish: everything exactly once.
  Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
  ASSERT_TRUE(in.LoadCursors().ok());
  for (const std::string& f : ListLogFiles(dir / "sessions"))
    ASSERT_TRUE(in.IngestFile(f, ProviderKind::kCodex, false).ok());
  ASSERT_TRUE(in.Flush().ok());
  auto t = ledger->TotalsSince(0);
  EXPECT_EQ(t->events, 2 * kSessions);
  EXPECT_EQ(t->tokens.total, 2 * kSessions * 1234);
  EXPECT_EQ(in.duplicates(), 0u) << "re-read only what was not committed";
}

// --- the command line -------------------------------------------------------

DORMANT_HELPER(meter_report_cli) { return launcher::RunReportCommand(argc, argv); }

std::string RunReport(const TempDir& dir, const std::string& args, int* rc) {
  std::string cmd = "env -u CLAUDE_CONFIG_DIR HOME=" + dir.path() + "/home CODEX_HOME=" + dir.path() +
                    "/codex TZ=UTC " + dormant::testing::SelfPath() +
                    " --helper meter_report_cli report --ledger " + dir.path() + "/ledger.sqlite " +
                    args + " 2>" + dir.path() + "/stderr";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = WEXITSTATUS(pclose(p));
  return out;
}

TEST(MeterReport, ImportThenReportAsJsonAndCsv) {
  TempDir dir;
  LayOutSamples(dir);
  std::filesystem::create_directories(dir / "home");
  std::filesystem::rename(dir / "claude", dir / "home/.claude");
  int rc = 0;
  std::string json = RunReport(dir, "--import --json --by provider", &rc);
  EXPECT_EQ(rc, 0) << ReadAll(dir / "stderr");
  EXPECT_NE(ReadAll(dir / "stderr").find("imported 7 new event(s) from 5 file(s)"), std::string::npos)
      << ReadAll(dir / "stderr");
  EXPECT_NE(json.find("\"group\": \"claude\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"total_tokens\": 39210"), std::string::npos) << json;  // 3702 + 35508
  // A second import finds nothing new.
  std::string csv = RunReport(dir, "--import --csv --by day --since 2026-11-01", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(ReadAll(dir / "stderr").find("imported 0 new event(s)"), std::string::npos);
  EXPECT_NE(csv.find("2026-11-24,5,"), std::string::npos) << csv;
  EXPECT_EQ(csv.find("2026-05-0"), std::string::npos) << csv;
  RunReport(dir, "--by weekday", &rc);
  EXPECT_EQ(rc, 2);
  std::string table = RunReport(dir, "--idle-only", &rc);
  EXPECT_EQ(rc, 0);
  // The total line's second column (events) is 0: nothing was seen while idle.
  size_t at = table.find("\ntotal");
  ASSERT_NE(at, std::string::npos) << table;
  std::istringstream total_line(table.substr(at + 1));
  std::string word, events;
  total_line >> word >> events;
  EXPECT_EQ(events, "0") << table;
}

}  // namespace
}  // namespace dormant::meter
