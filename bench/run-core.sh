#!/usr/bin/env bash
# Builds dormant and the core benchmarks (Release) and runs them, then prints a
# summary table against issue 2's targets. Short runs by default; --full runs
# the issue's lengths (60 s idle per mode, 200 rounds / spawns).
#   bench/run-core.sh [--full] [--no-build]
# Environment: BUILD_DIR (default: build-bench-core beside this tree),
#              BUILD_TYPE (default: Release), JOBS (default: nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench-core}"
BUILD_TYPE="${BUILD_TYPE:-Release}"
JOBS="${JOBS:-$(nproc)}"
FULL=0
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    --no-build) BUILD=0 ;;
    *) echo "usage: $0 [--full] [--no-build]" >&2; exit 2 ;;
  esac
done

if [[ $BUILD == 1 ]]; then
  # GCC 12 at -O3 warns -Wrestrict, wrongly, inside std::string's operator+
  # (enforcer/time.cc); with -Werror that stops a Release build.
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCMAKE_CXX_FLAGS="-Wno-restrict" >/dev/null
  cmake --build "$BUILD_DIR" -j"$JOBS" --target dormant bench_core_idle bench_core_latency bench_core_freeze
fi

if [[ $FULL == 1 ]]; then
  IDLE_ARGS=(--seconds 60 --mode all)
  LATENCY_ARGS=(--rounds 200 --cli-rounds 20 --spawns 200 --walk-spawns 40)
  FREEZE_ARGS=(--rounds 10)
else
  IDLE_ARGS=(--seconds 15 --mode all)
  LATENCY_ARGS=(--rounds 100 --cli-rounds 10 --spawns 100 --walk-spawns 20)
  FREEZE_ARGS=(--rounds 10)
fi

OUT="$(mktemp -d /tmp/dormant-bench-run-XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
status=0
run() {
  local name="$1"; shift
  echo
  echo "######## $name $*"
  if ! "$BUILD_DIR/bench/$name" "$@" | tee "$OUT/$name.txt" | grep -v '^RESULT'; then
    echo "!! $name failed" >&2
    status=1
  fi
}
run bench_core_idle "${IDLE_ARGS[@]}"
run bench_core_latency "${LATENCY_ARGS[@]}"
run bench_core_freeze "${FREEZE_ARGS[@]}"

# RESULT KEY field=value ... UNIT  ->  one row per figure we hold against a target.
cat "$OUT"/*.txt | awk '
  /^RESULT / {
    key = $2
    for (i = 3; i <= NF; i++) {
      if (split($i, kv, "=") == 2) v[key "." kv[1]] = kv[2]
    }
  }
  function row(what, target, value, unit, limit,    verdict) {
    if (value == "") return
    verdict = (value + 0 <= limit) ? "meets" : "MISSES"
    printf "| %-50s | %-12s | %10s %-12s | %-6s |\n", what, target, value, unit, verdict
  }
  function info(what, value, unit) {
    if (value == "") return
    printf "| %-50s | %-12s | %10s %-12s | %-6s |\n", what, "-", value, unit, ""
  }
  END {
    printf "\n| %-50s | %-12s | %-23s | %-6s |\n", "figure", "target", "measured", ""
    printf "|%s|%s|%s|%s|\n", "----------------------------------------------------", "--------------",
           "-------------------------", "--------"
    row("idle CPU, supervisor (connector)", "< 0.05 %", v["connector.supervisor.cpu_sched.value"], "% core", 0.05)
    row("idle CPU, supervisor (walk only)", "< 0.05 %", v["walk.supervisor.cpu_sched.value"], "% core", 0.05)
    info("idle wake-ups, supervisor (connector)", v["connector.supervisor.wakeups.value"], "per s")
    info("process events on the machine meanwhile", v["connector.machine_events.value"], "per s")
    info("idle wake-ups, supervisor (walk only)", v["walk.supervisor.wakeups.value"], "per s")
    info("idle CPU, supervisor, 200 execs/s elsewhere", v["storm.supervisor.cpu_sched.value"], "% core")
    info("supervisor CPU per machine process event", v["storm.us_per_event.value"], "us")
    info("providers dormant lists, connector (the app has 2)", v["connector.providers_listed.value"], "")
    info("providers dormant lists, walk only (the app has 2)", v["walk.providers_listed.value"], "")
    row("supervisor VmHWM", "< 8 MiB", v["connector.supervisor.hwm.value"], "MiB", 8)
    info("guardian VmHWM", v["connector.guardian.hwm.value"], "MiB")
    row("activity -> last provider running, p99", "< 10 ms", v["activity.running.p99"], "ms", 10)
    info("activity -> last provider running, p50", v["activity.running.p50"], "ms")
    info("`dormant activity` binary -> running, p50", v["activity.cli.p50"], "ms")
    row("exec -> stopped on sight (connector), p99", "< 100 ms", v["exec.fork_to_stopped.p99"], "ms", 100)
    row("exec -> listed by status (connector), p99", "< 100 ms", v["exec.fork_to_listed.p99"], "ms", 100)
    row("exec -> stopped on sight (walk only), p99", "< 100 ms", v["exec_walk.fork_to_stopped.p99"], "ms", 100)
    row("exec -> listed by status (walk only), p99", "< 100 ms", v["exec_walk.fork_to_listed.p99"], "ms", 100)
    info("spawns stopped inside execve while paused (connector)", v["exec.stopped_in_exec.value"], "spawns")
    row("spawned while paused, never listed (connector)", "0", v["exec.never_listed_paused.value"], "spawns", 0)
    row("spawned while paused, stopped after resume (connector)", "0", v["exec.stuck_after_resume.value"], "spawns", 0)
    row("spawned while paused, stopped after resume (walk)", "0", v["exec_walk.stuck_after_resume.value"], "spawns", 0)
    row("pause 1000 processes -> all T, p50", "< 20 ms", v["freeze.pause_all_T.p50"], "ms", 20)
    row("pause 1000 processes -> reply, p50", "< 20 ms", v["freeze.pause_reply.p50"], "ms", 20)
    row("resume 1000 processes -> none T, p50", "< 20 ms", v["freeze.resume_all_running.p50"], "ms", 20)
    info("pause 1000 processes -> all T, max", v["freeze.pause_all_T.max"], "ms")
    info("resume 1000 processes -> none T, max", v["freeze.resume_all_running.max"], "ms")
  }'
echo
echo "loadavg at the end: $(cat /proc/loadavg)"
exit $status
