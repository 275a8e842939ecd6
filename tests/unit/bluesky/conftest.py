"""Fixtures for the bot's tests: a real SQLite ledger, and a loopback stand-in for its PDS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klippfisk.engine import Ledger
from klippfisk.engine.settings import LedgerSettings, Settings
from tests.unit.bluesky.standin_pds import StandInServer


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    settings = Settings(data_dir=tmp_path, ledger=LedgerSettings(path=tmp_path / "ledger.db"))
    with Ledger.open(settings) as opened:
        yield opened


@pytest.fixture
def pds() -> Iterator[StandInServer]:
    server = StandInServer()
    yield server
    server.close()
