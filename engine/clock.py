"""The clock that deadlines are read from: the `Clock` protocol and the real one.

Code that enforces a deadline (the runner's queue and total timeouts, its recovery sweeps,
the executors' execution timeouts) takes a `Clock` instead of calling `time` itself. In
production that is `SYSTEM_CLOCK`; a test hands in a clock it moves by hand, so it reaches a
timeout at once instead of sleeping until it passes.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Where code that keeps deadlines reads the time, and how it pauses between looks."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for spans measured in-process
        (an execution's deadline, the next recovery sweep)."""
        ...

    def utc_now(self) -> datetime:
        """The date and time (aware, UTC): for deadlines counted from a time the ledger
        stamped, such as a job's submission."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Pause until `event` is set or `seconds` pass; whether `event` is set.

        It may return early (a clock moved by hand does, when it is moved): callers look at
        the time again after every wait rather than assume how much of it passed."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, the system's UTC time, `Event.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def utc_now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)


SYSTEM_CLOCK = SystemClock()
