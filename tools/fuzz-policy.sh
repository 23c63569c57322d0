#!/bin/sh
# Builds the policy loader's libFuzzer target and runs it.
#   tools/fuzz-policy.sh [SECONDS]      (default 60)
# Environment: see tools/fuzz-common.sh (FUZZ_BUILD, FUZZ_RUNS, FUZZ_JOBS,
# FUZZ_FLAGS); FUZZ_MERGE=1 folds new interesting inputs into tests/fuzz/corpus.
set -eu
cd "$(dirname "$0")/.."
. tools/fuzz-common.sh
bin="$build/policy_fuzzer"

# toml++ in header-only mode so its parser is instrumented along with ours;
# toml_assert.h explains the one toml++ assertion it lets through.
fuzz_compile "$bin" -DTOML_HEADER_ONLY=1 -include tests/fuzz/toml_assert.h \
  tests/fuzz/policy_fuzzer.cc \
  launcher/policy_loader.cc launcher/policy_layer.cc launcher/policy_schema.cc launcher/policy_cli.cc \
  enforcer/policy.cc enforcer/time.cc enforcer/budget.cc

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
echo "fuzzing the policy loader ($limit; corpus tests/fuzz/corpus, new inputs in $new)"
fuzz_run "$bin" -max_len=8192 -dict=tests/fuzz/policy.dict "$new" tests/fuzz/corpus
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$bin" -merge=1 -max_len=8192 tests/fuzz/corpus "$new"
fi
