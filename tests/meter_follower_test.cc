// The live follower on a real libuv loop and real inotify: lines appended to
// files in a temp tree reach the ledger; a day directory, a project directory
// and a whole root that appear later are picked up; attribution by open file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>

#include "meter/attribution.h"
#include "meter/follower.h"
#include "meter/ingest.h"
#include "meter/ledger.h"
#include "tests/meter_test_util.h"

namespace dormant::meter {
namespace {

using dormant::testing::Lines;
using dormant::testing::TempDir;
using dormant::testing::WriteFile;

// Runs `loop` until `done()` holds or `timeout` passes (generous: a loaded
// machine may be slow, and nothing here is timed).
bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
  bool ok = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      ok = true;
      break;
    }
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

std::string Rename(std::string line, const std::string& from, const std::string& to) {
  size_t at;
  while ((at = line.find(from)) != std::string::npos) line.replace(at, from.size(), to);
  return line;
}

class MeterFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    auto l = Ledger::Open(dir_ / "ledger.sqlite");
    ASSERT_TRUE(l.ok()) << l.error().message;
    ledger_ = std::move(*l);
    ingestor_ = std::make_unique<Ingestor>(ledger_.get(), enforcer::DefaultPriceTable());
    ASSERT_TRUE(ingestor_->LoadCursors().ok());
    ingestor_->SetOnCommitted([this](const std::vector<LedgerEvent>& es) {
      committed_.insert(committed_.end(), es.begin(), es.end());
    });
  }
  void TearDown() override {
    if (follower_) {
      bool closed = false;
      follower_->Close([&] { closed = true; });
      RunUntil(&loop_, [&] { return closed; });
      EXPECT_TRUE(closed);
      follower_.reset();
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle was left open";
  }
  void Start(std::vector<LogRoot> roots, uint64_t retry_ms = 50) {
    follower_ = std::make_unique<LogFollower>(&loop_, ingestor_.get(), retry_ms);
    follower_->SetOnError([](const Error& e) { ADD_FAILURE() << e.message; });
    for (LogRoot& r : roots) ASSERT_TRUE(follower_->AddRoot(std::move(r)).ok());
  }
  int64_t Events() { return ledger_->TotalsSince(0)->events; }
  int64_t Tokens() { return ledger_->TotalsSince(0)->tokens.total; }

  TempDir dir_;
  uv_loop_t loop_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<LogFollower> follower_;
  std::vector<LedgerEvent> committed_;
};

TEST_F(MeterFollowerTest, AppendedLinesAndNewDayDirectories) {
  std::string sessions = dir_ / "codex/sessions";
  std::vector<std::string> lines = Lines(dormant::testing::CodexSample2());
  std::string day1 = sessions + "/2026/11/24/rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
  // Before starting: the first turn is already there (read at start).
  std::string first;
  for (size_t i = 0; i < 14; ++i) first += lines[i] + "\n";
  WriteFile(day1, first);
  Start({{ProviderKind::kCodex, sessions}});
  EXPECT_EQ(Events(), 1);
  EXPECT_EQ(follower_->watched_dirs(), 4u);  // sessions, 2026, 11, 24

  // The second turn arrives line by line, the token_count in two writes.
  for (size_t i = 14; i < 21; ++i) WriteFile(day1, lines[i] + "\n", true);
  WriteFile(day1, lines[21].substr(0, 300), true);
  RunUntil(&loop_, [] { return false; }, std::chrono::milliseconds(300));  // let it see the half line
  WriteFile(day1, lines[21].substr(300) + "\n" + lines[22] + "\n", true);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Events() == 2; })) << Events();
  EXPECT_EQ(Tokens(), 2468);

  // Midnight: Codex opens 2026/11/25 (and a new month, and a new year) with a
  // new session: each level is a new directory to watch.
  std::vector<std::string> exec = Lines(dormant::testing::CodexSample1());
  std::string text;
  for (const std::string& l : exec) text += Rename(l, "85e2-7023-ae72-5223d70ae4cf", "85e2-7023-ae72-000000000001") + "\n";
  WriteFile(sessions + "/2026/11/25/rollout-2026-11-25T00-00-01-01a20ef3-85e2-7023-ae72-000000000001.jsonl", text);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Events() == 3; })) << Events();
  std::string text2;
  for (const std::string& l : exec) text2 += Rename(l, "85e2-7023-ae72-5223d70ae4cf", "85e2-7023-ae72-000000000002") + "\n";
  WriteFile(sessions + "/2027/01/01/rollout-2027-01-01T00-00-01-01a20ef3-85e2-7023-ae72-000000000002.jsonl", text2);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Events() == 4; })) << Events();
  EXPECT_EQ(Tokens(), 2468 + 1234 + 1234);
  EXPECT_EQ(committed_.size(), 4u);
  EXPECT_EQ(ingestor_->duplicates(), 0u);
}

TEST_F(MeterFollowerTest, ClaudeProjectsAndARootThatAppearsLater) {
  std::string projects = dir_ / "claude/projects";  // does not exist yet
  Start({{ProviderKind::kClaude, projects}});
  EXPECT_EQ(follower_->watched_dirs(), 0u);
  std::vector<std::string> lines = Lines(dormant::testing::ClaudeRealLines());
  WriteFile(projects + "/-home-user-a/s1.jsonl", lines[0] + "\n");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Events() == 1; })) << Events();
  // Another project directory, then more lines, repeated request included.
  WriteFile(projects + "/-home-user-b/s2.jsonl", lines[1] + "\n" + lines[2] + "\n");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Events() == 2; })) << Events();
  WriteFile(projects + "/-home-user-b/s2.jsonl", lines[2] + "\n", true);
  WriteFile(projects + "/-home-user-a/s1.jsonl", lines[0] + "\n", true);
  // Both repeats are read and refused; wait for the reads to happen.
  ASSERT_TRUE(RunUntil(&loop_, [&] { return ingestor_->stats().repeats + ingestor_->duplicates() >= 2; }));
  EXPECT_EQ(Events(), 2);
  EXPECT_EQ(Tokens(), 13036 + 16058);
}

TEST_F(MeterFollowerTest, RestartResumesFromSavedOffsets) {
  std::string sessions = dir_ / "codex/sessions";
  std::vector<std::string> lines = Lines(dormant::testing::CodexSample2());
  std::string file = sessions + "/2026/11/24/rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
  std::string first;
  for (size_t i = 0; i < 14; ++i) first += lines[i] + "\n";
  WriteFile(file, first);
  Start({{ProviderKind::kCodex, sessions}});
  EXPECT_EQ(Events(), 1);
  bool closed = false;
  follower_->Close([&] { closed = true; });
  ASSERT_TRUE(RunUntil(&loop_, [&] { return closed; }));
  follower_.reset();
  // While nobody watches, the second turn is written.
  for (size_t i = 14; i < lines.size(); ++i) WriteFile(file, lines[i] + "\n", true);
  // A new process: new ingestor from the ledger's offsets and parser state.
  ingestor_ = std::make_unique<Ingestor>(ledger_.get(), enforcer::DefaultPriceTable());
  ASSERT_TRUE(ingestor_->LoadCursors().ok());
  Start({{ProviderKind::kCodex, sessions}});
  EXPECT_EQ(Events(), 2);
  EXPECT_EQ(Tokens(), 2468);  // 1234 + (2468 - 1234): the state carried the total
  EXPECT_EQ(ingestor_->stats().bytes, (size_t)std::filesystem::file_size(file) - first.size());
}

TEST(MeterAttribution, OpenFileAndLogRoot) {
  TempDir dir;
  std::string file = dir / "codex/sessions/2026/11/24/rollout-x.jsonl";
  WriteFile(file, "");
  int fd = open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  // This process holds the file open: /proc/self/fd links to it.
  std::vector<std::string> open_files = OpenLogFiles(getpid());
  EXPECT_NE(std::find(open_files.begin(), open_files.end(), file), open_files.end());
  Attributor a;
  a.AddProvider(getpid(), ProviderKind::kCodex, "/nowhere/sessions", "/", "");
  UsageEvent e;
  e.provider = ProviderKind::kCodex;
  e.client = "t3code_desktop";
  e.cwd = "/home/user/project";
  EXPECT_EQ(a.Attribute(e, file), getpid());
  close(fd);
  a.RemoveProvider(getpid());
  EXPECT_EQ(a.Attribute(e, file), std::nullopt);
  // By log root: two providers under one CODEX_HOME, told apart by client.
  a.AddProvider(111111, ProviderKind::kCodex, dir / "codex/sessions", "/a", "codex_exec");
  EXPECT_EQ(a.Attribute(e, file), 111111);
  a.AddProvider(222222, ProviderKind::kCodex, dir / "codex/sessions", "/b", "t3code_desktop");
  EXPECT_EQ(a.Attribute(e, file), 222222);
  e.client = "other";
  EXPECT_EQ(a.Attribute(e, file), std::nullopt);  // ambiguous: other clients
  e.cwd = "/b";
  EXPECT_EQ(a.Attribute(e, file), 222222);
  // Environment: CODEX_HOME wins over HOME.
  EXPECT_EQ(LogRootFromEnv({"HOME=/home/u", "CODEX_HOME=/x/codex"}, ProviderKind::kCodex), "/x/codex/sessions");
  EXPECT_EQ(LogRootFromEnv({"HOME=/home/u"}, ProviderKind::kCodex), "/home/u/.codex/sessions");
  EXPECT_EQ(LogRootFromEnv({"HOME=/home/u"}, ProviderKind::kClaude), "/home/u/.claude/projects");
  EXPECT_EQ(LogRootFromEnv({"HOME=/home/u", "CLAUDE_CONFIG_DIR=/c"}, ProviderKind::kClaude), "/c/projects");
  EXPECT_FALSE(LogRootOf(getpid(), ProviderKind::kCodex).empty());
}

}  // namespace
}  // namespace dormant::meter
