"""Suite-wide test settings.

No test may send traffic anywhere but loopback: every in-process socket connection to another
address fails the test before a packet leaves (the guards under test refuse such addresses; if
one ever regressed, this keeps it off any real network). Hypothesis runs a lean profile by
default (two cores shared by the whole suite); HYPOTHESIS_PROFILE=thorough asks for more
examples. Every test gets its own data directory so nothing is written to the user's ledger.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# The local Bluesky network fixture (`localnet`) for the bot's end-to-end tests.
pytest_plugins = ["tests.localnet.plugin"]

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def real_docker_host() -> str:
    """The address of a real Docker daemon (KLIPPFISK_TEST_DOCKER_HOST, which .ci/docker.sh
    exports), checked to answer. Without one the test skips with the reason; on CI (CI=true)
    it fails instead, so a broken daemon there cannot pass as a skip."""
    host = os.environ.get("KLIPPFISK_TEST_DOCKER_HOST", "")
    problem = "" if host.startswith("unix://") else "KLIPPFISK_TEST_DOCKER_HOST is not set"
    if not problem:
        problem = _docker_problem(host.removeprefix("unix://"))
    if problem:
        message = f"no real Docker daemon ({problem}); run `source .ci/docker.sh` first"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return host


def _docker_problem(socket_path: str) -> str:
    """Why the daemon on `socket_path` does not answer `GET /_ping` with OK ("" if it does)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(4096)
    except OSError as exc:
        return f"{socket_path}: {exc.strerror or exc}"
    return "" if answer.startswith(b"HTTP/1.") and b" 200 " in answer[:20] else "no OK to /_ping"


@pytest.fixture(scope="session")
def wasm_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-module cache for the session, under a fixed name the CLI tests share, so
    python.wasm (26 MB) is compiled once, not per test."""
    path = tmp_path_factory.getbasetemp() / "wasm-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point KLIPPFISK_DATA_DIR at a fresh directory for each test, with none of the
    user's other KLIPPFISK_* settings (an exported KLIPPFISK_LEDGER__PATH would send every
    test's ledger there); the suite's own KLIPPFISK_TEST_* variables stay."""
    for name in list(os.environ):
        if name.startswith("KLIPPFISK_") and not name.startswith("KLIPPFISK_TEST_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path_factory.mktemp("klippfisk-data")
    monkeypatch.setenv("KLIPPFISK_DATA_DIR", str(data_dir))
    yield data_dir


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_loopback(address: Any) -> None:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like stay on this machine
        return
    host = str(address[0])
    if host == "localhost":
        return
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise AssertionError(f"a test tried to connect to {host!r} by name") from None
    mapped = getattr(ip, "ipv4_mapped", None)
    if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
        raise AssertionError(f"a test tried to connect to {host}, which is not loopback")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_loopback(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_loopback(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any in-process connection to an address outside 127.0.0.0/8 and ::1."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
