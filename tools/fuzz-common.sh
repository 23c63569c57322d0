# Sourced by tools/fuzz-*.sh, from the repository's root, with the run's
# SECONDS as $1. Sets:
#   limit   how long to fuzz: -max_total_time=SECONDS (default 60), or with
#           FUZZ_RUNS=N that many inputs from a fixed seed (FUZZ_SEED, default
#           1): the same run every time (ctest uses it);
#   build   FUZZ_BUILD (default build-fuzz), created;
# and gives fuzz_compile OUT SOURCES... (clang++ with libFuzzer, ASan and
# UBSan, FUZZ_FLAGS added) and fuzz_run BIN ARGS... (libFuzzer with the limit,
# FUZZ_JOBS workers, crash inputs kept in $build).
seconds=${1:-60}
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit="-runs=$FUZZ_RUNS -seed=${FUZZ_SEED:-1}"
else
  limit="-max_total_time=$seconds"
fi
build=${FUZZ_BUILD:-build-fuzz}
mkdir -p "$build"

fuzz_compile() {
  out=$1
  shift
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
    ${FUZZ_FLAGS:-} "$@" -o "$out"
}

fuzz_run() {
  bin=$1
  shift
  # shellcheck disable=SC2086 # $limit is two flags or one
  "$bin" $limit -timeout=10 -rss_limit_mb=2048 -jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" \
    -artifact_prefix="$build/" -print_final_stats=1 "$@"
}
