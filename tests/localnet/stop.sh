#!/usr/bin/env bash
# Stops what start.sh started: signals the namespace's first process (by its pid), which
# closes the network and PostgreSQL in order; waits until it is gone.
set -euo pipefail
RUN=${KLIPPFISK_LOCALNET_RUN:-/tmp/klippfisk-localnet}
[[ -f $RUN/netns.pid ]] || exit 0
pid=$(cat "$RUN/netns.pid")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && { echo "the local network (pid $pid) did not stop" >&2; exit 1; }
fi
rm -f "$RUN/netns.pid" "$RUN/ready.json"
