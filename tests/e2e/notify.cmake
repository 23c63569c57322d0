# Desktop notifications through `dormant run` (docs/policy.md, [notify]): a private session bus with
# python3-dbusmock's notification_daemon recording every Notify. idle-warning, desktop-off and no-daemon use
# the idle warning (warn_after) of a `sleep` provider under the manual idle source; budget uses the real
# `codex app-server` (npm @openai/codex, pinned; tools/npm-deps.sh) against the Responses mock, as
# test_budget.py does. See tests/e2e/test_notify.py.
foreach(case idle-warning desktop-off no-daemon budget)
  add_test(NAME e2e_notify_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_notify.py ${case} --dormant $<TARGET_FILE:dormant>)
  set_tests_properties(e2e_notify_${case} PROPERTIES TIMEOUT 240 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()
