// Command-line parsing for `dormant`, kept apart from main() so tests can reach it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "enforcer/expected.h"
#include "launcher/supervisor.h"

namespace dormant::launcher {

/// `run [--policy FILE]... [--set KEY=VALUE]... [--name NAME] -- COMMAND [ARG]...`
/// (args excludes "run"). The "--" may be left out when COMMAND does not start with '-'.
Expected<RunOptions> ParseRun(const std::vector<std::string>& args);

/// `status|activity|pause|resume|reload [--name NAME] [--json]` (args excludes the verb).
struct ControlOptions {
  std::string name;
  bool json = false;
};
Expected<ControlOptions> ParseControl(const std::vector<std::string>& args, bool allow_json);

/// The human form of a status reply.
std::string FormatStatus(const nlohmann::json& status);

}  // namespace dormant::launcher
