"""One thread that waits on every open job at once, so slow jobs hold no worker.

A `job run` whose job outlives the first wait gets its follow-up reply from a worker, which
then hands the job here and returns to the pool: with one worker per slow job, `max_concurrent`
slow jobs would leave no one to answer even `help`. The watcher waits on the oldest open job
(the ledger wakes it on any change made in this process), looks at the others only when the
ledger's position moved, and hands each job that ended back to `on_end` (which queues the
final reply). Open jobs live only in memory: after a restart the mention is still pending
and the normal path finds its job again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from klippfisk.engine import JobView, Ledger

__all__ = ["JobWatcher"]

log = logging.getLogger(__name__)

T = TypeVar("T")

PAUSE_SECONDS = 0.5


class JobWatcher(Generic[T]):
    """Calls `on_end(job, token)` once for every watched job when it reaches a final state."""

    def __init__(
        self, ledger: Ledger, on_end: Callable[[JobView, T], None], stopping: threading.Event
    ) -> None:
        self.ledger = ledger
        self.on_end = on_end
        self.stopping = stopping
        self._open: dict[str, T] = {}
        self._added = False  # a job came in since the last look: look even if nothing moved
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="bot-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        """Wait for the loop to end (it ends soon after `stopping` is set)."""
        if self._thread.is_alive():
            self._thread.join()

    def watch(self, job_id: str, token: T) -> None:
        with self._lock:
            self._open[job_id] = token
            self._added = True

    def watching(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def _loop(self) -> None:
        seen = -1
        while not self.stopping.is_set():
            try:
                seen = self._check(seen)
            except Exception:  # a database hiccup must not end the watch
                log.exception("checking open jobs failed; trying again")
                self.stopping.wait(PAUSE_SECONDS)

    def _check(self, seen: int) -> int:
        """Hand over jobs that ended; return the ledger position they were judged at."""
        with self._lock:
            oldest = next(iter(self._open), None)
        if oldest is None:
            self.stopping.wait(PAUSE_SECONDS)
            return seen
        self.ledger.wait(oldest, timeout=PAUSE_SECONDS)
        position = self.ledger.position()
        with self._lock:
            added, self._added = self._added, False
            open_now = list(self._open.items())
        if position == seen and not added:
            return seen
        for job_id, token in open_now:
            job = self.ledger.get(job_id)
            if job.terminal:
                with self._lock:
                    self._open.pop(job_id, None)
                self.on_end(job, token)
        return position
