#include "platform/linux/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

namespace dormant::platform::procfs {

int ReadFile(const char* path, std::string* out) {
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  out->clear();
  // /proc files report size 0, so read until EOF in chunks. seq_file hands
  // out at most one page per read, filled with whole records; a record that
  // does not fit waits for the next read. The records we read (a pid, a stat
  // line) are far shorter than kSlack, so a read that leaves more than kSlack
  // of a page unfilled has reached the end: a syscall saved on the hot paths.
  constexpr size_t kPage = 4096, kSlack = 512;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    out->append(buf, static_cast<size_t>(n));
    if (n == 0 || static_cast<size_t>(n) + kSlack < kPage) return 0;
  }
}

int WriteFile(const char* path, std::string_view text) {
  Fd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  ssize_t n;
  do {
    n = ::write(fd.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  return static_cast<size_t>(n) == text.size() ? 0 : EIO;
}

namespace {

// Splits off the next space-separated field of `rest`.
std::string_view NextField(std::string_view* rest) {
  size_t start = rest->find_first_not_of(' ');
  if (start == std::string_view::npos) {
    *rest = {};
    return {};
  }
  size_t end = rest->find(' ', start);
  if (end == std::string_view::npos) end = rest->size();
  std::string_view field = rest->substr(start, end - start);
  rest->remove_prefix(end);
  return field;
}

template <typename T>
bool ParseNumber(std::string_view field, T* value) {
  auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), *value);
  return ec == std::errc() && ptr == field.data() + field.size();
}

}  // namespace

std::optional<Stat> ParseStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || text.find('(') > close) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  // Fields after the name are numbered from 3 (state) as in proc(5).
  Stat st;
  uint64_t utime = 0, stime = 0;
  for (int field_no = 3; field_no <= 22; ++field_no) {
    std::string_view f = NextField(&rest);
    if (f.empty()) return std::nullopt;
    bool ok = true;
    switch (field_no) {
      case 3:
        ok = f.size() == 1;
        st.state = f[0];
        break;
      case 4:
        ok = ParseNumber(f, &st.ppid);
        break;
      case 14:
        ok = ParseNumber(f, &utime);
        break;
      case 15:
        ok = ParseNumber(f, &stime);
        break;
      case 20:
        ok = ParseNumber(f, &st.num_threads);
        break;
      case 22:
        ok = ParseNumber(f, &st.start_ticks);
        break;
      default:
        break;
    }
    if (!ok) return std::nullopt;
  }
  st.cpu_ticks = utime + stime;
  return st;
}

Expected<Stat> ReadStat(int pid, int tid) {
  char path[64];
  if (tid > 0) {
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
  } else {
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  }
  std::string text;
  int err = ReadFile(path, &text);
  // A process that exits between open() and read() gives ESRCH from read().
  if (err == ENOENT || err == ESRCH) return Error{ESRCH, std::string(path) + ": no such process"};
  if (err != 0) return Error{err, std::string(path) + ": " + std::strerror(err)};
  auto st = ParseStat(text);
  if (!st) return Error{EINVAL, std::string(path) + ": unparsable: " + text};
  return *st;
}

namespace {

// Appends the space-separated pids of one children file to `out`.
void AppendPids(std::string_view text, std::vector<int>* out) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\n')) ++p;
    int pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec != std::errc()) break;
    out->push_back(pid);
    p = next;
  }
}

}  // namespace

void ReadChildren(int pid, int num_threads, std::vector<int>* out) {
  std::string text;
  char path[320];
  std::snprintf(path, sizeof path, "/proc/%d/task", pid);
  if (num_threads <= 0) {
    // The link count of /proc/PID/task is 2 + the thread count, and a stat()
    // is far cheaper than reading /proc/PID/stat.
    struct stat task_dir;
    if (::stat(path, &task_dir) != 0) return;
    num_threads = static_cast<int>(task_dir.st_nlink) - 2;
  }
  // A single-threaded process (the common case) costs one read.
  if (num_threads <= 1) {
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    if (ReadFile(path, &text) == 0) AppendPids(text, out);
    return;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path), &::closedir);
  if (!dir) return;
  while (dirent* entry = ::readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    std::snprintf(path, sizeof path, "/proc/%d/task/%s/children", pid, entry->d_name);
    if (ReadFile(path, &text) == 0) AppendPids(text, out);
  }
}

}  // namespace dormant::platform::procfs
