// dormant: a launcher and enforcer that keeps AI coding providers from spending
// while their user is away. main() dispatches to one verb.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "launcher/cli.h"
#include "launcher/control.h"
#include "launcher/policy_cli.h"
#include "launcher/report_cli.h"
#include "launcher/supervisor.h"

namespace {

constexpr const char* kUsage = R"(usage: dormant VERB [ARGS]

  run [--policy FILE]... [--set KEY=VALUE]... [--name NAME] -- COMMAND [ARG]...
                      start COMMAND under supervision
  status [--name NAME] [--json]
                      show the app, its providers, idle time and what comes next
  activity [--name NAME]
                      tell the supervisor the user is here (resumes providers)
  pause [--name NAME] suspend every provider now, until `dormant resume`
  resume [--name NAME]
                      resume every provider (counts as activity)
  reload [--name NAME]
                      re-read the policy (a broken one is refused; the old stays)
  policy check|show ...
                      validate or show policies (see `dormant policy --help`)
  report [--since 7d] [--by hour|day|client|model|session] [--idle-only] [--json|--csv] [--import]
                      what providers spent, from the ledger, idle and active apart

Exit status of `run`: the app's (128 + N when it died of signal N); 2 for a
usage or policy error; 127 when COMMAND cannot be run.
)";

int Control(const std::string& verb, const std::vector<std::string>& args) {
  using namespace dormant::launcher;
  auto opts = ParseControl(args, verb == "status");
  if (!opts) {
    std::fprintf(stderr, "dormant %s: %s\n", verb.c_str(), opts.error().message.c_str());
    return 2;
  }
  auto path = ResolveSocket(opts->name);
  if (!path) {
    std::fprintf(stderr, "dormant %s: %s\n", verb.c_str(), path.error().message.c_str());
    return 1;
  }
  auto reply = Call(*path, {{"cmd", verb}});
  if (!reply) {
    std::fprintf(stderr, "dormant %s: %s\n", verb.c_str(), reply.error().message.c_str());
    return 1;
  }
  const auto& r = *reply;
  if (!r.value("ok", false)) {
    std::fprintf(stderr, "dormant %s: %s\n", verb.c_str(), r.value("error", std::string("failed")).c_str());
    if (r.contains("errors")) {
      for (const auto& e : r["errors"]) std::fprintf(stderr, "%s\n", e.get<std::string>().c_str());
    }
    return verb == "reload" ? 2 : 1;
  }
  if (verb == "status") {
    std::string out = opts->json ? r.dump() + "\n" : FormatStatus(r);
    std::fputs(out.c_str(), stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("dormant");
  logger->set_pattern("%H:%M:%S.%e dormant %^%l%$: %v");
  spdlog::set_default_logger(logger);
  if (const char* lvl = std::getenv("DORMANT_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));

  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string verb = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (verb == "--version") {
    std::puts("dormant 0.1.0");
    return 0;
  }
  if (verb == "run") {
    auto opts = dormant::launcher::ParseRun(args);
    if (!opts) {
      std::fprintf(stderr, "dormant run: %s\n", opts.error().message.c_str());
      return 2;
    }
    return dormant::launcher::RunSupervisor(*opts);
  }
  if (verb == "status" || verb == "activity" || verb == "pause" || verb == "resume" || verb == "reload") {
    return Control(verb, args);
  }
  if (verb == "policy") return dormant::launcher::RunPolicyCommand(argc - 1, argv + 1);
  if (verb == "report") return dormant::launcher::RunReportCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "dormant: unknown verb '%s'\n\n%s", verb.c_str(), kUsage);
  return 2;
}
