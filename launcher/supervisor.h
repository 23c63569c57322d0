// `dormant run`: starts the app under supervision and runs the event loop that
// turns what the OS says into enforcer events and carries out its actions.
#pragma once

#include <string>
#include <vector>

#include "launcher/policy_loader.h"

namespace dormant::launcher {

struct RunOptions {
  std::vector<std::string> command;  // COMMAND [ARG]...
  std::string name;                  // --name, or the command's base name
  PolicySources sources;             // --policy / --set, plus the system and user layers
};

/// Runs until the app has exited and every process below dormant is gone.
/// Returns the app's exit status (128 + N when it died of signal N), 2 for a
/// usage or policy error, 127 when COMMAND cannot be run.
int RunSupervisor(const RunOptions& options);

}  // namespace dormant::launcher
