#!/usr/bin/env bash
# Metering benchmark, side by side with ccusage (npm, version 20) and `cat`.
#
#   tools/bench-meter.sh [--codex-mb 180] [--claude-mb 60] [--dir DIR] [--warm 2000]
#
# Builds bench_meter_ingest (Release) in build-bench/, installs ccusage@20.0.24
# into .deps/npm (20.0.24: the latest 20.x with a linux-x64 native binary),
# synthesises a year of Codex and Claude logs (or reuses DIR), then for each
# provider times, on the same files: `cat` (the floor), dormant's cold ingestion
# into a fresh ledger, and `ccusage <provider> daily --json --offline`; prints
# wall time, MB/s, peak RSS and both tools' token totals.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$REPO/.deps/npm"
BUILD="${BUILD:-$REPO/build-bench}"
CCUSAGE_VERSION=20.0.24
CODEX_MB=180
CLAUDE_MB=60
WARM=2000
DIR=""
while (($#)); do
  case "$1" in
    --codex-mb) CODEX_MB="$2"; shift 2 ;;
    --claude-mb) CLAUDE_MB="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --warm) WARM="$2"; shift 2 ;;
    *) echo "usage: $0 [--codex-mb N] [--claude-mb N] [--dir DIR] [--warm N]" >&2; exit 2 ;;
  esac
done

# --- build (Release; GCC 12 gives a false -Wrestrict in std::string at -O2/-O3)
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-Wno-restrict" >/dev/null
cmake --build "$BUILD" -j2 --target bench_meter_ingest >/dev/null
BENCH="$BUILD/bench/bench_meter_ingest"

# --- ccusage, pinned
have="$(node -e 'try{process.stdout.write(require(process.argv[1]).version)}catch(e){}' \
        "$PREFIX/node_modules/ccusage/package.json" 2>/dev/null || true)"
if [[ "$have" != "$CCUSAGE_VERSION" ]]; then
  echo "bench-meter: installing ccusage@$CCUSAGE_VERSION into $PREFIX" >&2
  mkdir -p "$PREFIX"
  npm install --no-audit --no-fund --prefix "$PREFIX" "ccusage@$CCUSAGE_VERSION" >&2
fi
CCUSAGE="$PREFIX/node_modules/.bin/ccusage"

# --- data and dormant's own figures (cold + warm)
KEEP=1
if [[ -z "$DIR" ]]; then
  DIR="$(mktemp -d /tmp/dormant-bench-XXXXXX)"
  KEEP=0
fi
"$BENCH" --dir "$DIR" --codex-mb "$CODEX_MB" --claude-mb "$CLAUDE_MB" --warm "$WARM" --keep

# --- side by side, timed from outside the same way for all three
now() { date +%s.%N; }
mb() { find "$1" -name '*.jsonl' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f", s/1e6}'; }
rss() { awk '{printf "%.1f", $1/1024}' "$1"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
RUNS=5

side_by_side() {  # $1 = codex|claude, $2 = log root
  local kind="$1" root="$2" size t0 t1 cat_s dormant_s cc_s i
  local -a cats=() ours=() theirs=()
  size="$(mb "$root")"
  find "$root" -name '*.jsonl' -print0 | xargs -0 cat >/dev/null  # warm the page cache
  # Timing on this kind of machine varies by a quarter run to run: each tool
  # runs $RUNS times, in turn, and the medians are compared.
  for ((i = 0; i < RUNS; i++)); do
    t0=$(now); find "$root" -name '*.jsonl' -print0 | xargs -0 cat >/dev/null; t1=$(now)
    cats+=("$(echo "$t1 - $t0" | bc -l)")

    rm -f "$DIR/side.sqlite" "$DIR/side.sqlite-wal" "$DIR/side.sqlite-shm"
    t0=$(now)
    /usr/bin/time -f %M -o "$DIR/dormant.rss" "$BENCH" --ingest-child "$DIR/side.sqlite" "$kind" "$root" \
      >"$DIR/dormant.json"
    t1=$(now)
    ours+=("$(echo "$t1 - $t0" | bc -l)")

    t0=$(now)
    HOME="$DIR/home" CODEX_HOME="$DIR/codex" CLAUDE_CONFIG_DIR="$DIR/home/.claude" TZ=UTC \
      /usr/bin/time -f %M -o "$DIR/ccusage.rss" "$CCUSAGE" "$kind" daily --json --offline >"$DIR/ccusage.json"
    t1=$(now)
    theirs+=("$(echo "$t1 - $t0" | bc -l)")
  done
  cat_s=$(printf '%s\n' "${cats[@]}" | median)
  dormant_s=$(printf '%s\n' "${ours[@]}" | median)
  cc_s=$(printf '%s\n' "${theirs[@]}" | median)
  echo "$kind: medians of $RUNS runs; cat ${cats[*]}; dormant ${ours[*]}; ccusage ${theirs[*]}"

  /usr/bin/python3 - "$kind" "$size" "$cat_s" "$dormant_s" "$cc_s" "$DIR/dormant.json" "$DIR/ccusage.json" \
    "$(rss "$DIR/dormant.rss")" "$(rss "$DIR/ccusage.rss")" <<'EOF'
import json, sys
kind, size, cat_s, d_s, c_s, d_file, c_file, d_rss, c_rss = sys.argv[1:]
size, cat_s, d_s, c_s = float(size), float(cat_s), float(d_s), float(c_s)
d = json.load(open(d_file))
c = json.load(open(c_file))["totals"]
print(f"{kind}: {size:.1f} MB (timed from outside, process start included; medians)")
print(f"  cat      {cat_s:7.3f} s  {size/cat_s:6.0f} MB/s")
print(f"  dormant  {d_s:7.3f} s  {size/d_s:6.0f} MB/s  peak RSS {d_rss} MiB  dormant/cat {d_s/cat_s:.2f}")
print(f"  ccusage  {c_s:7.3f} s  {size/c_s:6.0f} MB/s  peak RSS {c_rss} MiB  ccusage/dormant {c_s/d_s:.2f}")
if kind == "codex":
    # ccusage's inputTokens leave the cached part out; dormant's include it.
    dt = dict(input_uncached=d["input"] - d["cached"], cached=d["cached"], output=d["output"],
              reasoning=d["reasoning"], total=d["total"])
    ct = dict(input_uncached=c["inputTokens"], cached=c["cacheReadTokens"], output=c["outputTokens"],
              reasoning=c.get("reasoningOutputTokens", 0), total=c["totalTokens"])
else:
    dt = dict(input=d["input"], cache_write=d["cache_write"], cache_read=d["cache_read"],
              output=d["output"], total=d["total"], usd=round(d["usd"], 2))
    ct = dict(input=c["inputTokens"], cache_write=c["cacheCreationTokens"],
              cache_read=c["cacheReadTokens"], output=c["outputTokens"], total=c["totalTokens"],
              usd=round(c.get("totalCost", 0), 2))
print(f"  totals dormant {dt}")
print(f"  totals ccusage {ct}  [{'same' if {k: v for k, v in dt.items() if k != 'usd'} == {k: v for k, v in ct.items() if k != 'usd'} else 'DIFFERENT'}]")
EOF
}

side_by_side codex "$DIR/codex/sessions"
side_by_side claude "$DIR/home/.claude/projects"
if ((KEEP == 0)); then rm -rf "$DIR"; fi
