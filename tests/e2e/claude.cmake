# End-to-end tests with the real Claude Code CLI (npm @anthropic-ai/claude-code, pinned; tools/npm-deps.sh).
# Like the Codex ones they never skip: without the pinned CLI they FAIL and say how to install it.
set(E2E_DIR ${CMAKE_CURRENT_LIST_DIR})
set(E2E_PYTHON /usr/bin/python3)

# Issue 2 with Claude Code in stream-json mode (as desktop apps run it) as the provider.
add_test(NAME e2e_claude_stream_json
         COMMAND ${E2E_PYTHON} ${E2E_DIR}/test_idle_cycle.py --provider claude --dormant $<TARGET_FILE:dormant>)
set_tests_properties(e2e_claude_stream_json PROPERTIES TIMEOUT 300 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# The Messages API mock against the real CLI: project logs carry exactly the usage the mock served (issue 5).
add_test(NAME e2e_mock_claude COMMAND ${E2E_PYTHON} ${E2E_DIR}/test_mocks.py claude)
set_tests_properties(e2e_mock_claude PROPERTIES TIMEOUT 240 LABELS e2e ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
