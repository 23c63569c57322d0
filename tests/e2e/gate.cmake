# Issue 6's end-to-end tests: the seccomp gate with the real Codex CLI (npm @openai/codex, pinned;
# tools/npm-deps.sh) and Debian's Chromium. They never skip: without the CLI or chromium they FAIL and say how
# to install it. See docs/e2e.md.
foreach(case exec-recognised network-when-active supervisor-killed supervisor-stopped chromium)
  add_test(NAME e2e_gate_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_gate.py ${case} --dormant $<TARGET_FILE:dormant>)
  set_tests_properties(e2e_gate_${case} PROPERTIES TIMEOUT 300 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()
