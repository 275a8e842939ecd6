"""A clock tests move by hand, for code that takes its time source as an argument: limits
and refills are checked at exact instants, and no test sleeps for real."""

from __future__ import annotations


class ManualClock:
    """Seconds that pass only when the test says so (`clock.now += 5`)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
