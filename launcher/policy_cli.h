// `dormant policy ...`: show the effective policy (with origins, as TOML or
// JSON) and check policy files.
//
//   dormant policy show [--origin] [--json] [--defaults] [--policy FILE]... [--set KEY=VALUE]...
//   dormant policy check [--set KEY=VALUE]... [FILE]...
//
// Exit status: 0 valid, 2 invalid policy or bad usage.
#pragma once

#include <iosfwd>
#include <string>

#include "launcher/policy_loader.h"

namespace dormant::launcher {

/// argv[0] is "policy". Writes to std::cout / std::cerr. Returns the exit status.
int RunPolicyCommand(int argc, char** argv);
/// The same, writing to the given streams (tests).
int RunPolicyCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

/// The effective policy as a TOML document that loads back to the same policy.
/// With `origin`, a list of "WHERE<TAB>KEY = VALUE" lines instead, locked keys marked.
std::string FormatPolicyToml(const LoadedPolicy& loaded, bool origin);
/// The effective policy as JSON; with `origin`, an object holding "policy",
/// "origin", "locks" and "notices".
std::string FormatPolicyJson(const LoadedPolicy& loaded, bool origin);

}  // namespace dormant::launcher
