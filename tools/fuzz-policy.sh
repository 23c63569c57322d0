#!/bin/sh
# Builds the policy loader's libFuzzer target and runs it.
#   tools/fuzz-policy.sh [SECONDS]      (default 60)
# Environment: FUZZ_BUILD (build dir, default build-fuzz), FUZZ_MERGE=1 to fold
# new interesting inputs into tests/fuzz/corpus, FUZZ_JOBS (parallel workers).
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
bin="$build/policy_fuzzer"

# toml++ in header-only mode so its parser is instrumented along with ours;
# toml_assert.h explains the one toml++ assertion it lets through.
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DTOML_HEADER_ONLY=1 -include tests/fuzz/toml_assert.h -I. \
  tests/fuzz/policy_fuzzer.cc \
  launcher/policy_loader.cc launcher/policy_layer.cc launcher/policy_schema.cc launcher/policy_cli.cc \
  enforcer/policy.cc enforcer/time.cc enforcer/budget.cc \
  -o "$bin"

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
echo "fuzzing the policy loader ($limit; corpus tests/fuzz/corpus, new inputs in $new)"
"$bin" $limit -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" \
  -dict=tests/fuzz/policy.dict -artifact_prefix="$build/" -print_final_stats=1 \
  "$new" tests/fuzz/corpus
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$bin" -merge=1 -max_len=8192 tests/fuzz/corpus "$new"
fi
