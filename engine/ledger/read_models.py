"""Keeping the read models current: caught up on demand before a read that needs them, or
all along by a background thread in long-running processes (the server, the bot).

The read models themselves (tables, catch-up, pages) are klippfisk.engine.persistence's
`JobsProjection`; this is only when and from which thread it runs.
"""

from __future__ import annotations

import logging
import threading

from eventsourcing.persistence import MapperDeserialisationError, PersistenceError

from klippfisk.engine.job import LedgerError
from klippfisk.engine.persistence import JobsProjection

__all__ = ["ReadModelUpkeep"]

log = logging.getLogger(__name__)


class ReadModelUpkeep:
    """Runs `projection.catch_up` one caller at a time, on demand or every `interval` s."""

    def __init__(self, projection: JobsProjection, interval: float) -> None:
        self._projection = projection
        self._interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def catch_up(self) -> int:
        """Apply every event stored so far; the number applied."""
        with self._lock:
            try:
                return self._projection.catch_up()
            except MapperDeserialisationError as exc:
                raise LedgerError(
                    f"The read models cannot apply a stored event ({exc}). The store may have "
                    "been altered: run `klippfisk ledger verify` to find the job."
                ) from exc

    def start(self, interval: float | None = None) -> None:
        """Catch up from a background thread until `stop` (a second start does nothing)."""
        if self._thread is not None:
            return
        pause = interval or self._interval
        self._stopping.clear()

        def loop() -> None:
            while not self._stopping.wait(pause):
                try:
                    self.catch_up()
                except PersistenceError:
                    log.exception("the read models could not catch up; retrying")

        self._thread = threading.Thread(target=loop, name="klippfisk-projector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None
