// Helper modes: the test binary re-runs itself as `dormant_tests --helper NAME
// ARGS...` to be a real process in a real tree (as libuv's tests do).
// Register a mode in any test file:
//   DORMANT_HELPER(sleeper) { pause(); return 0; }   // argc/argv are the ARGS
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dormant::testing {

using HelperFn = int (*)(int argc, char** argv);
std::map<std::string, HelperFn>& Helpers();
struct HelperRegistration {
  HelperRegistration(const char* name, HelperFn fn) { Helpers()[name] = fn; }
};

/// Path of this test binary (for re-running it in a helper mode).
std::string SelfPath();
/// argv for `SelfPath() --helper name args...`.
std::vector<std::string> HelperArgv(const std::string& name, std::vector<std::string> args = {});

}  // namespace dormant::testing

#define DORMANT_HELPER(name)                                                          \
  static int dormant_helper_##name(int argc, char** argv);                            \
  static ::dormant::testing::HelperRegistration dormant_helper_reg_##name(#name,      \
                                                          &dormant_helper_##name);   \
  static int dormant_helper_##name([[maybe_unused]] int argc, [[maybe_unused]] char** argv)
