// Force-included (-include) into the fuzz build, which compiles toml++ in
// header-only debug mode. toml++ 3.3.0's parse_table_header() calls
// parse_key() on a character that cannot start a key ("[&x]", "[[[1]]]"),
// tripping a precondition assert before it reports the parse error it would
// report anyway (fixed upstream after 3.3.0). Debian's library is built with
// GCC and NDEBUG, where that check compiles to nothing, so it reports a normal
// parse_error (tests/policy_loader_test.cc checks that). This hook mirrors that
// for the one known check and still aborts on any other assertion.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

inline void DormantTomlAssert(const char* expr, const char* file, int line) {
  if (std::strcmp(expr, "is_bare_key_character(*cp) || is_string_delimiter(*cp)") == 0) return;
  std::fprintf(stderr, "%s:%d: toml++ assertion failed: %s\n", file, line, expr);
  std::abort();
}

#define TOML_ASSERT(expr) ((expr) ? (void)0 : DormantTomlAssert(#expr, __FILE__, __LINE__))
