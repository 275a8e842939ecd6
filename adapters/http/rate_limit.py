"""Token buckets, one per caller, in memory that stays bounded however many callers come.

A bucket refills at `rate` per second up to `burst`. One left alone until it is full again
is exactly what a new bucket would be, so it can be forgotten without changing any answer:
buckets are kept in order of last use, and each take first drops the idle ones at the
front. Every bucket kept was therefore used within the last `burst / rate` seconds, which
bounds their number by the callers of that window; `max_callers` bounds it outright when
a flood of distinct addresses fills even that window (the longest idle is forgotten first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Buckets"]


class Buckets:
    """Token buckets keyed by caller (an API key's name, or a client address)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst = rate, float(burst)
        self.max_callers = max_callers
        self.clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # level, last use; oldest use first

    def __len__(self) -> int:
        """How many callers are remembered now."""
        return len(self._state)

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds to wait before trying again."""
        now = self.clock()
        self._forget_idle(now)
        level, last = self._state.pop(key, (self.burst, now))  # re-added last: newest use
        level = min(self.burst, level + (now - last) * self.rate)
        if level < 1.0:
            self._state[key] = (level, now)
            return (1.0 - level) / self.rate
        self._state[key] = (level - 1.0, now)
        while len(self._state) > self.max_callers:
            del self._state[next(iter(self._state))]
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets at the front that have refilled (see the module doc)."""
        while self._state:
            key = next(iter(self._state))
            level, last = self._state[key]
            if level + (now - last) * self.rate < self.burst:
                return
            del self._state[key]
