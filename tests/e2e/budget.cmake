# Issue 5's end-to-end tests: metering into the ledger and budgets enforced on the real `codex app-server`
# (npm @openai/codex, pinned; tools/npm-deps.sh) against the Responses mock. See docs/e2e.md.
add_test(NAME e2e_budget_ledger-totals
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_budget.py ledger-totals
                 --dormant $<TARGET_FILE:dormant>)
set_tests_properties(e2e_budget_ledger-totals PROPERTIES TIMEOUT 240 LABELS e2e
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
foreach(gate off on)
  add_test(NAME e2e_budget_kill-lockout-gate-${gate}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_budget.py kill-lockout --gate ${gate}
                   --dormant $<TARGET_FILE:dormant>)
  set_tests_properties(e2e_budget_kill-lockout-gate-${gate} PROPERTIES TIMEOUT 300 LABELS e2e
                       ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()
