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
    """Point KLIPPFISK_DATA_DIR at a fresh directory for each test."""
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
