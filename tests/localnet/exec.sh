#!/usr/bin/env bash
# Runs a command inside the local network's namespace (where localhost:2583 is the PDS).
#   tests/localnet/exec.sh python3 -m klippfisk bot
set -euo pipefail
RUN=${KLIPPFISK_LOCALNET_RUN:-/tmp/klippfisk-localnet}
pid=$(cat "$RUN/netns.pid" 2>/dev/null) || { echo "the local network is not running; start.sh first" >&2; exit 1; }
exec nsenter --net="/proc/$pid/ns/net" "$@"
