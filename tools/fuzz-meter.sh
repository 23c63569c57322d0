#!/bin/sh
# Builds the meter's libFuzzer target (the JSON scanner against a strict
# parser, and the Codex and Claude parsers) and runs it.
#   tools/fuzz-meter.sh [SECONDS]      (default 60)
# Environment: FUZZ_BUILD (build dir, default build-fuzz), FUZZ_JOBS,
# FUZZ_FLAGS (e.g. -DDORMANT_NO_SIMD for the scanner's plain path).
# Seeds: the real sample logs in ../shared/samples, one line a file.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
# FUZZ_RUNS=N: that many inputs from a fixed seed (FUZZ_SEED, default 1)
# instead of a time: the same run every time (ctest uses it).
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit="-runs=$FUZZ_RUNS -seed=${FUZZ_SEED:-1}"
else
  limit="-max_total_time=$seconds"
fi
build=${FUZZ_BUILD:-build-fuzz}
mkdir -p "$build"
bin="$build/meter_fuzzer"
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
  ${FUZZ_FLAGS:-} tests/fuzz/meter_fuzzer.cc \
  meter/json_scan.cc meter/codex_parser.cc meter/claude_parser.cc meter/usage.cc \
  enforcer/budget.cc enforcer/time.cc enforcer/policy.cc \
  -o "$bin"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
samples="${DORMANT_SAMPLES:-../shared/samples}"
n=0
find "$samples" -name '*.jsonl' | while read -r f; do
  split -l 1 -a 4 "$f" "$seeds/$(basename "$f" .jsonl)-"
done
echo "fuzzing the meter's scanner and parsers ($limit; $(ls "$seeds" | wc -l) seed lines)"
"$bin" $limit -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" \
  -artifact_prefix="$build/" -print_final_stats=1 "$seeds"
