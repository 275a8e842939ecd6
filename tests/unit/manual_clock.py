"""A clock tests move by hand, for code that takes its time source as an argument: limits,
refills and deadlines are checked at exact instants, and no test sleeps for real."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

# How often a wait looks at its event: setting an Event cannot wake this clock's waiters.
EVENT_LOOK_SECONDS = 0.005


class ManualClock:
    """Seconds that pass only when the test says so (`clock.now += 5`).

    It serves both kinds of time source: called (`clock()`) or as `monotonic()`, it reads
    `now`; as `utc_now()`, the real UTC time it was made at plus what the test moved it
    by, so it compares sensibly with the times a ledger stamps. Moving it wakes whoever waits
    on it (see `wait`), so a deadline is seen the moment the test passes it.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self._now = now
        self._start = now
        self._utc_start = datetime.now(UTC)
        self._moved = threading.Condition()
        self._moves = 0

    @property
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        with self._moved:
            self._now = value
            self._moves += 1
            self._moved.notify_all()

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def utc_now(self) -> datetime:
        return self._utc_start + timedelta(seconds=self._now - self._start)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Until `event` is set, the clock is moved, or `seconds` of real time pass.

        The real-time bound keeps a caller's polling alive (a runner also polls for stops and
        new jobs, which do not wait for this clock); its deadlines, read from this clock after
        every wait, still pass only when the test moves it."""
        until = time.monotonic() + seconds
        with self._moved:
            moves = self._moves
            while not event.is_set() and self._moves == moves:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._moved.wait(min(left, EVENT_LOOK_SECONDS))
        return event.is_set()
