// `dormant report`: spend from the ledger, grouped, with idle and active apart.
//
//   dormant report [--since 7d|24h|2026-11-01|all] [--by hour|day|client|model|session|provider]
//                  [--idle-only] [--json|--csv] [--import] [--ledger PATH]
//
// --import first reads the providers' existing logs ($CODEX_HOME/sessions,
// ~/.claude/projects, $CLAUDE_CONFIG_DIR/projects) into the ledger, from the
// offsets it already holds, with idle unknown. Exit: 0 ok, 1 error, 2 usage.
#pragma once

namespace dormant::launcher {

/// argv[0] is "report".
int RunReportCommand(int argc, char** argv);

}  // namespace dormant::launcher
