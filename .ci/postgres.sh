# shellcheck shell=bash
# Sourced by .ci/run: bring up a throw-away PostgreSQL on loopback for the ledger's PostgreSQL
# tests, and export the POSTGRES_* settings (eventsourcing's own names) those tests read.
#
# Idempotent: installs the Debian package only when no server binaries exist, reuses a
# cluster that is already running, and never stops the script that sources it. If anything
# goes wrong it says so and exports nothing; the PostgreSQL tests then skip locally and fail
# with a clear message on CI (CI=true), so a broken server cannot pass unnoticed there.
# Each test makes a schema of its own in the database, so test modules never share tables.
#
# Knobs: KLIPPFISK_PG_PORT (54329), KLIPPFISK_PG_DIR (/tmp/klippfisk-pg), KLIPPFISK_PG_DB.

_klippfisk_pg_port="${KLIPPFISK_PG_PORT:-54329}"
_klippfisk_pg_dir="${KLIPPFISK_PG_DIR:-/tmp/klippfisk-pg}"
_klippfisk_pg_db="${KLIPPFISK_PG_DB:-klippfisk_test}"

_klippfisk_pg_setup() (
  set +e
  as_postgres() {
    if [[ "$(id -u)" == 0 ]]; then
      runuser -u postgres -- "$@"
    elif sudo -n true 2>/dev/null; then
      sudo -n -u postgres -- "$@"
    else
      "$@"  # not root and no sudo: run the cluster as ourselves
    fi
  }
  bindir() { find /usr/lib/postgresql -maxdepth 3 -name pg_ctl -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname; }

  bin="$(bindir)"
  if [[ -z "$bin" ]]; then
    echo "postgres.sh: installing PostgreSQL from Debian" >&2
    if [[ "$(id -u)" == 0 ]]; then apt=(apt-get); else apt=(sudo -n apt-get); fi
    "${apt[@]}" update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq postgresql >/dev/null
    bin="$(bindir)"
    [[ -n "$bin" ]] || { echo "postgres.sh: PostgreSQL could not be installed" >&2; exit 1; }
  fi

  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$_klippfisk_pg_port"; then
    mkdir -p "$_klippfisk_pg_dir"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$_klippfisk_pg_dir"
    chmod 700 "$_klippfisk_pg_dir"
    if [[ ! -f "$_klippfisk_pg_dir/PG_VERSION" ]]; then
      as_postgres "$bin/initdb" -D "$_klippfisk_pg_dir" -U postgres -A trust >/dev/null ||
        { echo "postgres.sh: initdb failed" >&2; exit 1; }
    fi
    # -F: fsync off (throw-away data); loopback only; the socket lives in the data dir.
    as_postgres "$bin/pg_ctl" -D "$_klippfisk_pg_dir" -l "$_klippfisk_pg_dir/server.log" -w -t 60 \
      -o "-F -h 127.0.0.1 -p $_klippfisk_pg_port -k $_klippfisk_pg_dir -c max_connections=200" \
      start >/dev/null ||
      { echo "postgres.sh: the server did not start; see $_klippfisk_pg_dir/server.log" >&2; exit 1; }
  fi

  for _ in $(seq 1 60); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$_klippfisk_pg_port" && break
    sleep 0.5
  done
  psql=("$bin/psql" -h 127.0.0.1 -p "$_klippfisk_pg_port" -U postgres -d postgres -tAq)
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$_klippfisk_pg_db'")" != 1 ]]; then
    "${psql[@]}" -c "CREATE DATABASE $_klippfisk_pg_db" ||
      { echo "postgres.sh: could not create database $_klippfisk_pg_db" >&2; exit 1; }
  fi
)

if _klippfisk_pg_setup; then
  export POSTGRES_HOST=127.0.0.1
  export POSTGRES_PORT="$_klippfisk_pg_port"
  export POSTGRES_USER=postgres
  export POSTGRES_PASSWORD=""
  export POSTGRES_DBNAME="$_klippfisk_pg_db"
  echo "postgres.sh: PostgreSQL ready on 127.0.0.1:$_klippfisk_pg_port (database $_klippfisk_pg_db)" >&2
else
  echo "postgres.sh: no PostgreSQL; the ledger's PostgreSQL tests will skip (fail on CI)" >&2
fi
unset -f _klippfisk_pg_setup
