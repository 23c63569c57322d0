#!/bin/bash
# One command per set-up job on a fresh Debian 12 machine:
#   tools/setup.sh demo   install what is needed, build, run the demo
#   tools/setup.sh test   install what is needed (and the pinned provider CLIs), build, run every test
# Run as root or with sudo available. BUILD_DIR (default build) and JOBS may be set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
jobs=${JOBS:-$(nproc)}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

packages=(
  build-essential cmake pkg-config
  libuv1-dev libseccomp-dev libtomlplusplus-dev libspdlog-dev libgtest-dev nlohmann-json3-dev
  libsqlite3-dev libsystemd-dev libx11-dev libxss-dev libxext-dev libwayland-dev wayland-protocols
)
test_packages=(xvfb xdotool x11-xserver-utils dbus python3 python3-dbusmock clang libclang-rt-14-dev chromium util-linux)

install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  command -v npm >/dev/null || missing+=(nodejs npm)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$jobs"
}

case "${1:-}" in
  demo)
    install "${packages[@]}"
    build
    exec "$here/demo/run.sh" "$build/dormant"
    ;;
  test)
    install "${packages[@]}" "${test_packages[@]}"
    "$here/tools/npm-deps.sh"
    build
    cd "$build"
    ctest --output-on-failure -j "$jobs" --timeout 300
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
