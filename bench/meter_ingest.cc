// Metering speed. Prints figures; asserts nothing.
//
//   bench_meter_ingest [--dir DIR] [--codex-mb 180] [--claude-mb 60] [--warm 2000]
//                      [--samples DIR] [--keep]
//
// 1. Synthesises a year of logs under DIR (default: a temp dir) by replaying
//    the real sample lines with fresh ids, timestamps and token counts:
//    DIR/codex/sessions/YYYY/MM/DD/rollout-*.jsonl and
//    DIR/home/.claude/projects/P/S.jsonl. Codex token_count lines are written
//    twice per turn (as Codex repeats them) and Claude assistant lines twice
//    per request, so a double count would show. The expected totals are
//    printed with the figures.
// 2. Cold: `cat` of every file (the floor; it also warms the page cache), then
//    a fresh process ingests everything into a fresh ledger: MB/s, events/s,
//    peak RSS (VmHWM of that process).
// 3. Warm: appends one token_count line at a time to a live session and
//    meters it: IngestFile() alone, and through the inotify follower (append to
//    commit). p50 / p99 in microseconds.
// tools/bench-meter.sh runs ccusage on the same DIR for comparison.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "meter/follower.h"
#include "meter/ingest.h"
#include "meter/ledger.h"

namespace fs = std::filesystem;
using nlohmann::json;
// The generator keeps each line's keys in the order the provider wrote them
// (a sorted dump would not be what real logs look like to a parser).
using ojson = nlohmann::ordered_json;
using namespace dormant::meter;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  if (out.empty()) {
    std::fprintf(stderr, "cannot read sample %s\n", path.c_str());
    std::exit(2);
  }
  return out;
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  size_t at = 0;
  while ((at = s->find(from, at)) != std::string::npos) {
    s->replace(at, from.size(), to);
    at += to.size();
  }
}

std::string Uuid(std::mt19937_64& rng) {
  char buf[40];
  uint64_t a = rng(), b = rng();
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string Iso(int64_t ms) { return FormatIsoTime(ms); }

struct Totals {
  int64_t events = 0, input = 0, cached = 0, output = 0, reasoning = 0, cache_write = 0,
          cache_read = 0, total = 0;
  size_t files = 0, bytes = 0;
};

// ---------------------------------------------------------------- Codex

struct CodexGen {
  std::vector<std::string> lines;  // the app-server sample: session + 2 turns
  std::string sid = "01a20ef3-aaf8-7b31-ae43-693bd7daac61";
  std::string turn1 = "01a20ef3-ab28-7863-8d38-64eb743796e6";
  std::string turn2 = "01a20ef3-abbd-7541-8a64-08e4b281a03a";

  static ojson Usage(int64_t in, int64_t cached, int64_t out, int64_t reasoning) {
    return {{"input_tokens", in},   {"cached_input_tokens", cached}, {"cache_write_input_tokens", 0},
            {"output_tokens", out}, {"reasoning_output_tokens", reasoning},
            {"total_tokens", in + out}};
  }

  // One session of `turns` turns starting at `t0`; returns its text.
  std::string Session(std::mt19937_64& rng, int64_t t0, int turns, Totals* tot, std::string* id) {
    *id = Uuid(rng);
    std::string out;
    int64_t t = t0;
    auto emit = [&](std::string line, const std::string& turn_id) {
      ojson j = ojson::parse(line);
      j["timestamp"] = Iso(t);
      t += 37;
      std::string s = j.dump();
      ReplaceAll(&s, sid, *id);
      ReplaceAll(&s, turn1, turn_id);
      ReplaceAll(&s, turn2, turn_id);
      out += s;
      out += '\n';
    };
    int64_t ci = 0, cc = 0, co = 0, cr = 0;
    for (int k = 0; k < turns; ++k) {
      std::string turn_id = Uuid(rng);
      int64_t in = 2000 + static_cast<int64_t>(rng() % 60000);
      int64_t cached = in * static_cast<int64_t>(rng() % 90) / 100;
      int64_t o = 20 + static_cast<int64_t>(rng() % 3000);
      int64_t r = o * static_cast<int64_t>(rng() % 60) / 100;
      ci += in, cc += cached, co += o, cr += r;
      tot->events++;
      tot->input += in, tot->cached += cached, tot->output += o, tot->reasoning += r;
      tot->total += in + o;
      // Turn 1 of the sample has the session opening (lines 0..13); later
      // turns use the second turn's lines (14..22).
      size_t from = k == 0 ? 0 : 14, to = k == 0 ? 14 : 23;
      for (size_t i = from; i < to; ++i) {
        ojson j = ojson::parse(lines[i]);
        std::string type = j.value("type", "");
        std::string ptype = j["payload"].is_object() ? j["payload"].value("type", "") : "";
        if (type == "token_usage_record") {
          j["payload"]["usage"] = Usage(in, cached, o, r);
          j["payload"]["turn_token_usage"] = Usage(in, cached, o, r);
          j["payload"]["thread_token_usage"] = Usage(ci, cc, co, cr);
          emit(j.dump(), turn_id);
        } else if (type == "event_msg" && ptype == "token_count") {
          j["payload"]["info"]["total_token_usage"] = Usage(ci, cc, co, cr);
          j["payload"]["info"]["last_token_usage"] = Usage(in, cached, o, r);
          std::string s = j.dump();
          emit(s, turn_id);
          emit(s, turn_id);  // the repeat Codex writes: must not count
        } else {
          emit(lines[i], turn_id);
        }
      }
    }
    return out;
  }
};

// ---------------------------------------------------------------- Claude

struct ClaudeGen {
  std::vector<std::string> header;  // session-1 lines before the assistant line
  std::vector<std::string> real;    // the 2.1.126 lines: assistant, user, assistant

  std::string Session(std::mt19937_64& rng, int64_t t0, int requests, Totals* tot) {
    std::string sid = Uuid(rng);
    std::string out;
    int64_t t = t0;
    for (const std::string& h : header) {
      ojson j = ojson::parse(h);
      if (j.contains("timestamp")) j["timestamp"] = Iso(t);
      if (j.contains("sessionId")) j["sessionId"] = sid;
      out += j.dump() + "\n";
    }
    for (int k = 0; k < requests; ++k) {
      ojson a = ojson::parse(real[k % 2 == 0 ? 0 : 2]);
      char mid[64], rid[64];
      std::snprintf(mid, sizeof mid, "msg_%016llx", static_cast<unsigned long long>(rng()));
      std::snprintf(rid, sizeof rid, "req_%016llx", static_cast<unsigned long long>(rng()));
      int64_t in = 1 + static_cast<int64_t>(rng() % 50);
      int64_t cw = static_cast<int64_t>(rng() % 8000);
      int64_t cr = 5000 + static_cast<int64_t>(rng() % 80000);
      int64_t o = 10 + static_cast<int64_t>(rng() % 2000);
      ojson& u = a["message"]["usage"];
      u["input_tokens"] = in;
      u["cache_creation_input_tokens"] = cw;
      u["cache_read_input_tokens"] = cr;
      u["output_tokens"] = o;
      u["cache_creation"] = {{"ephemeral_1h_input_tokens", cw}, {"ephemeral_5m_input_tokens", 0}};
      u["iterations"] = ojson::array();
      a["message"]["id"] = mid;
      a["requestId"] = rid;
      a["sessionId"] = sid;
      a["uuid"] = Uuid(rng);
      a["timestamp"] = Iso(t);
      t += 1500;
      std::string line = a.dump();
      out += line + "\n";
      out += line + "\n";  // a second content block of the same request: must not count
      ojson user = ojson::parse(real[1]);
      user["sessionId"] = sid;
      user["timestamp"] = Iso(t);
      out += user.dump() + "\n";
      tot->events++;
      tot->input += in, tot->cache_write += cw, tot->cache_read += cr, tot->output += o;
      tot->total += in + cw + cr + o;
    }
    return out;
  }
};

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// 2026-01-01T00:00:00Z
constexpr int64_t kYearStart = 1767225600000;

Totals GenerateCodex(const std::string& samples, const std::string& root, size_t target) {
  CodexGen g;
  g.lines = ReadLines(samples + "/codex-0.169.0/sessions/2026/11/24/"
                                "rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl");
  std::mt19937_64 rng(42);
  Totals tot;
  while (tot.bytes < target) {
    int64_t t0 = kYearStart + static_cast<int64_t>(rng() % (364ULL * 86400000ULL));
    std::string id;
    std::string text = g.Session(rng, t0, 1 + static_cast<int>(rng() % 40), &tot, &id);
    std::string date = Iso(t0);  // 2026-03-05T10:11:12.000Z
    std::string dir = root + "/" + date.substr(0, 4) + "/" + date.substr(5, 2) + "/" + date.substr(8, 2);
    std::string stamp = date.substr(0, 19);
    std::replace(stamp.begin(), stamp.end(), ':', '-');
    WriteText(dir + "/rollout-" + stamp + "-" + id + ".jsonl", text);
    tot.files++;
    tot.bytes += text.size();
  }
  return tot;
}

Totals GenerateClaude(const std::string& samples, const std::string& root, size_t target) {
  ClaudeGen g;
  std::vector<std::string> s1 = ReadLines(samples + "/claude-2.1.328/session-1.jsonl");
  g.header.assign(s1.begin(), s1.begin() + 17);
  g.real = ReadLines(samples + "/claude/real-lines-2.1.126.jsonl");
  std::mt19937_64 rng(7);
  Totals tot;
  int project = 0;
  while (tot.bytes < target) {
    int64_t t0 = kYearStart + static_cast<int64_t>(rng() % (364ULL * 86400000ULL));
    std::string text = g.Session(rng, t0, 5 + static_cast<int>(rng() % 200), &tot);
    std::string path = root + "/-home-user-project-" + std::to_string(project++ % 40) + "/" +
                       Uuid(rng) + ".jsonl";
    WriteText(path, text);
    tot.files++;
    tot.bytes += text.size();
  }
  return tot;
}

// ---------------------------------------------------------------- measuring

double CatSeconds(const std::string& dir) {
  std::string cmd = "find '" + dir + "' -name '*.jsonl' -print0 | xargs -0 cat > /dev/null";
  auto a = Clock::now();
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cat failed\n");
  return Seconds(a, Clock::now());
}

long VmHwmKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// The child: ingest the roots into a fresh ledger; print one JSON line.
int IngestChild(const std::string& ledger_path, const std::vector<LogRoot>& roots) {
  auto ledger = Ledger::Open(ledger_path);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
    return 1;
  }
  Ingestor in(ledger->get(), dormant::enforcer::DefaultPriceTable());
  auto a = Clock::now();
  size_t files = 0;
  in.BeginBulk();
  std::vector<std::pair<std::string, ProviderKind>> list;
  for (const LogRoot& r : roots)
    for (const std::string& f : ListLogFiles(r.dir)) list.emplace_back(f, r.kind);
  auto imported = in.Import(list, ImportThreads());
  for (const auto& e : imported.errors) std::fprintf(stderr, "%s\n", e.message.c_str());
  files = imported.files;
  if (auto ok = in.EndBulk(); !ok) std::fprintf(stderr, "%s\n", ok.error().message.c_str());
  double secs = Seconds(a, Clock::now());
  auto b = Clock::now();
  auto t = (*ledger)->TotalsSince(0);
  double totals_s = Seconds(b, Clock::now());
  b = Clock::now();
  ledger->reset();  // the close: its checkpoint, inside the figures
  double close_s = Seconds(b, Clock::now());
  json j = {{"seconds", secs},
            {"totals_seconds", totals_s},
            {"close_seconds", close_s},
            {"files", files},
            {"bytes", in.stats().bytes},
            {"lines", in.stats().lines},
            {"events", t->events},
            {"repeats", in.stats().repeats},
            {"malformed", in.stats().malformed},
            {"input", t->tokens.input},
            {"cached", t->tokens.cached_input},
            {"output", t->tokens.output},
            {"reasoning", t->tokens.reasoning},
            {"cache_write", t->tokens.cache_write},
            {"cache_read", t->tokens.cache_read},
            {"total", t->tokens.total},
            {"credits", t->credits},
            {"usd", t->usd},
            {"cpu_seconds", CpuSeconds()},
            {"vmhwm_kb", VmHwmKb()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

// The parse alone: read and parse every file, no ledger (where the time goes).
int ParseChild(ProviderKind kind, const std::string& root) {
  auto a = Clock::now();
  std::vector<UsageEvent> events;
  ParseSink sink{&events, nullptr};
  std::string buf;
  size_t bytes = 0, n = 0;
  for (const std::string& f : ListLogFiles(root)) {
    auto parser = MakeParser(kind, f);
    FILE* in = std::fopen(f.c_str(), "rb");
    if (!in) continue;
    buf.resize(static_cast<size_t>(fs::file_size(f)));
    buf.resize(std::fread(buf.data(), 1, buf.size(), in));
    std::fclose(in);
    bytes += FeedLines(*parser, buf, sink);
    n += events.size();
    events.clear();
  }
  double secs = Seconds(a, Clock::now());
  std::printf("parse only: %.3f s  %.0f MB/s  %zu events\n", secs, static_cast<double>(bytes) / 1e6 / secs, n);
  return 0;
}

json RunChild(const std::string& self, const std::string& ledger, const std::string& kind,
              const std::string& dir) {
  fs::remove(ledger);
  fs::remove(ledger + "-wal");
  fs::remove(ledger + "-shm");
  std::string cmd = "'" + self + "' --ingest-child '" + ledger + "' " + kind + " '" + dir + "'";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return json::parse(out, nullptr, false);
}

void PrintCold(const char* name, const Totals& want, double cat_s, const json& r) {
  if (r.is_discarded()) {
    std::printf("%s: ingestion failed\n", name);
    return;
  }
  double mb = static_cast<double>(want.bytes) / 1e6;
  double s = r["seconds"].get<double>();
  std::printf("%s cold: %zu files, %.1f MB, %lld events (%lld repeats skipped)\n", name, want.files, mb,
              static_cast<long long>(r["events"].get<int64_t>()),
              static_cast<long long>(r["repeats"].get<int64_t>()));
  std::printf("  dormant  %.3f s (cpu %.3f s)  %.0f MB/s  %.0f events/s  peak RSS %.1f MiB\n", s,
              r["cpu_seconds"].get<double>(), mb / s,
              static_cast<double>(r["events"].get<int64_t>()) / s, r["vmhwm_kb"].get<double>() / 1024);
  std::printf("  cat      %.3f s  %.0f MB/s   dormant/cat = %.2f\n", cat_s, mb / cat_s, s / cat_s);
  bool same = r["events"].get<int64_t>() == want.events && r["total"].get<int64_t>() == want.total &&
              r["input"].get<int64_t>() == want.input && r["output"].get<int64_t>() == want.output &&
              r["cache_read"].get<int64_t>() == want.cache_read &&
              r["malformed"].get<int64_t>() == 0;
  if (want.cached) same = same && r["cached"].get<int64_t>() == want.cached &&
                          r["reasoning"].get<int64_t>() == want.reasoning;
  if (want.cache_write) same = same && r["cache_write"].get<int64_t>() == want.cache_write;
  std::printf("  totals   events %lld  input %lld  cached %lld  output %lld  reasoning %lld  "
              "cache_write %lld  cache_read %lld  total %lld  credits %.2f  usd %.2f  [%s]\n",
              static_cast<long long>(r["events"].get<int64_t>()),
              static_cast<long long>(r["input"].get<int64_t>()),
              static_cast<long long>(r["cached"].get<int64_t>()),
              static_cast<long long>(r["output"].get<int64_t>()),
              static_cast<long long>(r["reasoning"].get<int64_t>()),
              static_cast<long long>(r["cache_write"].get<int64_t>()),
              static_cast<long long>(r["cache_read"].get<int64_t>()),
              static_cast<long long>(r["total"].get<int64_t>()), r["credits"].get<double>(),
              r["usd"].get<double>(), same ? "= generated" : "MISMATCH with generated");
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A token_count line with cumulative total `k` x 1234 for the live session.
std::string TokenLine(const std::string& tmpl, int64_t k) {
  ojson j = ojson::parse(tmpl);
  j["payload"]["info"]["total_token_usage"] = CodexGen::Usage(1200 * k, 200 * k, 34 * k, 12 * k);
  return j.dump() + "\n";
}

void Warm(const std::string& dir, const std::string& samples, int n, double cold_codex_s) {
  std::vector<std::string> lines = ReadLines(
      samples + "/codex-0.169.0/sessions/2026/11/24/"
                "rollout-2026-11-24T19-06-19-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl");
  fs::remove_all(dir + "/warm");  // a kept DIR from an earlier run: start clean
  std::string sessions = dir + "/warm/sessions";
  std::string file = sessions + "/2026/12/01/rollout-2026-12-01T00-00-00-01a20ef3-aaf8-7b31-ae43-693bd7daac61.jsonl";
  std::string head;
  for (size_t i = 0; i < 12; ++i) head += lines[i] + "\n";
  WriteText(file, head);
  auto ledger = Ledger::Open(dir + "/warm/ledger.sqlite");
  if (!ledger) return;
  Ingestor in(ledger->get(), dormant::enforcer::DefaultPriceTable());
  in.IngestFile(file, ProviderKind::kCodex);
  int64_t k = 0;
  // IngestFile() alone: read the new bytes, parse, price, commit.
  std::vector<double> direct;
  for (int i = 0; i < n; ++i) {
    std::string line = TokenLine(lines[12], ++k);
    {
      std::ofstream(file, std::ios::app | std::ios::binary) << line;
    }
    auto a = Clock::now();
    auto r = in.IngestFile(file, ProviderKind::kCodex);
    direct.push_back(Seconds(a, Clock::now()) * 1e6);
    if (!r || r->events != 1) std::fprintf(stderr, "warm: expected one event\n");
  }
  // Through the follower: from the end of write() to the commit callback.
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<double> follow;
  {
    Ingestor fin(ledger->get(), dormant::enforcer::DefaultPriceTable());
    fin.LoadCursors();
    LogFollower follower(&loop, &fin);
    bool got = false;
    fin.SetOnCommitted([&](const std::vector<LedgerEvent>&) { got = true; });
    follower.AddRoot({ProviderKind::kCodex, sessions});
    uv_timer_t guard;  // never wait forever for a line that was not metered
    uv_timer_init(&loop, &guard);
    for (int i = 0; i < n; ++i) {
      std::string line = TokenLine(lines[12], ++k);
      got = false;
      auto a = Clock::now();
      {
        std::ofstream(file, std::ios::app | std::ios::binary) << line;
      }
      uv_timer_start(&guard, [](uv_timer_t*) {}, 5000, 0);
      while (!got && Seconds(a, Clock::now()) < 5) uv_run(&loop, UV_RUN_ONCE);
      uv_timer_stop(&guard);
      if (!got) {
        std::fprintf(stderr, "warm: an appended line was not metered within 5 s\n");
        break;
      }
      follow.push_back(Seconds(a, Clock::now()) * 1e6);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    bool closed = false;
    follower.Close([&] { closed = true; });
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_loop_close(&loop);
  double p50 = Percentile(direct, 0.5);
  std::printf("warm: one appended token_count line, %d lines each way\n", n);
  std::printf("  IngestFile   p50 %.0f us  p99 %.0f us\n", p50, Percentile(direct, 0.99));
  std::printf("  via inotify  p50 %.0f us  p99 %.0f us  (append -> committed)\n",
              Percentile(follow, 0.5), Percentile(follow, 0.99));
  if (cold_codex_s > 0)
    std::printf("  a full re-read of the Codex history takes %.0fx as long as one warm line (p50)\n",
                cold_codex_s * 1e6 / p50);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--parse-child") == 0) {
    auto kind = ParseProviderKind(argv[2]);
    return kind ? ParseChild(*kind, argv[3]) : 2;
  }
  if (argc == 5 && std::strcmp(argv[1], "--ingest-child") == 0) {
    auto kind = ParseProviderKind(argv[3]);
    std::vector<LogRoot> roots;
    if (std::strcmp(argv[3], "both") == 0) {
      std::string d = argv[4];
      roots = {{ProviderKind::kCodex, d + "/codex/sessions"},
               {ProviderKind::kClaude, d + "/home/.claude/projects"}};
    } else if (kind) {
      roots = {{*kind, argv[4]}};
    }
    return IngestChild(argv[2], roots);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string dir, samples;
  size_t codex_mb = 180, claude_mb = 60;
  int warm = 2000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir") dir = next();
    else if (a == "--samples") samples = next();
    else if (a == "--codex-mb") codex_mb = std::stoul(next());
    else if (a == "--claude-mb") claude_mb = std::stoul(next());
    else if (a == "--warm") warm = std::stoi(next());
    else if (a == "--keep") keep = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--codex-mb N] [--claude-mb N] [--warm N] [--samples DIR] "
                   "[--keep]\n",
                   argv[0]);
      return 2;
    }
  }
  if (samples.empty()) {
    // bench/meter_ingest.cc -> <source>/../shared/samples
    samples = fs::path(__FILE__).parent_path().parent_path().string() + "/../shared/samples";
    if (const char* env = std::getenv("DORMANT_SAMPLES")) samples = env;
  }
  bool temp = dir.empty();
  if (temp) {
    char tmpl[] = "/tmp/dormant-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string codex_root = dir + "/codex/sessions";
  std::string claude_root = dir + "/home/.claude/projects";

  auto g0 = Clock::now();
  // The totals of a generated tree are kept beside it so a kept --dir is reused.
  Totals codex, claude;
  std::string meta = dir + "/generated.json";
  json m = json::parse(std::ifstream(meta), nullptr, false);
  auto to_json = [](const Totals& t) {
    return json{t.events, t.input, t.cached, t.output, t.reasoning, t.cache_write, t.cache_read,
                t.total,  t.files, t.bytes};
  };
  auto from_json = [](const json& j) {
    Totals t;
    t.events = j[0], t.input = j[1], t.cached = j[2], t.output = j[3], t.reasoning = j[4];
    t.cache_write = j[5], t.cache_read = j[6], t.total = j[7], t.files = j[8], t.bytes = j[9];
    return t;
  };
  if (!m.is_discarded() && m.value("codex_mb", 0u) == codex_mb && m.value("claude_mb", 0u) == claude_mb) {
    codex = from_json(m["codex"]);
    claude = from_json(m["claude"]);
    std::printf("reusing %s\n", dir.c_str());
  } else {
    fs::remove_all(dir + "/codex");
    fs::remove_all(dir + "/home");
    codex = GenerateCodex(samples, codex_root, codex_mb * 1000 * 1000);
    claude = GenerateClaude(samples, claude_root, claude_mb * 1000 * 1000);
    std::ofstream(meta) << json{{"codex_mb", codex_mb}, {"claude_mb", claude_mb},
                                {"codex", to_json(codex)}, {"claude", to_json(claude)}}.dump();
    std::printf("generated %s in %.1f s\n", dir.c_str(), Seconds(g0, Clock::now()));
  }
  std::printf("expected codex: %lld events, total %lld tokens; claude: %lld events, total %lld tokens\n",
              static_cast<long long>(codex.events), static_cast<long long>(codex.total),
              static_cast<long long>(claude.events), static_cast<long long>(claude.total));

  double cold_codex_s = 0;
  for (int pass = 0; pass < 2; ++pass) {
    bool is_codex = pass == 0;
    const std::string& root = is_codex ? codex_root : claude_root;
    const Totals& want = is_codex ? codex : claude;
    if (want.files == 0) continue;
    // The machine's timing varies run to run by a quarter: each side is run
    // kRuns times, alternately, and the medians are shown (peak RSS: the most).
    constexpr int kRuns = 5;
    CatSeconds(root);  // warm the page cache
    std::vector<double> cats, ours;
    json r;
    double hwm = 0;
    for (int run = 0; run < kRuns; ++run) {
      cats.push_back(CatSeconds(root));
      json one = RunChild(self, dir + "/ledger.sqlite", is_codex ? "codex" : "claude", root);
      if (one.is_discarded()) {
        r = one;
        break;
      }
      ours.push_back(one["seconds"].get<double>());
      hwm = std::max(hwm, one["vmhwm_kb"].get<double>());
      r = one;
    }
    double cat_s = Percentile(cats, 0.5);
    if (!r.is_discarded()) {
      r["seconds"] = Percentile(ours, 0.5);
      r["vmhwm_kb"] = hwm;
      std::printf("%s cold, %d runs each: dormant %.3f-%.3f s, cat %.3f-%.3f s\n",
                  is_codex ? "codex" : "claude", kRuns, *std::min_element(ours.begin(), ours.end()),
                  *std::max_element(ours.begin(), ours.end()), *std::min_element(cats.begin(), cats.end()),
                  *std::max_element(cats.begin(), cats.end()));
    }
    PrintCold(is_codex ? "codex" : "claude", want, cat_s, r);
    if (is_codex && !r.is_discarded()) cold_codex_s = r["seconds"].get<double>();
  }
  if (warm > 0) Warm(dir, samples, warm, cold_codex_s);
  if (temp && !keep) fs::remove_all(dir);
  else std::printf("kept %s\n", dir.c_str());
  return 0;
}
