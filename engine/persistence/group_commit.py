"""Group commit: writes from many threads that arrive together share one transaction.

A commit costs far more than the rows in it (a round trip, a lock, on PostgreSQL a table
lock, with synchronous=FULL an fsync), and the runner and the HTTP server record events from
many threads at once, each command a few rows. So the first writer to arrive becomes the
leader and writes, in one transaction, its own rows and every write that queued up while
the previous transaction was in flight; then it hands the lead to the oldest writer still
waiting. By default nobody waits for a timer: a lone writer commits at once, exactly as
before, and groups grow as writers pile up behind a busy store. An optional window lets a
leader, while the last transaction was shared, wait that long for as many writers to join
(PostgreSQL's commit_delay idea): larger groups when each commit is an fsync, at the cost of
that much latency. A lone writer never waits (after a busy spell, at most once).

Each caller still returns only once the transaction holding its rows has committed, and gets
its own outcome: if the group's transaction fails (one member's stale write breaks the
unique (job, version) key, which is how optimistic concurrency is enforced), every member is
written again on its own, so only the stale one sees the IntegrityError.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GroupCommit"]


@dataclass
class _Write:
    """One caller's rows, and what became of them."""

    rows: Sequence[Any]
    # Only a writer that has to wait gets one: a lock taken at once, which the waiter then
    # blocks on until someone releases it. A bare lock is the cheapest wake-up there is
    # (an Event is a Condition, a lock and a list in Python), and a command waits once.
    wake: Any = None
    done: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Serialises `insert(rows)` calls from many threads into shared transactions.

    `insert` writes a list of rows in one transaction (the recorder's `insert_events`);
    `max_rows` caps one group, so a pile-up cannot make one transaction huge.
    """

    def __init__(
        self,
        insert: Callable[[Sequence[Any]], Any],
        *,
        window_seconds: float = 0.0,
        max_rows: int = 2000,
    ) -> None:
        self._insert = insert
        self._window = window_seconds
        self._max = max_rows
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._expected = 1  # the last group's size: how many writers are likely to come
        self._queue: deque[_Write] = deque()
        self._busy = False  # a leader is writing; newcomers queue behind it
        self.groups = 0  # transactions written, and the writes they carried (for the bench)
        self.writes = 0

    def write(self, rows: Sequence[Any]) -> None:
        """Store `rows` in one transaction, possibly shared with other callers' rows, and
        return once it has committed; raise what storing them raised."""
        ticket = _Write(rows)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._busy
            self._busy = True
            if not lead:
                ticket.wake = threading.Lock()
                ticket.wake.acquire()
                if self._window > 0:
                    self._arrived.notify()
        if ticket.wake is not None:
            ticket.wake.acquire()  # released when written, or when handed the lead
        if not ticket.done:
            self._lead()
        if ticket.error is not None:
            raise ticket.error

    def _lead(self) -> None:
        """Write one group (which holds the leader's own ticket), then pass the lead on."""
        try:
            with self._lock:
                self._await_company()
                group, size = [], 0
                while self._queue and (not group or size + len(self._queue[0].rows) <= self._max):
                    ticket = self._queue.popleft()
                    group.append(ticket)
                    size += len(ticket.rows)
                self._expected = len(group)
            self._commit(group)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].wake.release()  # queued, so waiting
                else:
                    self._busy = False

    def _await_company(self) -> None:
        """While other writers are about (the last group was shared), give them up to the
        window to join before writing; a lone writer never waits. Called holding the lock."""
        if self._window <= 0 or self._expected < 2:
            return
        deadline = time.monotonic() + self._window
        while len(self._queue) < self._expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.wait(remaining)

    def _commit(self, group: list[_Write]) -> None:
        finished = False
        try:
            try:
                self._insert([row for ticket in group for row in ticket.rows])
            except Exception as exc:
                if len(group) == 1:
                    group[0].error = exc
                else:  # find out whose rows were at fault: each member on its own
                    for ticket in group:
                        ticket.error = self._insert_alone(ticket)
            finished = True
            self.groups += 1
            self.writes += len(group)
        finally:
            for ticket in group:  # an interrupted leader must not leave anyone waiting
                if not finished and ticket.error is None:
                    ticket.error = RuntimeError(
                        "The write was interrupted before it committed. Run the command again."
                    )
                ticket.done = True
                if ticket.wake is not None:
                    ticket.wake.release()

    def _insert_alone(self, ticket: _Write) -> Exception | None:
        try:
            self._insert(ticket.rows)
        except Exception as exc:
            return exc
        return None
