# shellcheck shell=bash
# Sourced by .ci/run: bring up a real Docker daemon, off the host network and with images built
# from Debian packages (no registry), for the docker executor's tests; export only
# KLIPPFISK_TEST_DOCKER_HOST, which those tests read. DOCKER_HOST stays unset, so every other
# test keeps the no-daemon path it was written for (the host-process sandbox).
#
# The daemon is Debian's dockerd (20.10, Engine API 1.41) with --bridge=none and no iptables or
# forwarding changes: containers get no network at all. Images: busybox:1.36 (busybox-static)
# and a Debian bookworm root with python3 (mmdebstrap, from the apt mirror the machine already
# uses), tagged as the images the examples and tests name (debian:bookworm, ubuntu:24.04,
# ubuntu:latest, python:3.11-slim, python:3.12-slim). Debian's docker-registry comes too: the
# pull tests start their own on loopback (tests/unit/executors/test_docker_pull.py).
#
# Idempotent: reuses a daemon that already answers on the socket and images already there.
# If anything goes wrong it says so and exports nothing; the Docker tests then skip locally and
# fail with a clear message on CI (CI=true), so a broken daemon cannot pass unnoticed there.
#
# Knobs: KLIPPFISK_DOCKER_DIR (/tmp/klippfisk-docker), KLIPPFISK_DOCKER_NO_DEBIAN=1 (busybox only).

_klippfisk_docker_dir="${KLIPPFISK_DOCKER_DIR:-/tmp/klippfisk-docker}"

_klippfisk_docker_setup() (
  set +e
  dir="$_klippfisk_docker_dir"
  export DOCKER_HOST="unix://$dir/docker.sock"
  answers() { docker version >/dev/null 2>&1; }
  debian=1
  [[ -n "${KLIPPFISK_DOCKER_NO_DEBIAN:-}" ]] && debian=""

  if ! command -v dockerd >/dev/null || ! command -v busybox >/dev/null ||
    ! command -v docker-registry >/dev/null ||
    { [[ -n "$debian" ]] && ! command -v mmdebstrap >/dev/null; }; then
    echo "docker.sh: installing dockerd and the image tools from Debian" >&2
    if [[ "$(id -u)" == 0 ]]; then apt=(apt-get); else apt=(sudo -n apt-get); fi
    "${apt[@]}" update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq docker.io busybox-static \
        docker-registry \
        ${debian:+mmdebstrap} >/dev/null 2>&1 ||
      { echo "docker.sh: dockerd could not be installed" >&2; exit 1; }
  fi

  if ! answers; then
    mkdir -p "$dir/root" "$dir/exec"
    dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
      --ip-masq=false --host="$DOCKER_HOST" --data-root="$dir/root" --exec-root="$dir/exec" \
      --pidfile="$dir/docker.pid" >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do answers && break; sleep 0.5; done
    answers || { echo "docker.sh: dockerd did not start; see $dir/dockerd.log" >&2; exit 1; }
  fi

  if ! docker image inspect busybox:1.36 >/dev/null 2>&1; then
    root="$(mktemp -d)"
    mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
    cp "$(command -v busybox)" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
      [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - busybox:1.36 >/dev/null
    rm -rf "$root"
    docker tag busybox:1.36 busybox:latest
  fi

  if [[ -n "$debian" ]] && ! docker image inspect debian:bookworm >/dev/null 2>&1; then
    mirror="$(grep -h -m1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')"
    [[ -n "$mirror" ]] || mirror="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
    mmdebstrap --quiet --variant=minbase --include=python3-minimal bookworm - "$mirror" |
      docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["/bin/bash"]' - debian:bookworm >/dev/null ||
      { echo "docker.sh: the Debian image could not be built" >&2; exit 1; }
    for tag in ubuntu:latest ubuntu:24.04 python:3.11-slim python:3.12-slim; do
      docker tag debian:bookworm "$tag"
    done
  fi

  docker run --rm --network none busybox:1.36 true ||
    { echo "docker.sh: the daemon cannot run a container; see $dir/dockerd.log" >&2; exit 1; }
  echo "docker.sh: $(docker version --format 'dockerd {{.Server.Version}}, API {{.Server.APIVersion}}') on $DOCKER_HOST" >&2
)

if _klippfisk_docker_setup; then
  export KLIPPFISK_TEST_DOCKER_HOST="unix://$_klippfisk_docker_dir/docker.sock"
else
  echo "docker.sh: no Docker daemon for the tests; they will skip (and fail on CI)" >&2
fi
