"""Cutting a run short: on its deadline or when the runner asks, whichever comes first.

Both the wasm engine (a blocking call into wasmtime) and the host-process engine need
someone else to watch the clock and the cancel flag and then pull the plug; the plug
(`kill`) is supplied by the engine. One watcher thread per process serves every running
execution: starting and joining a thread per run would cost more than a small job itself.
Each watchdog reads its deadline from the clock it is given, so a test can move time instead
of waiting for it; the watcher still looks every tick of real time, for stops and for a clock
moved by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from klippfisk.engine.clock import Clock
from klippfisk.engine.executors.base import ExecutionOutcome
from klippfisk.engine.results import ResultsDir, summarise

__all__ = ["Watchdog"]

# How often running executions' cancel flags are looked at; bounds the delay of a stop.
TICK_SECONDS = 0.05


class Watchdog:
    """Calls `kill` once, when `timeout_seconds` pass on `clock` or `cancel` is set; use as a
    context."""

    def __init__(
        self,
        timeout_seconds: float,
        cancel: threading.Event,
        kill: Callable[[], None],
        clock: Clock,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.cancel = cancel
        self.kill = kill
        self.clock = clock
        self.timed_out = False
        self.cancelled = False
        self.deadline = 0.0
        self.done = False
        self.lock = threading.Lock()

    def __enter__(self) -> Watchdog:
        self.deadline = self.clock.monotonic() + self.timeout_seconds
        _watcher().add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self.lock:  # after this, kill() can no longer hit whatever reuses the pid
            self.done = True
        _watcher().remove(self)

    @property
    def fired(self) -> bool:
        return self.timed_out or self.cancelled

    def cut_short(
        self, results: ResultsDir, notes: list[str], killed: str = ""
    ) -> ExecutionOutcome | None:
        """The outcome of a run this watchdog cut short (None if it did not): every engine
        words a stop and a timeout alike, adding what `killed` says was done about it."""
        if self.cancelled:
            return summarise(results, cancelled=True, error="stopped while running", notes=notes)
        if self.timed_out:
            error = f"execution timed out after {self.timeout_seconds:g}s" + (
                f"; {killed}" if killed else ""
            )
            return summarise(results, timed_out=True, error=error, notes=notes)
        return None

    def left(self) -> float:
        """Seconds until the deadline on this watchdog's clock (negative once past)."""
        return self.deadline - self.clock.monotonic()

    def check(self) -> bool:
        """Fire if due; True when this watchdog needs no more looking after.

        Under the lock, so a run that has just ended is never reported as cut short.
        """
        with self.lock:
            if self.done:
                return True
            if self.cancel.is_set():
                self.cancelled = True
            elif self.left() <= 0:
                self.timed_out = True
            else:
                return False
            self.kill()
            return True


class _Watcher:
    """The one thread that checks every active Watchdog each tick."""

    def __init__(self) -> None:
        self.active: set[Watchdog] = set()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._loop, name="klippfisk-watchdog", daemon=True)
        self.thread.start()

    def add(self, dog: Watchdog) -> None:
        with self.changed:
            self.active.add(dog)
            self.changed.notify()

    def remove(self, dog: Watchdog) -> None:
        with self.changed:
            self.active.discard(dog)

    def _loop(self) -> None:
        while True:
            with self.changed:
                while not self.active:
                    self.changed.wait()
                dogs = list(self.active)
                soonest = min(d.left() for d in dogs)
                self.changed.wait(max(0.0, min(TICK_SECONDS, soonest)))
            for dog in dogs:
                if dog.check():
                    self.remove(dog)


_instance: _Watcher | None = None
_instance_lock = threading.Lock()


def _watcher() -> _Watcher:
    """The process's watcher, started on first use (never at import)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = _Watcher()
        return _instance
