// The netlink process connector on real forks, execs and exits. It reports
// the whole machine, so each test keeps only the events of its own pids.
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>

#include "platform/process_watcher.h"
#include "tests/spawn_tree.h"

namespace dormant::testing {
namespace {

using platform::ProcEvent;
using Kind = ProcEvent::Kind;

// Forks a child that execs /bin/true, reaps it, then pauses.
DORMANT_HELPER(pw_fork_exec) {
  pid_t child = fork();
  if (child == 0) {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  waitpid(child, nullptr, 0);
  for (;;) pause();
}

// Starts a thread, prints its thread id, then pauses.
DORMANT_HELPER(pw_thread) {
  pthread_t thread;
  pthread_create(
      &thread, nullptr,
      [](void*) -> void* {
        std::printf("%ld\n", static_cast<long>(syscall(SYS_gettid)));
        std::fflush(stdout);
        for (;;) pause();
      },
      nullptr);
  for (;;) pause();
}

class ProcessWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto watcher = platform::CreateProcessWatcher();
    if (!watcher.ok()) {
      if (watcher.error().code == EPERM || watcher.error().code == ENOSYS) {
        GTEST_SKIP() << "process connector unavailable: " << watcher.error().message;
      }
      FAIL() << watcher.error().message;
    }
    watcher_ = std::move(*watcher);
  }

  // Collects events until `done(events)` holds, polling the fd with a generous limit.
  bool CollectUntil(const std::function<bool(const std::vector<ProcEvent>&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(events_)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd pfd{watcher_->fd(), POLLIN, 0};
      poll(&pfd, 1, 100);
      bool lost = false;
      for (const ProcEvent& e : watcher_->Drain(&lost)) events_.push_back(e);
      lost_ = lost_ || lost;
    }
    return true;
  }

  bool Seen(Kind kind, int pid, int parent = -1) const {
    return std::ranges::any_of(events_, [&](const ProcEvent& e) {
      return e.kind == kind && e.pid == pid && (parent < 0 || e.parent == parent);
    });
  }

  std::unique_ptr<platform::ProcessWatcher> watcher_;
  std::vector<ProcEvent> events_;
  bool lost_ = false;
  GroupReaper reaper_;
};

TEST_F(ProcessWatcherTest, SeesForkExecAndExitOfOurProcesses) {
  ASSERT_GE(watcher_->fd(), 0);
  pid_t helper = reaper_.Track(SpawnHelper("pw_fork_exec"));
  ASSERT_GT(helper, 0);
  // The helper's child: the fork event whose parent is the helper.
  int child = 0;
  ASSERT_TRUE(CollectUntil([&](const auto& events) {
    for (const ProcEvent& e : events) {
      if (e.kind == Kind::kFork && e.parent == helper) child = e.pid;
    }
    return child != 0 && Seen(Kind::kExit, child);
  })) << "lost=" << lost_;
  EXPECT_TRUE(Seen(Kind::kFork, helper, getpid()));
  EXPECT_TRUE(Seen(Kind::kExec, helper));
  EXPECT_TRUE(Seen(Kind::kExec, child));

  // In order: fork, exec, exit of the child.
  auto at = [&](Kind kind, int pid) {
    return std::ranges::find_if(events_, [&](const ProcEvent& e) { return e.kind == kind && e.pid == pid; }) -
           events_.begin();
  };
  EXPECT_LT(at(Kind::kFork, child), at(Kind::kExec, child));
  EXPECT_LT(at(Kind::kExec, child), at(Kind::kExit, child));

  kill(helper, SIGKILL);
  EXPECT_TRUE(CollectUntil([&](const auto&) { return Seen(Kind::kExit, helper); }));
  ASSERT_EQ(waitpid(helper, nullptr, 0), helper);
}

TEST_F(ProcessWatcherTest, ThreadsAreNotProcesses) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t helper = reaper_.Track(SpawnHelper("pw_thread", {}, {}, out[1]));
  close(out[1]);
  char buf[32] = {};
  ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  ASSERT_GT(n, 0);
  int tid = std::atoi(buf);
  ASSERT_GT(tid, 0);
  ASSERT_NE(tid, helper);
  kill(helper, SIGKILL);
  // The helper's exit comes after every event of its thread.
  ASSERT_TRUE(CollectUntil([&](const auto&) { return Seen(Kind::kExit, helper); }));
  ASSERT_EQ(waitpid(helper, nullptr, 0), helper);
  EXPECT_TRUE(Seen(Kind::kFork, helper, getpid()));
  for (const ProcEvent& e : events_) {
    EXPECT_NE(e.pid, tid) << "an event for thread " << tid << " kind " << static_cast<int>(e.kind);
  }
}

TEST_F(ProcessWatcherTest, DrainDoesNotBlock) {
  // Empty the queue, then drain again with nothing waiting: it must return.
  bool lost = false;
  watcher_->Drain(&lost);
  watcher_->Drain(&lost);
  watcher_->Drain(nullptr);
  SUCCEED();
}

}  // namespace
}  // namespace dormant::testing
