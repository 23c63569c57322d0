// The /proc process table and Subtree(), on real processes.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "platform/linux/procfs.h"
#include "platform/process_table.h"
#include "tests/spawn_tree.h"

namespace dormant::testing {
namespace {

[[noreturn]] void PauseForever() {
  for (;;) pause();
}

// Forks until this process and its descendants number `budget`, at most
// `fanout` children each, then every process pauses.
[[noreturn]] void GrowTree(int budget, int fanout) {
  budget -= 1;
  for (int i = 0; i < fanout && budget > 0; ++i) {
    int share = (budget + (fanout - i) - 1) / (fanout - i);
    budget -= share;
    if (fork() == 0) GrowTree(share, fanout);
  }
  PauseForever();
}

DORMANT_HELPER(pt_tree) {
  GrowTree(std::atoi(argv[0]), std::atoi(argv[1]));
}

// Takes the command name it is given (may hold spaces and parentheses).
DORMANT_HELPER(pt_named) {
  if (argc > 0) prctl(PR_SET_NAME, argv[0]);
  PauseForever();
}

DORMANT_HELPER(pt_exit_now) { return 3; }

// A second thread forks: the child is listed in that thread's children file only.
DORMANT_HELPER(pt_thread_child) {
  pthread_t thread;
  pthread_create(
      &thread, nullptr,
      [](void*) -> void* {
        if (fork() == 0) PauseForever();
        PauseForever();
      },
      nullptr);
  PauseForever();
}

class ProcessTableTest : public ::testing::Test {
 protected:
  std::unique_ptr<platform::ProcessTable> table_ = platform::CreateProcessTable();
  GroupReaper reaper_;
};

TEST_F(ProcessTableTest, ReadsItself) {
  auto info = table_->Read(getpid());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->pid, getpid());
  EXPECT_EQ(info->ppid, getppid());
  EXPECT_EQ(info->state, 'R');
  EXPECT_EQ(info->exe, SelfPath());
  EXPECT_GT(info->start_ticks, 0u);
  ASSERT_FALSE(info->argv.empty());
}

TEST_F(ProcessTableTest, ReadsExeAndArgvOfHelper) {
  std::vector<std::string> args = {"two words", "x) y (z", ""};
  args.insert(args.begin(), "pt-helper");
  pid_t pid = reaper_.Track(SpawnHelper("pt_named", args));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Eventually([&] { return StateOf(pid) == 'S'; }));
  auto info = table_->Read(pid);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->ppid, getpid());
  EXPECT_EQ(info->state, 'S');
  EXPECT_EQ(info->exe, SelfPath());
  EXPECT_EQ(info->argv, HelperArgv("pt_named", args));
  auto self = table_->Read(getpid());
  ASSERT_TRUE(self.ok());
  EXPECT_GE(info->start_ticks, self->start_ticks);
  auto again = table_->Read(pid);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->start_ticks, info->start_ticks);
}

TEST_F(ProcessTableTest, CommandNameWithParenthesesAndSpaces) {
  const std::string comm = "a) S 1 (b c";
  pid_t pid = reaper_.Track(SpawnHelper("pt_named", {comm}));
  ASSERT_TRUE(Eventually([&] {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string line;
    std::getline(in, line);
    return line == comm && StateOf(pid) == 'S';
  }));
  auto info = table_->Read(pid);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->ppid, getpid());
  EXPECT_EQ(info->state, 'S');
  EXPECT_EQ(info->exe, SelfPath());
}

TEST(ParseStatTest, CountsFieldsFromTheLastParenthesis) {
  auto st = platform::procfs::ParseStat(
      "42 (x) R 7 (y) S 77 42 42 0 -1 4194560 100 0 0 0 12 3 0 0 20 0 5 0 98765 1 2 3\n");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 77);
  EXPECT_EQ(st->cpu_ticks, 15u);
  EXPECT_EQ(st->num_threads, 5);
  EXPECT_EQ(st->start_ticks, 98765u);
  EXPECT_FALSE(platform::procfs::ParseStat("42 (x) S 1 2").has_value());
  EXPECT_FALSE(platform::procfs::ParseStat("garbage").has_value());
}

// seq_file hands out a page per read; a long file must still be read whole.
TEST(ProcfsReadFileTest, ReadsLongSeqFilesWhole) {
  std::ifstream in("/proc/kallsyms");
  std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (expected.size() < 100000) GTEST_SKIP() << "/proc/kallsyms is short here";
  std::string text;
  ASSERT_EQ(platform::procfs::ReadFile("/proc/kallsyms", &text), 0);
  EXPECT_EQ(text.size(), expected.size());
  EXPECT_TRUE(text == expected);
}

TEST_F(ProcessTableTest, ExeOfADeletedBinaryHasNoDeletedSuffix) {
  auto dir = std::filesystem::temp_directory_path() / ("dormant-pt-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto copy = dir / "sleep copy";
  std::filesystem::copy_file("/bin/sleep", copy, std::filesystem::copy_options::overwrite_existing);
  pid_t pid = reaper_.Track(SpawnArgv({copy.string(), "600"}));
  ASSERT_TRUE(Eventually([&] {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec) == copy;
  }));
  std::filesystem::remove_all(dir);
  std::error_code ec;
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string(),
            copy.string() + " (deleted)");
  auto info = table_->Read(pid);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->exe, copy.string());
  EXPECT_EQ(info->argv, (std::vector<std::string>{copy.string(), "600"}));
}

TEST_F(ProcessTableTest, EnvFindsExactKeyOnly) {
  pid_t pid = reaper_.Track(
      SpawnHelper("pt_named", {"pt-env"}, {"DORMANT_PT_VAR=hello world=1", "DORMANT_PT_EMPTY="}));
  ASSERT_TRUE(Eventually([&] { return StateOf(pid) == 'S'; }));
  auto value = table_->Env(pid, "DORMANT_PT_VAR");
  ASSERT_TRUE(value.ok()) << value.error().message;
  EXPECT_EQ(*value, "hello world=1");
  auto empty = table_->Env(pid, "DORMANT_PT_EMPTY");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  auto prefix = table_->Env(pid, "DORMANT_PT");
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.error().code, ENOENT);
  EXPECT_FALSE(table_->Env(pid, "DORMANT_PT_VARX").ok());
}

TEST_F(ProcessTableTest, ChildrenAndSubtreeOfATree) {
  pid_t root = reaper_.Track(SpawnHelper("pt_tree", {"13", "3"}));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(root).size() == 13; }));
  std::vector<int> children = table_->Children(root);
  ASSERT_EQ(children.size(), 3u);
  for (int child : children) EXPECT_EQ(ParentOf(child), root);

  std::vector<int> subtree = platform::Subtree(*table_, root);
  std::set<int> members = GroupMembers(root);
  EXPECT_EQ(std::set<int>(subtree.begin(), subtree.end()), members);
  EXPECT_EQ(subtree.size(), members.size());  // no duplicates
  ASSERT_FALSE(subtree.empty());
  EXPECT_EQ(subtree.front(), root);
  // Parents come before their children.
  std::map<int, size_t> index;
  for (size_t i = 0; i < subtree.size(); ++i) index[subtree[i]] = i;
  for (size_t i = 1; i < subtree.size(); ++i) {
    int parent = ParentOf(subtree[i]);
    ASSERT_TRUE(index.count(parent)) << subtree[i];
    EXPECT_LT(index[parent], i);
  }
}

TEST_F(ProcessTableTest, ChildrenOfEveryThread) {
  pid_t pid = reaper_.Track(SpawnHelper("pt_thread_child"));
  ASSERT_TRUE(Eventually([&] { return GroupMembers(pid).size() == 2; }));
  std::set<int> members = GroupMembers(pid);
  members.erase(pid);
  int child = *members.begin();
  // The main thread's own list does not have it: only the forking thread's does.
  std::ifstream main_list("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::string text((std::istreambuf_iterator<char>(main_list)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(std::to_string(child)), std::string::npos);
  EXPECT_EQ(table_->Children(pid), std::vector<int>{child});
  EXPECT_EQ(platform::Subtree(*table_, pid), (std::vector<int>{pid, child}));
}

TEST_F(ProcessTableTest, GoneProcessIsESRCH) {
  pid_t pid = SpawnHelper("pt_named", {"pt-gone"});
  ASSERT_GT(pid, 0);
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  auto info = table_->Read(pid);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ESRCH);
  auto env = table_->Env(pid, "PATH");
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().code, ESRCH);
  EXPECT_TRUE(table_->Children(pid).empty());
  EXPECT_TRUE(platform::Subtree(*table_, pid).empty());
}

TEST_F(ProcessTableTest, ZombieIsStateZ) {
  pid_t pid = SpawnHelper("pt_exit_now");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(Eventually([&] { return StateOf(pid) == 'Z'; }));
  auto info = table_->Read(pid);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->state, 'Z');
  EXPECT_EQ(info->exe, "");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

}  // namespace
}  // namespace dormant::testing
