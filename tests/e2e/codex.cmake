# End-to-end tests with the real Codex CLI (npm @openai/codex, pinned; tools/npm-deps.sh installs it into
# .deps/npm). They never skip: without the pinned CLI they FAIL and say how to install it. See docs/e2e.md.
set(E2E_DIR ${CMAKE_CURRENT_LIST_DIR})
set(E2E_PYTHON /usr/bin/python3)

# Issue 2: dormant suspends an idle `codex app-server`, resumes it on activity, ends it after kill_after.
add_test(NAME e2e_codex_app_server
         COMMAND ${E2E_PYTHON} ${E2E_DIR}/test_idle_cycle.py --provider codex --dormant $<TARGET_FILE:dormant>)
set_tests_properties(e2e_codex_app_server PROPERTIES TIMEOUT 300 LABELS e2e
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# Issue 2: pause/resume, an app that exits leaving a stopped provider, dormant itself SIGKILLed, and a
# provider started while suspended (suspended on sight).
foreach(case pause-then-app-exits supervisor-killed spawn-while-suspended)
  add_test(NAME e2e_codex_${case}
           COMMAND ${E2E_PYTHON} ${E2E_DIR}/test_codex_lifecycle.py ${case} --dormant $<TARGET_FILE:dormant>)
  set_tests_properties(e2e_codex_${case} PROPERTIES TIMEOUT 240 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()

# The Responses API mock against the real CLI: rollouts carry exactly the usage the mock served (issue 5).
foreach(case codex-exec codex-app-server)
  add_test(NAME e2e_mock_${case} COMMAND ${E2E_PYTHON} ${E2E_DIR}/test_mocks.py ${case})
  set_tests_properties(e2e_mock_${case} PROPERTIES TIMEOUT 240 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()
