#!/bin/sh
# The demo app: like a desktop coding app, it keeps a provider subprocess alive.
here=$(dirname "$0")
echo "    [app pid $$] starting my provider: codex app-server"
"$here/bin/codex" app-server &
trap 'echo "    [app pid $$] told to quit"; kill $! 2>/dev/null; exit 0' TERM INT
while :; do sleep 1; done
