// Ledger speed. Prints figures; asserts nothing.
//
//   bench_ledger_report [--events 1000000] [--ledger PATH] [--cold-events 26939]
//
// 1. Cold commit: --cold-events events (shaped like the metering benchmark's
//    Codex year: ~20 per session, one log file per session) committed into a
//    fresh ledger in one bulk transaction (Begin / Commit per 500 / End), then
//    closed (the WAL checkpoint): microseconds per event, and the file size.
// 2. A year of heavy use: --events events over 365 days (sessions of ~130
//    events, 4 clients, 6 models, 2 providers, 40 projects; idle unknown,
//    idle and active) through the Ledger API, then QueryReport for every
//    --by and --idle-only over all of it and over the last 30 days, and
//    TotalsSince / SamplesSince over a day and a month. Each figure is the
//    best of 3 runs (page cache warm, as in `dormant report` run twice).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "meter/ledger.h"
#include "meter/report.h"

namespace fs = std::filesystem;
using namespace dormant::meter;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// This thread's CPU seconds: the machine may be shared, wall time is noisy.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int64_t FileBytes(const std::string& path) {
  struct stat st;
  int64_t n = 0;
  for (const char* suffix : {"", "-wal"})
    if (stat((path + suffix).c_str(), &st) == 0) n += st.st_size;
  return n;
}

void Remove(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

// Writes `n` events: sessions of about `per_session` events each, `gap_ms`
// apart, starting at random times within `days` before `end_ms`.
// Returns the seconds spent inside the Ledger calls only (wall; CPU in *cpu).
double Fill(Ledger& ledger, int64_t n, int per_session, int days, int64_t end_ms, uint64_t seed,
            double* cpu) {
  std::mt19937_64 rng(seed);
  const char* clients[] = {"codex_exec", "t3code_desktop", "codex_cli_rs", "sdk-cli"};
  const char* models[] = {"gpt-5.5", "gpt-5.5-codex", "gpt-5.4-mini", "claude-opus-4-7",
                          "claude-sonnet-4-6", "claude-haiku-4-5"};
  double secs = 0;
  *cpu = 0;
  std::vector<LedgerEvent> batch;
  auto flush = [&] {
    auto a = Clock::now();
    double c = CpuNow();
    auto r = ledger.Commit(batch, {});
    *cpu += CpuNow() - c;
    secs += Seconds(a, Clock::now());
    if (!r) std::fprintf(stderr, "commit: %s\n", r.error().message.c_str());
    batch.clear();
  };
  auto t = Clock::now();
  if (auto ok = ledger.Begin(); !ok) std::fprintf(stderr, "begin: %s\n", ok.error().message.c_str());
  secs += Seconds(t, Clock::now());
  int64_t written = 0;
  for (int64_t s = 0; written < n; ++s) {
    bool claude = rng() % 3 == 0;
    char uuid[40];
    std::snprintf(uuid, sizeof uuid, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(rng()),
                  static_cast<unsigned>(rng() & 0xffff), static_cast<unsigned>(rng() & 0xffff),
                  static_cast<unsigned>(rng() & 0xffff),
                  static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
    std::string session = uuid;
    std::string client = claude ? "sdk-cli" : clients[rng() % 3];
    std::string model = claude ? models[3 + rng() % 3] : models[rng() % 3];
    std::string cwd = "/home/user/src/project-" + std::to_string(rng() % 40);
    std::string source = claude ? "/home/user/.claude/projects/-home-user-src-project/" + session + ".jsonl"
                                : "/home/user/.codex/sessions/2026/01/01/rollout-2026-01-01T00-00-00-" +
                                      session + ".jsonl";
    int64_t ts = end_ms - static_cast<int64_t>(rng() % (static_cast<uint64_t>(days) * 86'400'000ULL));
    int count = per_session / 2 + static_cast<int>(rng() % static_cast<uint64_t>(per_session));
    int idle_kind = static_cast<int>(rng() % 3);  // unknown, idle, active
    int64_t cumulative = 0;
    for (int i = 0; i < count && written < n; ++i, ++written) {
      LedgerEvent e;
      UsageEvent& u = e.usage;
      u.provider = claude ? ProviderKind::kClaude : ProviderKind::kCodex;
      u.unix_ms = ts;
      ts += 5'000 + static_cast<int64_t>(rng() % 60'000);
      u.client = client;
      u.model = model;
      u.session = session;
      u.cwd = cwd;
      u.tokens.input = 20'000 + static_cast<int64_t>(rng() % 40'000);
      u.tokens.cached_input = claude ? 0 : u.tokens.input * 3 / 4;
      u.tokens.output = static_cast<int64_t>(rng() % 3'000);
      u.tokens.reasoning = claude ? 0 : u.tokens.output / 3;
      u.tokens.cache_write = claude ? static_cast<int64_t>(rng() % 5'000) : 0;
      u.tokens.cache_read = claude ? static_cast<int64_t>(rng() % 80'000) : 0;
      u.tokens.total = u.tokens.input + u.tokens.output + u.tokens.cache_write + u.tokens.cache_read;
      cumulative += u.tokens.total;
      u.key = (claude ? "claude:msg_" : "codex:") + session + ":" + std::to_string(cumulative);
      if (claude) e.cost.usd = static_cast<double>(u.tokens.total) * 3e-6;
      else e.cost.credits = static_cast<double>(u.tokens.total) * 6.8e-5;
      if (idle_kind > 0) e.idle = (idle_kind == 1) == (i % 4 != 0);
      if (idle_kind > 0) e.pid = 4000 + static_cast<int>(s % 1000);
      e.source = source;
      batch.push_back(std::move(e));
      if (batch.size() == 500) flush();
    }
  }
  if (!batch.empty()) flush();
  t = Clock::now();
  double c = CpuNow();
  if (auto ok = ledger.End(); !ok) std::fprintf(stderr, "end: %s\n", ok.error().message.c_str());
  *cpu += CpuNow() - c;
  secs += Seconds(t, Clock::now());
  return secs;
}

template <typename F>
double Best(F f) {
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto a = Clock::now();
    f();
    best = std::min(best, Seconds(a, Clock::now()));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 1'000'000, cold_events = 26'939;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) events = std::stoll(argv[++i]);
    else if (a == "--cold-events" && i + 1 < argc) cold_events = std::stoll(argv[++i]);
    else if (a == "--ledger" && i + 1 < argc) path = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--events N] [--cold-events N] [--ledger PATH]\n", argv[0]);
      return 2;
    }
  }
  bool temp = path.empty();
  if (temp) path = (fs::temp_directory_path() / ("bench-ledger-" + std::to_string(getpid()) + ".sqlite")).string();
  const int64_t now = NowUnixMs();

  // 1. Cold commit.
  Remove(path);
  {
    auto a = Clock::now();
    double in_calls, cpu;
    {
      auto l = Ledger::Open(path);
      if (!l) {
        std::fprintf(stderr, "%s\n", l.error().message.c_str());
        return 1;
      }
      in_calls = Fill(**l, cold_events, 20, 365, now, 1, &cpu);
    }
    double total = Seconds(a, Clock::now());
    std::printf("cold commit: %lld events, %.1f ms in Commit (%.2f us/event; CPU %.1f ms, %.2f us/event), "
                "%.1f ms with open and close (checkpoint), file %.2f MB (%.0f B/event)\n",
                static_cast<long long>(cold_events), in_calls * 1e3,
                in_calls * 1e6 / static_cast<double>(cold_events), cpu * 1e3,
                cpu * 1e6 / static_cast<double>(cold_events),
                total * 1e3, static_cast<double>(FileBytes(path)) / 1e6,
                static_cast<double>(FileBytes(path)) / static_cast<double>(cold_events));
  }

  // 2. A year of heavy use.
  Remove(path);
  auto l = Ledger::Open(path);
  if (!l) {
    std::fprintf(stderr, "%s\n", l.error().message.c_str());
    return 1;
  }
  Ledger& ledger = **l;
  double cpu;
  double fill = Fill(ledger, events, 130, 365, now, 2, &cpu);
  std::printf("year: %lld events committed in %.2f s (%.2f us/event; CPU %.2f us/event), file %.1f MB "
              "(%.0f B/event)\n",
              static_cast<long long>(events), fill, fill * 1e6 / static_cast<double>(events),
              cpu * 1e6 / static_cast<double>(events),
              static_cast<double>(FileBytes(path)) / 1e6,
              static_cast<double>(FileBytes(path)) / static_cast<double>(events));
  for (int64_t window : {int64_t{0}, int64_t{30}}) {
    int64_t since = window ? now - window * 86'400'000 : 0;
    for (ReportBy by : {ReportBy::kDay, ReportBy::kHour, ReportBy::kClient, ReportBy::kModel,
                        ReportBy::kSession, ReportBy::kProvider}) {
      for (bool idle_only : {false, true}) {
        size_t rows = 0;
        double s = Best([&] {
          auto r = QueryReport(ledger, ReportQuery{since, by, idle_only});
          if (!r) std::fprintf(stderr, "report: %s\n", r.error().message.c_str());
          else rows = r->rows.size();
        });
        std::printf("report --since %s --by %-8s%s %7.1f ms  (%zu rows)\n", window ? "30d" : "all",
                    ToString(by), idle_only ? " --idle-only" : "            ", s * 1e3, rows);
      }
    }
  }
  for (int64_t days : {int64_t{0}, int64_t{1}, int64_t{30}}) {
    int64_t since = days ? now - days * 86'400'000 : 0;
    int64_t n = 0;
    double s = Best([&] { n = ledger.TotalsSince(since)->events; });
    std::printf("TotalsSince(%s): %.2f ms (%lld events)\n", days ? (days == 1 ? "1d" : "30d") : "all",
                s * 1e3, static_cast<long long>(n));
  }
  for (int64_t days : {int64_t{1}, int64_t{30}}) {
    size_t n = 0;
    double s = Best([&] { n = ledger.SamplesSince(now - days * 86'400'000)->size(); });
    std::printf("SamplesSince(%s): %.2f ms (%zu samples)\n", days == 1 ? "1d" : "30d", s * 1e3, n);
  }
  if (temp) Remove(path);
  return 0;
}
