#!/usr/bin/env bash
# Installs the pinned provider CLIs that the end-to-end tests run for real:
#   @openai/codex@0.169.0 and @anthropic-ai/claude-code@2.1.328
# into $REPO/.deps/npm (git-ignored). Idempotent: a package already present at its pinned version is left alone.
# Prints where the binaries are, one "name=path" a line (the e2e tests look in the same place).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$REPO/.deps/npm"
PACKAGES=("@openai/codex@0.169.0" "@anthropic-ai/claude-code@2.1.328")

installed_version() {  # $1 = package name; prints the installed version or nothing
  local manifest="$PREFIX/node_modules/$1/package.json"
  [[ -f "$manifest" ]] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest"
}

command -v npm >/dev/null || { echo "npm-deps: npm not found on PATH (Node 20 + npm needed)" >&2; exit 1; }
mkdir -p "$PREFIX"

missing=()
for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"
  want="${spec##*@}"
  have="$(installed_version "$name")"
  if [[ "$have" != "$want" ]]; then
    missing+=("$spec")
  fi
done

if ((${#missing[@]})); then
  echo "npm-deps: installing ${missing[*]} into $PREFIX" >&2
  npm install --no-audit --no-fund --prefix "$PREFIX" "${missing[@]}" >&2
fi

# Check that what we asked for is what we got, and that the launchers exist.
status=0
for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"
  want="${spec##*@}"
  have="$(installed_version "$name")"
  if [[ "$have" != "$want" ]]; then
    echo "npm-deps: $name is at '${have:-absent}', wanted $want" >&2
    status=1
  fi
done
for bin in codex claude; do
  path="$PREFIX/node_modules/.bin/$bin"
  if [[ -x "$path" ]]; then
    echo "$bin=$path"
  else
    echo "npm-deps: $path missing" >&2
    status=1
  fi
done
exit $status
