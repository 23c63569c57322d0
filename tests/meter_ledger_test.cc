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
#include "meter/sqlite_util.h"
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

// The supervisor's annotations, on the samples: the app-server's events are
// a supervised pid's and idle, the other Codex events active, Claude's unknown.
void AnnotateSamples(LedgerEvent& e) {
  if (e.usage.client == "t3code_desktop") {
    e.pid = 4242;
    e.idle = true;
  } else if (e.usage.provider == ProviderKind::kCodex) {
    e.idle = false;
  }
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

// Bulk mode commits on a second thread while the first parses on: the same
// ledger as one file at a time, across many batches and transaction cycles,
// and a second bulk pass over the same files adds nothing.
TEST(MeterLedger, BulkPipelineEqualsOneFileAtATime) {
  TempDir dir;
  const std::string sample = ReadAll(dormant::testing::CodexSample2());
  const std::string id = "01a20ef3-aaf8-7b31-ae43-693bd7daac61";
  std::vector<std::string> files;
  for (int i = 0; i < 1500; ++i) {  // 2 events each: 3000 events, 3 batches and more
    char fresh[40];
    std::snprintf(fresh, sizeof fresh, "01a20ef3-aaf8-7b31-ae43-%012d", i);
    std::string text = sample;
    for (size_t at = text.find(id); at != std::string::npos; at = text.find(id, at + 1))
      text.replace(at, id.size(), fresh);
    files.push_back(dir / ("codex/sessions/2026/11/24/rollout-2026-11-24T19-06-19-" + std::string(fresh) +
                           ".jsonl"));
    WriteFile(files.back(), text);
  }
  auto one = OpenLedger(dir / "one.sqlite");
  auto bulk = OpenLedger(dir / "bulk.sqlite");
  ASSERT_TRUE(one && bulk);
  Ingestor a(one.get(), enforcer::DefaultPriceTable());
  for (const std::string& f : files) ASSERT_TRUE(a.IngestFile(f, ProviderKind::kCodex).ok());
  for (int pass = 0; pass < 2; ++pass) {
    Ingestor b(bulk.get(), enforcer::DefaultPriceTable());
    ASSERT_TRUE(b.LoadCursors().ok());
    ASSERT_TRUE(b.BeginBulk(/*commit_bytes=*/1 << 20).ok());  // a transaction cycle every MiB
    for (const std::string& f : files) {
      ASSERT_TRUE(b.IngestFile(f, ProviderKind::kCodex, /*flush=*/false).ok());
      b.Release(f);
    }
    ASSERT_TRUE(b.EndBulk().ok());
    EXPECT_EQ(b.committed(), pass == 0 ? 3000u : 0u);
    EXPECT_EQ(b.duplicates(), 0u);  // the cursors say there is nothing new to read
  }
  // The same files again, read by three threads at once into a third ledger.
  auto lanes = OpenLedger(dir / "lanes.sqlite");
  ASSERT_TRUE(lanes);
  {
    Ingestor c(lanes.get(), enforcer::DefaultPriceTable());
    std::vector<std::pair<std::string, ProviderKind>> list;
    for (const std::string& f : files) list.emplace_back(f, ProviderKind::kCodex);
    list.emplace_back(dir / "codex/sessions/missing.jsonl", ProviderKind::kCodex);
    ASSERT_TRUE(c.BeginBulk(1 << 20).ok());
    auto imported = c.Import(list, 3);
    ASSERT_TRUE(c.EndBulk().ok());
    EXPECT_EQ(imported.files, files.size());
    ASSERT_EQ(imported.errors.size(), 1u);  // the missing file, named
    EXPECT_NE(imported.errors[0].message.find("missing.jsonl"), std::string::npos);
    EXPECT_EQ(c.committed(), 3000u);
    EXPECT_EQ(c.stats().events, 3000u);
  }
  auto tc = lanes->TotalsSince(0);
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->tokens, one->TotalsSince(0)->tokens);
  auto lane_cursors = lanes->Cursors();
  ASSERT_TRUE(lane_cursors.ok());
  EXPECT_EQ(lane_cursors->size(), files.size());
  auto ta = one->TotalsSince(0), tb = bulk->TotalsSince(0);
  ASSERT_TRUE(ta.ok() && tb.ok());
  EXPECT_EQ(ta->events, 3000);
  EXPECT_EQ(tb->events, ta->events);
  EXPECT_EQ(tb->tokens, ta->tokens);
  EXPECT_DOUBLE_EQ(tb->credits, ta->credits);
  auto cursors = bulk->Cursors();
  ASSERT_TRUE(cursors.ok());
  EXPECT_EQ(cursors->size(), files.size());
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
  in.SetAnnotate(AnnotateSamples);
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

// --- schema version 2: hashed keys, interned names, migration from 1 -------

// Published reference values of the 128-bit Murmur3 (x64, seed 0) hash, as
// h1 then h2: the stored key hash must be exactly this function.
TEST(MeterLedger, KeyHashMatchesReferenceVectors) {
  auto hex = [](std::string_view s) {
    std::string out;
    char buf[3];
    for (uint8_t b : EventKeyHash(s)) {
      std::snprintf(buf, sizeof buf, "%02x", b);
      out += buf;
    }
    return out;
  };
  EXPECT_EQ(hex(""), "00000000000000000000000000000000");
  EXPECT_EQ(hex("hello"), "cbd8a7b341bd9b025b1e906a48ae1d19");
  EXPECT_EQ(hex("hello, world"), "342fac623a5ebc8e4cdcbc079642414d");
  EXPECT_EQ(hex("19 Jan 2038 at 3:14:07 AM"), "b89e5988b737affc664fc2950231b2cb");
  EXPECT_EQ(hex("The quick brown fox jumps over the lazy dog."), "cd99481f9ee902c9695da1a38987b6e7");
}

// The version-1 schema, as dormant wrote it before hashed keys and names.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE usage (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, ts_ms INTEGER NOT NULL,
  provider TEXT NOT NULL, client TEXT NOT NULL, model TEXT NOT NULL, session TEXT NOT NULL,
  cwd TEXT NOT NULL, input INTEGER NOT NULL, cached_input INTEGER NOT NULL, output INTEGER NOT NULL,
  reasoning INTEGER NOT NULL, cache_write INTEGER NOT NULL, cache_read INTEGER NOT NULL,
  cache_write_1h INTEGER NOT NULL, total INTEGER NOT NULL, credits REAL NOT NULL, usd REAL NOT NULL,
  unknown_price INTEGER NOT NULL, fast INTEGER NOT NULL, pid INTEGER, idle INTEGER,
  source TEXT NOT NULL);
CREATE INDEX usage_ts ON usage(ts_ms);
CREATE TABLE files (path TEXT PRIMARY KEY, kind TEXT NOT NULL, dev INTEGER NOT NULL,
  ino INTEGER NOT NULL, offset INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE rate_limits (id INTEGER PRIMARY KEY CHECK (id = 1), ts_ms INTEGER NOT NULL,
  session TEXT NOT NULL, primary_used_percent REAL, primary_window_minutes INTEGER,
  primary_resets_at INTEGER, secondary_used_percent REAL, secondary_window_minutes INTEGER,
  secondary_resets_at INTEGER, credits_balance REAL);
CREATE TABLE intervals (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,
  start_ms INTEGER NOT NULL, end_ms INTEGER, reason TEXT NOT NULL);
CREATE INDEX intervals_start ON intervals(start_ms);
PRAGMA user_version=1;
)sql";

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << sql;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void ExpectSameReport(const Report& a, const Report& b) {
  ASSERT_EQ(a.rows.size(), b.rows.size());
  for (size_t i = 0; i <= a.rows.size(); ++i) {
    const ReportRow& x = i < a.rows.size() ? a.rows[i] : a.total;
    const ReportRow& y = i < b.rows.size() ? b.rows[i] : b.total;
    EXPECT_EQ(x.group, y.group);
    EXPECT_EQ(x.events, y.events) << x.group;
    EXPECT_EQ(x.tokens, y.tokens) << x.group;
    EXPECT_NEAR(x.credits, y.credits, 1e-9) << x.group;
    EXPECT_NEAR(x.usd, y.usd, 1e-12) << x.group;
    EXPECT_NEAR(x.idle_credits, y.idle_credits, 1e-9) << x.group;
    EXPECT_NEAR(x.active_usd, y.active_usd, 1e-12) << x.group;
    EXPECT_EQ(x.idle_events, y.idle_events) << x.group;
    EXPECT_EQ(x.unknown_idle_events, y.unknown_idle_events) << x.group;
    EXPECT_EQ(x.unknown_price_events, y.unknown_price_events) << x.group;
  }
}

// A version-1 ledger holding the samples (written row by row with the old
// DDL, keys as text) opens as version 2 with every event, flag, cursor,
// rate limit and interval; its keys still refuse the same events.
TEST(MeterLedger, MigratesVersion1) {
  TempDir dir;
  LayOutSamples(dir);
  // The reference: the samples ingested into a current ledger, with idle and
  // pid flags of all three kinds.
  auto ref = OpenLedger(dir / "ref.sqlite");
  ASSERT_TRUE(ref);
  std::vector<LedgerEvent> events;
  {
    Ingestor in(ref.get(), enforcer::DefaultPriceTable());
    in.SetAnnotate(AnnotateSamples);
    in.SetOnCommitted([&](const std::vector<LedgerEvent>& es) { events.insert(events.end(), es.begin(), es.end()); });
    IngestTree(in, dir);
  }
  ASSERT_EQ(events.size(), 7u);
  auto iv = ref->OpenInterval("idle", "user", 1000, "idle for 10m");
  ASSERT_TRUE(iv.ok());
  ASSERT_TRUE(ref->CloseInterval(*iv, 2000).ok());
  ASSERT_TRUE(ref->OpenInterval("suspended", "codex 4242", 1500, "idle").ok());

  // The same content in a version-1 file.
  std::string v1 = dir / "v1/ledger.sqlite";
  std::filesystem::create_directories(dir / "v1");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(v1.c_str(), &db), SQLITE_OK);
    Exec(db, "PRAGMA journal_mode=WAL");
    Exec(db, kSchemaV1);
    for (const LedgerEvent& e : events) {
      const UsageEvent& u = e.usage;
      const TokenCounts& t = u.tokens;
      char nums[512];
      std::snprintf(nums, sizeof nums, "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.17g,%.17g,%d,%d,%s,%s",
                    (long long)t.input, (long long)t.cached_input, (long long)t.output,
                    (long long)t.reasoning, (long long)t.cache_write, (long long)t.cache_read,
                    (long long)t.cache_write_1h, (long long)t.total, e.cost.credits, e.cost.usd,
                    int{e.cost.unknown_model}, int{u.fast},
                    e.pid ? std::to_string(*e.pid).c_str() : "NULL",
                    e.idle ? (*e.idle ? "1" : "0") : "NULL");
      Exec(db, "INSERT INTO usage (key, ts_ms, provider, client, model, session, cwd, input, "
               "cached_input, output, reasoning, cache_write, cache_read, cache_write_1h, total, "
               "credits, usd, unknown_price, fast, pid, idle, source) VALUES (" +
                   Quote(u.key) + "," + std::to_string(u.unix_ms) + "," + Quote(ToString(u.provider)) +
                   "," + Quote(u.client) + "," + Quote(u.model) + "," + Quote(u.session) + "," +
                   Quote(u.cwd) + "," + nums + "," + Quote(e.source) + ")");
    }
    auto ref_files = ref->Cursors();
    ASSERT_TRUE(ref_files.ok());
    for (const FileCursor& c : *ref_files)
      Exec(db, "INSERT INTO files VALUES (" + Quote(c.path) + "," + Quote(ToString(c.kind)) + "," +
                   std::to_string(static_cast<int64_t>(c.dev)) + "," +
                   std::to_string(static_cast<int64_t>(c.ino)) + "," + std::to_string(c.offset) + "," +
                   Quote(c.state) + ")");
    Exec(db, "INSERT INTO rate_limits VALUES (1, 1795547170000, 'sess', 42.5, 300, 1795550000, NULL, "
             "10080, NULL, 873.5)");
    Exec(db, "INSERT INTO intervals VALUES (1, 'idle', 'user', 1000, 2000, 'idle for 10m'), "
             "(2, 'suspended', 'codex 4242', 1500, NULL, 'idle')");
    sqlite3_close(db);
  }

  auto ledger = OpenLedger(v1);
  ASSERT_TRUE(ledger);
  {
    Stmt version(ledger->db(), "PRAGMA user_version");
    ASSERT_EQ(version.Step(), SQLITE_ROW);
    EXPECT_EQ(version.Int(0), 2);
  }
  ExpectCodexTotals(*ledger);
  ExpectClaudeTotals(*ledger);
  for (ReportBy by : {ReportBy::kHour, ReportBy::kDay, ReportBy::kClient, ReportBy::kModel,
                      ReportBy::kSession, ReportBy::kProvider}) {
    for (bool idle_only : {false, true}) {
      auto a = QueryReport(*ledger, ReportQuery{0, by, idle_only});
      auto b = QueryReport(*ref, ReportQuery{0, by, idle_only});
      ASSERT_TRUE(a.ok() && b.ok());
      SCOPED_TRACE(ToString(by));
      ExpectSameReport(*a, *b);
    }
  }
  auto samples = ledger->SamplesSince(0), ref_samples = ref->SamplesSince(0);
  ASSERT_EQ(samples->size(), ref_samples->size());
  for (size_t i = 0; i < samples->size(); ++i) {
    EXPECT_EQ((*samples)[i].unix_ms, (*ref_samples)[i].unix_ms);
    EXPECT_EQ((*samples)[i].supervised, (*ref_samples)[i].supervised);
    EXPECT_EQ((*samples)[i].idle, (*ref_samples)[i].idle);
  }
  auto cursors = ledger->Cursors(), ref_cursors = ref->Cursors();
  ASSERT_EQ(cursors->size(), ref_cursors->size());
  for (size_t i = 0; i < cursors->size(); ++i) {
    EXPECT_EQ((*cursors)[i].path, (*ref_cursors)[i].path);
    EXPECT_EQ((*cursors)[i].offset, (*ref_cursors)[i].offset);
    EXPECT_EQ((*cursors)[i].ino, (*ref_cursors)[i].ino);
    EXPECT_EQ((*cursors)[i].state, (*ref_cursors)[i].state);
  }
  auto limits = ledger->LatestRateLimits();
  ASSERT_TRUE(limits.ok() && limits->has_value());
  EXPECT_EQ((*limits)->primary_used_percent, 42.5);
  EXPECT_EQ((*limits)->credits_balance, 873.5);
  auto intervals = ledger->Intervals(0);
  ASSERT_EQ(intervals->size(), 2u);
  EXPECT_EQ((*intervals)[0].end_ms, 2000);
  EXPECT_FALSE((*intervals)[1].end_ms.has_value());
  // The view still reads as the old table did.
  {
    Stmt view(ledger->db(),
              "SELECT count(*), count(DISTINCT source), sum(idle IS NULL), sum(pid = 4242) FROM usage "
              "WHERE provider = 'codex' AND client = 't3code_desktop' AND cwd != ''");
    ASSERT_TRUE(view.ok()) << view.error();
    ASSERT_EQ(view.Step(), SQLITE_ROW);
    EXPECT_EQ(view.Int(0), 2);
    EXPECT_EQ(view.Int(2), 0);
    EXPECT_EQ(view.Int(3), 2);
  }
  {
    Stmt old(ledger->db(), "SELECT name FROM sqlite_master WHERE name = 'usage' AND type = 'view'");
    EXPECT_EQ(old.Step(), SQLITE_ROW);
  }
  // The migrated keys: with the offsets the ingestor reads nothing; without
  // them every event is refused as already there.
  {
    Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
    ASSERT_TRUE(in.LoadCursors().ok());
    IngestTree(in, dir);
    EXPECT_EQ(in.stats().bytes, 0u);
  }
  {
    Ingestor in(ledger.get(), enforcer::DefaultPriceTable());
    IngestTree(in, dir);
    EXPECT_EQ(in.committed(), 0u);
    EXPECT_EQ(in.duplicates(), 7u);
  }
  ExpectCodexTotals(*ledger);
  // Opening it again (now version 2) changes nothing.
  ledger.reset();
  ledger = OpenLedger(v1);
  ExpectClaudeTotals(*ledger);
}

// A batch with a key twice, and a key already committed: each event once,
// the result says which were new; names are shared, not repeated.
TEST(MeterLedger, CommitReportsInsertedAndInternsNames) {
  TempDir dir;
  auto ledger = OpenLedger(dir / "ledger.sqlite");
  auto event = [](const std::string& key, const std::string& session, int64_t ts) {
    LedgerEvent e;
    e.usage.key = key;
    e.usage.provider = ProviderKind::kCodex;
    e.usage.unix_ms = ts;
    e.usage.client = "codex_exec";
    e.usage.model = "gpt-test";
    e.usage.session = session;
    e.usage.cwd = "/home/u/p";
    e.usage.tokens = {100, 0, 10, 0, 0, 0, 110};
    e.cost.credits = 0.5;
    e.source = "/logs/" + session + ".jsonl";
    return e;
  };
  auto r = ledger->Commit({event("k1", "s1", 1000), event("k2", "s1", 2000), event("k1", "s1", 1000)}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->inserted, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(r->duplicates, 1u);
  r = ledger->Commit({event("k2", "s1", 2000), event("k3", "s2", 3000)}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->inserted, (std::vector<size_t>{1}));
  EXPECT_EQ(r->duplicates, 1u);
  // A second connection (another process) adds a name this one has not seen.
  {
    auto other = OpenLedger(dir / "ledger.sqlite");
    ASSERT_TRUE(other->Commit({event("k4", "s3", 4000)}, {}).ok());
  }
  ASSERT_TRUE(ledger->Commit({event("k5", "s3", 5000)}, {}).ok());
  EXPECT_EQ(ledger->TotalsSince(0)->events, 5);
  EXPECT_EQ(ledger->TotalsSince(2500)->events, 3);
  EXPECT_EQ(ledger->TotalsSince(0, ProviderKind::kCodex)->tokens.total, 5 * 110);
  EXPECT_EQ(ledger->TotalsSince(0, ProviderKind::kClaude)->events, 0);
  // provider, client, model, cwd once; s1..s3 and their three sources.
  Stmt names(ledger->db(), "SELECT count(*) FROM names");
  ASSERT_EQ(names.Step(), SQLITE_ROW);
  EXPECT_EQ(names.Int(0), 4 + 3 + 3);
  auto report = QueryReport(*ledger, ReportQuery{0, ReportBy::kSession, false});
  ASSERT_EQ(report->rows.size(), 3u);
  EXPECT_EQ(report->rows[0].group, "codex/s1");  // 2 events: most spend first, then by name
  EXPECT_EQ(report->rows[1].group, "codex/s3");
  EXPECT_EQ(report->rows[2].group, "codex/s2");
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
