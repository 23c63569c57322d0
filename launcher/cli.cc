#include "launcher/cli.h"

#include <cerrno>

#include "enforcer/time.h"

namespace dormant::launcher {

Expected<RunOptions> ParseRun(const std::vector<std::string>& args) {
  RunOptions o;
  size_t i = 0;
  auto value = [&](const std::string& flag) -> Expected<std::string> {
    if (i + 1 >= args.size()) return Error{EINVAL, flag + " needs a value"};
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--policy" || a == "--set" || a == "--name") {
      auto v = value(a);
      if (!v) return v.error();
      if (a == "--policy") o.sources.files.push_back(*v);
      if (a == "--set") o.sources.sets.push_back(*v);
      if (a == "--name") o.name = *v;
      continue;
    }
    if (a.starts_with("--policy=")) { o.sources.files.push_back(a.substr(9)); continue; }
    if (a.starts_with("--set=")) { o.sources.sets.push_back(a.substr(6)); continue; }
    if (a.starts_with("--name=")) { o.name = a.substr(7); continue; }
    if (a.starts_with("-")) return Error{EINVAL, "unknown option '" + a + "' for run"};
    break;  // COMMAND without "--"
  }
  o.command.assign(args.begin() + std::min(i, args.size()), args.end());
  if (o.command.empty()) return Error{EINVAL, "run needs a command: dormant run [OPTIONS] -- COMMAND [ARG]..."};
  return o;
}

Expected<ControlOptions> ParseControl(const std::vector<std::string>& args, bool allow_json) {
  ControlOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--name") {
      if (i + 1 >= args.size()) return Error{EINVAL, "--name needs a value"};
      o.name = args[++i];
    } else if (a.starts_with("--name=")) {
      o.name = a.substr(7);
    } else if (a == "--json" && allow_json) {
      o.json = true;
    } else {
      return Error{EINVAL, "unknown argument '" + a + "'"};
    }
  }
  return o;
}

std::string FormatStatus(const nlohmann::json& s) {
  using enforcer::Duration;
  using enforcer::FormatDuration;
  auto ms = [](const nlohmann::json& v) { return FormatDuration(Duration(v.get<int64_t>() / 1000 * 1000)); };
  std::string out;
  const auto& app = s.at("app");
  out += s.value("name", "?") + ": app pid " + std::to_string(app.value("pid", 0)) +
         (app.value("running", false) ? " running" : " exited") + "\n";
  out += "idle " + ms(s.at("idle_for_ms")) + " (source " + s.value("idle_source", "?") + ")" +
         (s.value("paused", false) ? ", paused" : "") + "\n";
  const auto& providers = s.at("providers");
  if (providers.empty()) out += "no provider running\n";
  for (const auto& p : providers) {
    out += "  " + p.value("name", "?") + " pid " + std::to_string(p.value("pid", 0)) + ": " +
           p.value("state", "?") + " since " + p.value("since", "?") + " (" + p.value("reason", "") + ")";
    if (p.contains("next") && !p["next"].is_null()) {
      out += "; next: " + p["next"].value("action", "?") + " in " + ms(p["next"].at("in_ms"));
    }
    out += "\n";
  }
  return out;
}

}  // namespace dormant::launcher
