#!/bin/bash
# dormant's main job, end to end: an app's provider is suspended while the user
# is idle, resumed the moment they are back, and ended after a long absence,
# while the app itself runs on. Usage: demo/run.sh [PATH-TO-dormant]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dormant=${1:-$here/../build/dormant}
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"
# Only the demo's policy: no system or user layers.
export DORMANT_SYSTEM_DIR=$XDG_RUNTIME_DIR/none XDG_CONFIG_HOME=$XDG_RUNTIME_DIR/none
# Its own ledger and provider log roots: the demo meters nothing of yours.
export XDG_STATE_HOME=$XDG_RUNTIME_DIR/state CODEX_HOME=$XDG_RUNTIME_DIR/codex CLAUDE_CONFIG_DIR=$XDG_RUNTIME_DIR/claude
trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT

say() { printf '\n\033[1m== t=%ss: %s\033[0m\n' "$SECONDS" "$*"; }
state() { [ -n "$1" ] && awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone; }
provider_pid() { "$dormant" status --json | sed -n 's/.*"providers":\[{"name":"codex","next":[^}]*},"pid":\([0-9]*\).*/\1/p'; }

SECONDS=0
say "dormant run --policy demo/policy.toml -- demo/app.sh  (suspend after 3s idle, kill after 14s)"
"$dormant" run --policy "$here/policy.toml" --name demo -- "$here/app.sh" &
sup=$!
sleep 1.5
"$dormant" status
pid=$(provider_pid)
say "the user is away: wait for suspend_after"
sleep 3
"$dormant" status
echo "provider $pid is in state $(state "$pid") (T = stopped): no tick lines now"
sleep 2
say "the user is back: dormant activity"
"$dormant" activity
echo "provider $pid is in state $(state "$pid")"
sleep 1.5
say "away again, for longer than kill_after"
sleep 15
"$dormant" status
echo "provider $pid: $(state "$pid"); the app is still running"
say "the app quits; dormant exits with its status"
kill -TERM "$sup"
wait "$sup" && rc=0 || rc=$?
echo "dormant exited with status $rc"
