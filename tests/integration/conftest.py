"""Fixtures of the runner tests: the ledger on the module's `settings`, a clock moved by hand,
and runners that keep time on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from klippfisk.engine import Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
from tests.unit.manual_clock import ManualClock


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    """A ledger opened on the `settings` the test module defines."""
    with Ledger.open(settings) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    """The time of runners made by `on_clock`: it passes only when the test moves it."""
    return ManualClock()


@pytest.fixture
def on_clock(ledger: Ledger, clock: ManualClock) -> Callable[[Settings], Runner]:
    """Makes a runner on the test's `ledger` whose deadlines, and whose executors'
    deadlines, are kept on `clock`."""

    def make(settings: Settings) -> Runner:
        return Runner(ledger, default_registry(settings, clock=clock), settings, clock=clock)

    return make
