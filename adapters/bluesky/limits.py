"""Limits on what people can make the bot do: mentions per author per window.

A sliding window per author DID: up to `limit` mentions within `window` seconds are
accepted; the first one over gets a reply saying so (`refuse`), the rest of a flood get no
reply at all, so that a flood cannot turn the bot into a flood of its own. The clock is
injected so the rule can be tested without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum

__all__ = ["AuthorLimiter", "Verdict"]


class Verdict(Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"  # over the limit: say so once
    IGNORE = "ignore"  # still over the limit: stay silent


class AuthorLimiter:
    """Per-author sliding-window rate limit; safe to call from several threads."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._accepted: dict[str, deque[float]] = {}
        self._warned_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, author: str) -> Verdict:
        """Record one mention by `author` and say what to do with it."""
        now = self._clock()
        with self._lock:
            times = self._accepted.setdefault(author, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return Verdict.ACCEPT
            if self._warned_until.get(author, 0.0) > now:
                return Verdict.IGNORE
            self._warned_until[author] = times[0] + self.window
            return Verdict.REFUSE

    def retry_in(self, author: str) -> float:
        """Seconds until `author` may send another accepted mention."""
        with self._lock:
            times = self._accepted.get(author)
            if not times or len(times) < self.limit:
                return 0.0
            return max(times[0] + self.window - self._clock(), 0.0)
