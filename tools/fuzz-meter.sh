#!/bin/sh
# Builds the meter's libFuzzer target (the JSON scanner against a strict
# parser, and the Codex and Claude parsers) and runs it.
#   tools/fuzz-meter.sh [SECONDS]      (default 60)
# Environment: see tools/fuzz-common.sh (FUZZ_BUILD, FUZZ_RUNS, FUZZ_JOBS,
# FUZZ_FLAGS: e.g. -DDORMANT_NO_SIMD for the scanner's plain path).
# Seeds: the real sample logs in ../shared/samples, one line a file.
set -eu
cd "$(dirname "$0")/.."
. tools/fuzz-common.sh
bin="$build/meter_fuzzer"
fuzz_compile "$bin" tests/fuzz/meter_fuzzer.cc \
  meter/json_scan.cc meter/codex_parser.cc meter/claude_parser.cc meter/usage.cc \
  enforcer/budget.cc enforcer/time.cc enforcer/policy.cc
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
samples="${DORMANT_SAMPLES:-../shared/samples}"
find "$samples" -name '*.jsonl' | while read -r f; do
  split -l 1 -a 4 "$f" "$seeds/$(basename "$f" .jsonl)-"
done
echo "fuzzing the meter's scanner and parsers ($limit; $(ls "$seeds" | wc -l) seed lines)"
fuzz_run "$bin" -max_len=16384 "$seeds"
