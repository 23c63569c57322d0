#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "tests/helper.h"

namespace dormant::testing {

std::map<std::string, HelperFn>& Helpers() {
  static std::map<std::string, HelperFn> helpers;
  return helpers;
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, n);
}

std::vector<std::string> HelperArgv(const std::string& name, std::vector<std::string> args) {
  std::vector<std::string> argv = {SelfPath(), "--helper", name};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace dormant::testing

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--helper") == 0) {
    auto& helpers = dormant::testing::Helpers();
    auto it = helpers.find(argv[2]);
    if (it == helpers.end()) {
      std::fprintf(stderr, "unknown helper mode: %s\n", argv[2]);
      return 127;
    }
    return it->second(argc - 3, argv + 3);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
