"""The write path: how one command becomes stored events, and what is kept between commands.

Commands on one job are serialised by a lock (one of a fixed set of stripes, by job id);
between processes the store's optimistic concurrency does the same (a stale write is
refused, and the command is retried once on fresh state). Jobs recently touched stay in
memory, so a command costs one insert rather than a replay; with group commit on, writes
from many threads that arrive together share one transaction, and each command still
returns only once its own events are stored. A `batch` holds a thread's commands back and
stores them all in one transaction when it ends.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent

from klippfisk.engine.ids import short_id
from klippfisk.engine.job import Job, LedgerError
from klippfisk.engine.ledger.errors import JobNotFound

__all__ = ["Decide", "WritePath"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a command decides, given the job as stored (None: no such job yet): the job with its
# new events pending (None: nothing to write) and what the command answers.
Decide = Callable[[Job | None], tuple[Job | None, T]]
_LOCK_STRIPES = 64


class WritePath:
    """The change cycle of one ledger: locks, the cache of recent jobs, batches, the write.

    `repository` and `events` are the application's (to load a job, and to bring a cached
    one up to date); `to_stored_event(event, body_json)` is the mapper's; `write` stores a
    list of events in one transaction (shared with other threads' under group commit);
    `has_events` probes whether a job exists.
    """

    def __init__(
        self,
        *,
        repository: Any,
        events: Any,
        to_stored_event: Callable[[Any, str | None], StoredEvent],
        write: Callable[[Sequence[StoredEvent]], Any],
        has_events: Callable[[str], bool],
        cache_size: int,
    ) -> None:
        self._repository = repository
        self._events = events
        self._to_stored_event = to_stored_event
        self._write = write
        self._has_events = has_events
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Job] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._locks = [threading.RLock() for _ in range(_LOCK_STRIPES)]
        self._batches = threading.local()
        # Notified after every stored change, so waiters in this process wake at once.
        self.changed = threading.Condition()

    def command(self, job_id: str, command: Callable[[Job], T]) -> T:
        """Run `command` on an existing job and store what it triggered."""

        def decide(job: Job | None) -> tuple[Job | None, T]:
            if job is None:
                raise JobNotFound.for_id(job_id)
            return job, command(job)

        return self.change(job_id, decide, may_create=False)

    def change(self, job_id: str, decide: Decide[T], *, may_create: bool) -> T:
        """Run one command under the job's lock; on a stale write, retry once on fresh state."""
        unit: dict[str, Job] | None = getattr(self._batches, "unit", None)
        if unit is not None:
            return self._change_in_batch(unit, job_id, decide)
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            for attempt in (1, 2):
                current = self._cached(job_id) if attempt == 1 else None
                from_cache = current is not None
                # A job that may be new is first assumed new: if it exists after all, the
                # insert of its first event conflicts and the second attempt loads it.
                if current is None and not (may_create and attempt == 1):
                    current = self._load(job_id)
                try:
                    job, result = decide(current)
                except LedgerError:
                    self._evict(job_id)
                    if from_cache:  # the refusal may come from a stale copy: decide afresh
                        continue
                    raise
                except Exception:
                    self._evict(job_id)
                    raise
                if job is None:
                    return result
                try:
                    self._store(job)
                except IntegrityError:
                    self._evict(job_id)
                    if attempt == 2:
                        raise LedgerError(
                            f"Job {short_id(job_id)} kept changing under this command. "
                            "Try again in a moment."
                        ) from None
                    log.debug("stale write to %s; retrying on fresh state", job_id)
                    continue
                except Exception:
                    self._evict(job_id)
                    raise
                self._remember(job)
                with self.changed:
                    self.changed.notify_all()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _change_in_batch(self, unit: dict[str, Job], job_id: str, decide: Decide[T]) -> T:
        """Decide now, write when the batch ends. The batch's copy of a job is taken out of
        the shared cache, so no other thread can write its unsaved events."""
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            current = unit.get(job_id)
            if current is None:
                with self._cache_lock:
                    current = self._cache.pop(job_id, None)
                if current is None and self._has_events(job_id):
                    current = self._load(job_id)
            job, result = decide(current)
            if job is not None:
                unit[job_id] = job
            elif current is not None and job_id not in unit:
                self._remember(current)
            return result

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold this thread's commands back and store them in one transaction at the end
        (see `Ledger.batch`); an inner block joins the outer one."""
        if getattr(self._batches, "unit", None) is not None:
            yield
            return
        unit: dict[str, Job] = {}
        self._batches.unit = unit
        try:
            yield
            self._batches.unit = None
            try:
                self._store(*unit.values())
            except IntegrityError:
                raise LedgerError(
                    f"Another writer changed one of the {len(unit)} jobs in this batch, so none "
                    "of it was stored. Run the batch again."
                ) from None
        except BaseException:
            self._batches.unit = None
            for job_id in unit:
                self._evict(job_id)
            raise
        for job in unit.values():
            self._remember(job)
        with self.changed:
            self.changed.notify_all()

    def _store(self, *jobs: Job) -> None:
        """Write the jobs' new events in one transaction: `Application.save` minus the
        generic collection machinery (snapshots, process tracking) this ledger never uses,
        which cost more than the insert itself. With group commit on, the transaction may be
        shared with other threads' writes; this returns once it has committed either way."""
        to_stored = self._to_stored_event
        stored: list[StoredEvent] = []
        for job in jobs:
            bodies = job.take_encoded_bodies()
            stored += [
                to_stored(event, bodies.get(event.originator_version))
                for event in job.collect_events()
            ]
        if stored:
            self._write(stored)

    def fresh(self, job_id: str) -> Job:
        """The job with every stored event applied (other processes may have added some)."""
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            job = self._cached(job_id)
            if job is None:
                job = self._load(job_id)
                if job is None:
                    raise JobNotFound.for_id(job_id)
            else:
                for event in self._events.get(job_id, gt=job.version):
                    event.mutate(job)
            self._remember(job)
            return job

    def _cached(self, job_id: str) -> Job | None:
        with self._cache_lock:
            job = self._cache.get(job_id)
            if job is not None:
                self._cache.move_to_end(job_id)
            return job

    def _remember(self, job: Job) -> None:
        if self._cache_size == 0:
            return
        with self._cache_lock:
            self._cache[job.id] = job
            self._cache.move_to_end(job.id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _evict(self, job_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(job_id, None)

    def _load(self, job_id: str) -> Job | None:
        try:
            return self._repository.get(job_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None
