"""Honouring the server's rate limits: slow down before a 429, back off after one.

Bluesky's services announce their budget in `ratelimit-remaining` / `ratelimit-reset`
headers on every response; the SDK raises `RateLimitExceededError` on a 429, carrying
`retry-after` or the reset time. The throttle watches the headers (an httpx response hook
on the SDK's HTTP client) and waits out an exhausted window before the next call, and on a
429 or a transient network error retries with exponential backoff, honouring the server's
wait when it gives one. Every wait is capped so one bad header cannot park the bot for a day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from atproto import exceptions

__all__ = ["ServerThrottle"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServerThrottle:
    """Wraps SDK calls with the server's rate limits and retries for transient failures."""

    def __init__(
        self,
        *,
        retries: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self._sleep = sleep
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def observe(self, response: httpx.Response) -> None:
        """httpx response hook: remember when an exhausted window reopens."""
        remaining = response.headers.get("ratelimit-remaining", "")
        reset = response.headers.get("ratelimit-reset", "")
        if remaining.strip() == "0" and reset.strip().isdigit():
            with self._lock:
                self._resume_at = max(self._resume_at, float(reset))

    def _wait_for_window(self) -> None:
        with self._lock:
            delay = min(self._resume_at - self._clock(), self.max_delay)
        if delay > 0:
            log.info("server rate limit exhausted; waiting %.1f s", delay)
            self._sleep(delay)

    def _delay_after(self, error: Exception, attempt: int) -> float:
        backoff = self.base_delay * 2**attempt
        if isinstance(error, exceptions.RateLimitExceededError):
            told = error.retry_after
            if told is None and error.reset_at is not None:
                told = error.reset_at.timestamp() - self._clock()
            if told is not None:
                backoff = max(told, backoff)
        return min(backoff, self.max_delay)

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """fn(*args, **kwargs), waiting for the window and retrying 429s / network errors."""
        attempt = 0
        while True:
            self._wait_for_window()
            try:
                return fn(*args, **kwargs)
            except (exceptions.RateLimitExceededError, exceptions.NetworkError) as error:
                if attempt >= self.retries:
                    raise
                delay = self._delay_after(error, attempt)
                log.warning("%s from the server; retrying in %.1f s", type(error).__name__, delay)
                self._sleep(delay)
                attempt += 1
