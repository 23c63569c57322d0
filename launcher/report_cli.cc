#include "launcher/report_cli.h"

#include <cstdio>
#include <string>
#include <string_view>

#include "meter/follower.h"
#include "meter/ingest.h"
#include "meter/ledger.h"
#include "meter/report.h"

namespace dormant::launcher {

namespace {

constexpr const char* kUsage =
    "usage: dormant report [--since 7d|24h|YYYY-MM-DD|all] "
    "[--by hour|day|client|model|session|provider]\n"
    "                      [--idle-only] [--json|--csv] [--import] [--ledger PATH]\n";

struct Options {
  std::string since = "all";
  meter::ReportBy by = meter::ReportBy::kClient;
  bool idle_only = false;
  enum class Format { kTable, kJson, kCsv } format = Format::kTable;
  bool import = false;
  std::string ledger;
};

int Usage(const std::string& complaint) {
  if (!complaint.empty()) std::fprintf(stderr, "dormant report: %s\n", complaint.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

// Returns -1 when parsed, else the exit code.
int ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--since") {
      const char* v = value(a);
      if (!v) return Usage("--since needs a value");
      o->since = v;
    } else if (a.starts_with("--since=")) {
      o->since = std::string(a.substr(8));
    } else if (a == "--by" || a.starts_with("--by=")) {
      const char* v = a == "--by" ? value(a) : argv[i] + 5;
      if (!v) return Usage("--by needs a value");
      auto by = meter::ParseReportBy(v);
      if (!by) return Usage(std::string("--by: unknown grouping '") + v + "'");
      o->by = *by;
    } else if (a == "--idle-only") {
      o->idle_only = true;
    } else if (a == "--json") {
      o->format = Options::Format::kJson;
    } else if (a == "--csv") {
      o->format = Options::Format::kCsv;
    } else if (a == "--import") {
      o->import = true;
    } else if (a == "--ledger") {
      const char* v = value(a);
      if (!v) return Usage("--ledger needs a path");
      o->ledger = v;
    } else {
      return Usage("unknown argument '" + std::string(a) + "'");
    }
  }
  return -1;
}

int Import(meter::Ledger& ledger) {
  meter::Ingestor ingestor(&ledger, enforcer::DefaultPriceTable());
  if (auto ok = ingestor.LoadCursors(); !ok) {
    std::fprintf(stderr, "dormant report: %s\n", ok.error().message.c_str());
    return 1;
  }
  size_t files = 0;
  if (auto ok = ingestor.BeginBulk(); !ok) {
    std::fprintf(stderr, "dormant report: %s\n", ok.error().message.c_str());
    return 1;
  }
  std::vector<std::pair<std::string, meter::ProviderKind>> list;
  for (const meter::LogRoot& root : meter::DefaultLogRoots())
    for (const std::string& path : meter::ListLogFiles(root.dir)) list.emplace_back(path, root.kind);
  auto imported = ingestor.Import(list, meter::ImportThreads());
  for (const Error& e : imported.errors) std::fprintf(stderr, "dormant report: %s\n", e.message.c_str());
  files = imported.files;
  if (auto ok = ingestor.EndBulk(); !ok) {
    std::fprintf(stderr, "dormant report: %s\n", ok.error().message.c_str());
    return 1;
  }
  const meter::ParseStats& s = ingestor.stats();
  std::fprintf(stderr,
               "imported %zu new event(s) from %zu file(s): %llu line(s) read, %zu already in the "
               "ledger, %llu repeated total(s) skipped, %llu malformed line(s) skipped\n",
               ingestor.committed(), files, static_cast<unsigned long long>(s.lines),
               ingestor.duplicates(), static_cast<unsigned long long>(s.repeats),
               static_cast<unsigned long long>(s.malformed));
  return 0;
}

}  // namespace

int RunReportCommand(int argc, char** argv) {
  Options o;
  if (int rc = ParseArgs(argc, argv, &o); rc >= 0) return rc;
  int64_t now = meter::NowUnixMs();
  auto since = meter::ParseSince(o.since, now, meter::LocalUtcOffset(now));
  if (!since) return Usage("--since: expected 7d, 24h, 90m, 2w, YYYY-MM-DD or all");
  auto ledger = meter::Ledger::Open(o.ledger.empty() ? meter::Ledger::DefaultPath() : o.ledger);
  if (!ledger) {
    std::fprintf(stderr, "dormant report: %s\n", ledger.error().message.c_str());
    return 1;
  }
  if (o.import) {
    if (int rc = Import(**ledger); rc != 0) return rc;
  }
  meter::ReportQuery q{*since, o.by, o.idle_only};
  auto report = meter::QueryReport(**ledger, q);
  if (!report) {
    std::fprintf(stderr, "dormant report: %s\n", report.error().message.c_str());
    return 1;
  }
  std::string out = o.format == Options::Format::kJson  ? meter::FormatJson(*report)
                    : o.format == Options::Format::kCsv ? meter::FormatCsv(*report)
                                                        : meter::FormatTable(*report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace dormant::launcher
