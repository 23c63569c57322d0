// Both Freezer backends on real process trees: SIGSTOP everywhere, the cgroup
// v2 freezer where a writable cgroup2 directory exists (else skipped, saying why).
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "launcher/guardian.h"
#include "platform/cgroup_freezer.h"
#include "platform/freezer.h"
#include "platform/process_table.h"
#include "tests/spawn_tree.h"

namespace dormant::testing {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void PauseForever() {
  for (;;) pause();
}

[[noreturn]] void SpinForever() {
  volatile unsigned long n = 0;
  for (;;) n = n + 1;
}

// A root and `argv[0]` children, all burning CPU.
DORMANT_HELPER(fz_spin) {
  int n = argc > 0 ? std::atoi(argv[0]) : 0;
  for (int i = 0; i < n; ++i) {
    if (fork() == 0) SpinForever();
  }
  SpinForever();
}

// Forks `argv[0]` children as fast as it can, each of which forks one
// grandchild; then pauses. Stopped midway, it must stay stopped.
DORMANT_HELPER(fz_forker) {
  int limit = std::atoi(argv[0]);
  for (int i = 0; i < limit; ++i) {
    if (fork() == 0) {
      if (fork() == 0) PauseForever();
      PauseForever();
    }
  }
  PauseForever();
}

// A second thread forks `argv[0]` children as fast as it can while the main
// thread sleeps: the stop must wait for every thread, and find children in
// the forking thread's own list.
DORMANT_HELPER(fz_thread_forker) {
  static int limit = std::atoi(argv[0]);
  pthread_t thread;
  pthread_create(
      &thread, nullptr,
      [](void*) -> void* {
        for (int i = 0; i < limit; ++i) {
          if (fork() == 0) PauseForever();
        }
        PauseForever();
      },
      nullptr);
  PauseForever();
}

// A root and `argv[1]` children whose SIGTERM handler exits with `argv[0]`.
DORMANT_HELPER(fz_term) {
  static int code = std::atoi(argv[0]);
  signal(SIGTERM, [](int) { _exit(code); });
  int n = std::atoi(argv[1]);
  for (int i = 0; i < n; ++i) {
    if (fork() == 0) PauseForever();
  }
  PauseForever();
}

// A subreaper (as dormant is) whose child double-forks: the grandchild is
// re-parented to the root and stays in its subtree.
DORMANT_HELPER(fz_subreaper) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) PauseForever();
    _exit(0);
  }
  for (;;) {
    if (waitpid(-1, nullptr, 0) < 0 && errno == ECHILD) PauseForever();
  }
}

// Double-forks on SIGUSR1: the grandchild is orphaned out of the root's tree.
std::atomic<bool> g_usr1{false};
DORMANT_HELPER(fz_late_double_fork) {
  signal(SIGUSR1, [](int) { g_usr1 = true; });
  while (!g_usr1) pause();
  pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) PauseForever();
    _exit(0);
  }
  waitpid(child, nullptr, 0);
  PauseForever();
}

// A cgroup2 directory we may create children in: our own cgroup on each
// cgroup2 mount (the unified hierarchy here, a delegated one under systemd).
std::string WritableCgroupBase(std::string* why) {
  std::ifstream cg("/proc/self/cgroup");
  std::string own;
  for (std::string line; std::getline(cg, line);) {
    if (line.rfind("0::", 0) == 0) own = line.substr(3);
  }
  std::ifstream mounts("/proc/self/mounts");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream in(line);
    std::string dev, dir, type;
    in >> dev >> dir >> type;
    if (type != "cgroup2") continue;
    std::string base = dir + (own == "/" ? "" : own) + "/dormant-test-" + std::to_string(getpid());
    std::error_code ec;
    fs::create_directory(base, ec);
    if (!ec) return base;
    *why = "cannot create " + base + ": " + ec.message();
  }
  if (why->empty()) *why = "no cgroup2 mount";
  return {};
}

class FreezerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    table_ = platform::CreateProcessTable();
    if (GetParam() == "sigstop") {
      freezer_ = platform::CreateSignalFreezer(*table_);
      return;
    }
    std::string why;
    base_ = WritableCgroupBase(&why);
    if (base_.empty()) GTEST_SKIP() << "no writable cgroup v2 directory: " << why;
    auto freezer = platform::CreateCgroupFreezer(*table_, base_);
    if (!freezer.ok()) GTEST_SKIP() << "cgroup freezer unavailable: " << freezer.error().message;
    freezer_ = std::move(*freezer);
  }

  void TearDown() override {
    reaper_.KillAll();
    freezer_.reset();  // thaws and removes its (now empty) cgroups
    if (!base_.empty()) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(base_, ec)) {
        if (entry.is_directory()) fs::remove(entry.path(), ec);  // rmdir of a cgroup
      }
      EXPECT_TRUE(fs::remove(base_, ec)) << base_ << ": " << ec.message();
    }
  }

  bool cgroup() const { return GetParam() == "cgroup"; }

  // The cgroup v2 directory of `pid` on the mount that holds base_.
  std::string CgroupOf(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("0::", 0) == 0) return line.substr(3);
    }
    return {};
  }

  bool CgroupFrozen(int pid) {
    std::string rel = CgroupOf(pid);
    if (rel.empty() || rel == "/") return false;
    // rel is OWN/dormant-test-PID/GROUP; base_ is MOUNT/OWN/dormant-test-PID.
    std::string name = "/" + fs::path(base_).filename().string();
    size_t at = rel.find(name + "/");
    if (at == std::string::npos) return false;
    std::ifstream ev(base_ + rel.substr(at + name.size()) + "/cgroup.events");
    for (std::string line; std::getline(ev, line);) {
      if (line == "frozen 1") return true;
    }
    return false;
  }

  // Stopped as the backend means it: state T, or inside a frozen cgroup.
  bool Halted(int pid) { return cgroup() ? CgroupFrozen(pid) : StateOf(pid) == 'T'; }

  std::unique_ptr<platform::ProcessTable> table_;
  std::unique_ptr<platform::Freezer> freezer_;
  std::string base_;
  GroupReaper reaper_;
};

std::set<int> AsSet(const std::vector<int>& v) { return {v.begin(), v.end()}; }

TEST_P(FreezerTest, StopsAndContinuesATree) {
  EXPECT_EQ(freezer_->name(), GetParam());
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"13", "3"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 13; }));
  std::set<int> members = GroupMembers(root);

  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(AsSet(*stopped), members);
  for (int pid : members) EXPECT_TRUE(Halted(pid)) << pid << " state " << StateOf(pid);
  if (!cgroup()) {
    for (int pid : members) EXPECT_EQ(StateOf(pid), 'T');
  }

  auto continued = freezer_->Continue(root);
  ASSERT_TRUE(continued.ok()) << continued.error().message;
  EXPECT_EQ(AsSet(*continued), members);
  for (int pid : members) {
    EXPECT_NE(StateOf(pid), 'T') << pid;
    EXPECT_FALSE(Halted(pid)) << pid;
  }
}

TEST_P(FreezerTest, StoppedProcessesUseNoCpuUntilContinued) {
  pid_t root = reaper_.Track(SpawnHelper("fz_spin", {"2"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 3; }));
  std::set<int> members = GroupMembers(root);
  ASSERT_TRUE(Eventually([&] {
    for (int pid : members) {
      if (CpuTicksOf(pid) < 2) return false;
    }
    return true;
  }));

  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(AsSet(*stopped), members);
  std::map<int, long> before;
  for (int pid : members) before[pid] = CpuTicksOf(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int pid : members) EXPECT_EQ(CpuTicksOf(pid), before[pid]) << pid << " ran while stopped";

  ASSERT_TRUE(freezer_->Continue(root).ok());
  for (int pid : members) {
    EXPECT_TRUE(Eventually([&] { return CpuTicksOf(pid) > before[pid]; })) << pid;
  }
}

TEST_P(FreezerTest, CatchesProcessesForkedDuringTheStop) {
  constexpr int kChildren = 150;
  pid_t root = reaper_.Track(SpawnHelper("fz_forker", {std::to_string(kChildren)}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() >= 20; }));

  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  std::set<int> members = GroupMembers(root);
  for (int pid : members) ASSERT_TRUE(Halted(pid)) << pid << " state " << StateOf(pid);
  EXPECT_EQ(AsSet(*stopped), members);
  // Nothing left running means nothing forks any more.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(GroupMembers(root), members);

  ASSERT_TRUE(freezer_->Continue(root).ok());
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 1 + 2 * kChildren; }))
      << GroupMembers(root).size();

  // Stopping again covers the processes forked since.
  stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  members = GroupMembers(root);
  EXPECT_EQ(AsSet(*stopped), members);
  for (int pid : members) EXPECT_TRUE(Halted(pid)) << pid;
}

TEST_P(FreezerTest, WaitsForEveryThreadOfAForkingProcess) {
  constexpr int kChildren = 150;
  pid_t root = reaper_.Track(SpawnHelper("fz_thread_forker", {std::to_string(kChildren)}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() >= 10; }));
  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  std::set<int> members = GroupMembers(root);
  EXPECT_EQ(AsSet(*stopped), members);
  for (int pid : members) ASSERT_TRUE(Halted(pid)) << pid << " state " << StateOf(pid);
  if (!cgroup()) {
    // Every thread, not only the leader.
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(root) + "/task")) {
      EXPECT_EQ(StateOf(std::stoi(task.path().filename().string())), 'T') << task.path();
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(GroupMembers(root), members);

  // Stopping a stopped tree again is harmless; one Continue resumes it all.
  ASSERT_TRUE(freezer_->Stop(root).ok());
  ASSERT_TRUE(freezer_->Continue(root).ok());
  EXPECT_TRUE(Eventually([&] { return GroupMembers(root).size() == 1 + kChildren; }));
  for (int pid : members) EXPECT_FALSE(Halted(pid)) << pid;
}

TEST_P(FreezerTest, SignalTermRunsHandlersOfAStoppedTree) {
  pid_t root = reaper_.Track(SpawnHelper("fz_term", {"42", "3"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 4; }));
  ASSERT_TRUE(freezer_->Stop(root).ok());

  auto sent = freezer_->Signal(root, SIGTERM);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->size(), 4u);
  int status = 0;
  ASSERT_EQ(waitpid(root, &status, 0), root);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 42);  // the handler ran: SIGCONT came along
  EXPECT_TRUE(Eventually([&] { return GroupMembers(root).empty(); }));
}

TEST_P(FreezerTest, SignalKillEndsAForkingTree) {
  pid_t root = reaper_.Track(SpawnHelper("fz_forker", {"400"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() >= 20; }));
  auto sent = freezer_->Signal(root, SIGKILL);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  int status = 0;
  ASSERT_EQ(waitpid(root, &status, 0), root);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Nothing escaped: every member dies (orphans are reaped by our reaper).
  EXPECT_TRUE(Eventually([&] {
    while (waitpid(-root, nullptr, WNOHANG) > 0) {
    }
    return GroupMembers(root).empty();
  })) << GroupMembers(root).size();
}

// A provider killed while suspended must not leave its children stopped.
TEST_P(FreezerTest, ContinueAfterTheRootDiedResumesItsDescendants) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"4", "3"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 4; }));
  ASSERT_TRUE(freezer_->Stop(root).ok());
  std::set<int> children = GroupMembers(root);
  children.erase(root);
  kill(root, SIGKILL);
  ASSERT_EQ(waitpid(root, nullptr, 0), root);
  for (int pid : children) ASSERT_TRUE(Halted(pid)) << pid;

  auto continued = freezer_->Continue(root);
  ASSERT_TRUE(continued.ok()) << continued.error().message;
  EXPECT_EQ(AsSet(*continued), children);
  for (int pid : children) {
    EXPECT_FALSE(Halted(pid)) << pid;
    EXPECT_NE(StateOf(pid), 'T') << pid;
  }
}

TEST_P(FreezerTest, SignalAfterTheRootDiedEndsItsDescendants) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"4", "3"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 4; }));
  ASSERT_TRUE(freezer_->Stop(root).ok());
  std::set<int> children = GroupMembers(root);
  children.erase(root);
  kill(root, SIGKILL);
  ASSERT_EQ(waitpid(root, nullptr, 0), root);

  auto killed = freezer_->Signal(root, SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_EQ(AsSet(*killed), children);
  EXPECT_TRUE(Eventually([&] {
    while (waitpid(-root, nullptr, WNOHANG) > 0) {
    }
    return GroupMembers(root).empty();
  }));
}

TEST_P(FreezerTest, GoneRootIsESRCH) {
  pid_t pid = SpawnHelper("pt_named", {"fz-gone"});
  ASSERT_GT(pid, 0);
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  auto stopped = freezer_->Stop(pid);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, ESRCH);
  auto continued = freezer_->Continue(pid);
  ASSERT_FALSE(continued.ok());
  EXPECT_EQ(continued.error().code, ESRCH);
  auto signalled = freezer_->Signal(pid, SIGTERM);
  ASSERT_FALSE(signalled.ok());
  EXPECT_EQ(signalled.error().code, ESRCH);
}

TEST_P(FreezerTest, StopsADoubleForkedGrandchildOfASubreaper) {
  pid_t root = reaper_.Track(SpawnHelper("fz_subreaper"));
  // Root and grandchild remain; the middle child exited and was reaped.
  ASSERT_TRUE(Eventually([&] {
    std::set<int> m = GroupMembers(root);
    return m.size() == 2 && ParentOf(*std::ranges::find_if(m, [&](int p) { return p != root; })) == root;
  }));
  std::set<int> members = GroupMembers(root);
  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(AsSet(*stopped), members);
  for (int pid : members) EXPECT_TRUE(Halted(pid)) << pid;
  ASSERT_TRUE(freezer_->Continue(root).ok());
  for (int pid : members) EXPECT_FALSE(Halted(pid)) << pid;
}

// Only the cgroup follows a process out of the tree: once the provider lives
// in its cgroup, an orphan it double-forks stays frozen and killable with it.
TEST_P(FreezerTest, CgroupKeepsOrphansOfTheProvider) {
  if (!cgroup()) GTEST_SKIP() << "SIGSTOP follows the tree only; see the subreaper test";
  pid_t root = reaper_.Track(SpawnHelper("fz_late_double_fork"));
  ASSERT_TRUE(Eventually([&] { return StateOf(root) == 'S'; }));
  ASSERT_TRUE(freezer_->Stop(root).ok());
  ASSERT_TRUE(freezer_->Continue(root).ok());
  kill(root, SIGUSR1);
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 2; }));
  std::set<int> members = GroupMembers(root);
  members.erase(root);
  int orphan = *members.begin();
  ASSERT_TRUE(Eventually([&] { return ParentOf(orphan) == getpid(); }));  // left the tree
  EXPECT_EQ(platform::Subtree(*table_, root), std::vector<int>{root});

  auto stopped = freezer_->Stop(root);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(AsSet(*stopped), (std::set<int>{root, orphan}));
  EXPECT_TRUE(Halted(orphan));
  auto killed = freezer_->Signal(root, SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_TRUE(Eventually([&] {
    while (waitpid(-root, nullptr, WNOHANG) > 0) {
    }
    return GroupMembers(root).empty();
  }));
}

TEST(CgroupFreezerTest, RefusesADirectoryThatIsNotCgroup2) {
  auto table = platform::CreateProcessTable();
  auto freezer = platform::CreateCgroupFreezer(*table, fs::temp_directory_path().string());
  ASSERT_FALSE(freezer.ok());
  EXPECT_EQ(freezer.error().code, ENOTDIR);
}

// The cgroup Stop will freeze is known before the Stop (the guardian is told
// first); a process already inside it is stopped with it, not moved out; and
// Continue undoes a SIGSTOP someone sent meanwhile.
TEST_P(FreezerTest, CgroupForLateChildAndStraySigstop) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"4", "2"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 4; }));
  std::set<int> members = GroupMembers(root);
  uint64_t start = table_->Read(root)->start_ticks;
  std::string dir = freezer_->CgroupFor(root, start);
  if (cgroup()) {
    EXPECT_EQ(dir, base_ + "/dormant-" + std::to_string(root) + "-" + std::to_string(start));
    EXPECT_FALSE(fs::exists(dir));
  } else {
    EXPECT_EQ(dir, "");
  }
  ASSERT_TRUE(freezer_->Stop(root).ok());
  if (cgroup()) {
    EXPECT_TRUE(fs::exists(dir + "/cgroup.freeze"));
  }
  int child = *std::find_if(members.begin(), members.end(), [&](int p) { return p != root; });
  auto again = freezer_->Stop(child);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(Halted(child));
  if (cgroup()) {
    EXPECT_EQ(AsSet(*again), members);  // the provider's cgroup, all of it
    EXPECT_FALSE(fs::exists(base_ + "/dormant-" + std::to_string(child) + "-" +
                            std::to_string(table_->Read(child)->start_ticks)));
  }
  kill(child, SIGSTOP);
  ASSERT_TRUE(freezer_->Continue(root).ok());
  for (int pid : members) {
    EXPECT_TRUE(Eventually([&] { return StateOf(pid) != 'T' && !Halted(pid); })) << pid;
  }
}

// A child inside its provider's cgroup becomes a provider root of its own
// (its parent went; the supervisor re-matches orphans) and is then ended:
// only its subtree gets the signal, the rest runs on, nothing throws (the
// cgroup freezer threw std::out_of_range here once, taking dormant down).
TEST_P(FreezerTest, SignalToARootInsideAnotherProvidersCgroup) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"4", "2"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 4; }));
  std::set<int> members = GroupMembers(root);
  ASSERT_TRUE(freezer_->Stop(root).ok());
  ASSERT_TRUE(freezer_->Continue(root).ok());
  int child = *std::find_if(members.begin(), members.end(), [&](int p) { return p != root; });
  std::vector<int> below = Subtree(*table_, child);
  auto sent = freezer_->Signal(child, SIGKILL);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(AsSet(*sent), AsSet(below));
  EXPECT_TRUE(Eventually([&] { return !Halted(root) && StateOf(root) != 'T' && StateOf(root) != 'Z'; }));
  for (int pid : members) {
    if (std::find(below.begin(), below.end(), pid) != below.end()) continue;
    EXPECT_TRUE(Eventually([&] { return !Halted(pid) && StateOf(pid) != 'T'; })) << pid;
  }
}

// dormant dies with a tree stopped: the guardian, told of the stop as the
// supervisor tells it (with the cgroup, for the cgroup freezer), brings the
// whole tree back; SIGCONT alone would not thaw a frozen cgroup.
TEST_P(FreezerTest, GuardianBringsBackWhatTheFreezerStopped) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"5", "2"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 5; }));
  std::set<int> members = GroupMembers(root);
  auto guardian = launcher::Guardian::Start();
  ASSERT_TRUE(guardian.ok()) << guardian.error().message;
  uint64_t start = table_->Read(root)->start_ticks;
  guardian->WillStop(root, start, freezer_->CgroupFor(root, start));
  ASSERT_TRUE(freezer_->Stop(root).ok());
  if (cgroup()) {
    for (int pid : members) ::kill(pid, SIGCONT);  // no help against the cgroup freezer
  }
  for (int pid : members) ASSERT_TRUE(Halted(pid)) << pid;
  guardian->Close();  // as if dormant died: the pipe closes
  for (int pid : members) {
    EXPECT_TRUE(Eventually([&] { return StateOf(pid) != 'T' && !Halted(pid); })) << pid;
  }
}

TEST(CgroupFreezerTest, OwnCgroupHoldsUsAndAPlainDirectoryIsNotDelegated) {
  auto own = platform::OwnCgroupDir();
  if (!own.ok()) GTEST_SKIP() << "no cgroup v2: " << own.error().message;
  std::ifstream procs(*own + "/cgroup.procs");
  std::set<int> in;
  for (int pid; procs >> pid;) in.insert(pid);
  EXPECT_TRUE(in.count(getpid())) << *own;

  std::string plain = fs::temp_directory_path().string();
  auto no = platform::CheckDelegated(plain);
  ASSERT_FALSE(no.ok());
  EXPECT_EQ(no.error().code, ENOTDIR);
  EXPECT_EQ(no.error().message, plain + ": not a cgroup v2 directory");
  auto gone = platform::CheckDelegated("/nonexistent/cgroup");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ENOENT);

  if (auto ok = platform::CheckDelegated(*own); ok.ok()) {
    // The probe cgroup is gone again.
    EXPECT_FALSE(fs::exists(*own + "/dormant-probe-" + std::to_string(getpid())));
  } else {
    std::printf("own cgroup %s not delegated: %s\n", own->c_str(), ok.error().message.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, FreezerTest, ::testing::Values("sigstop", "cgroup"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dormant::testing
