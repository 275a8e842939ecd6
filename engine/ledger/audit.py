"""Audit: every stored event re-hashed and its link to its predecessor checked.

Each event's hash covers its identity, its content and its predecessor's hash (the rule is
the aggregate's, `klippfisk.engine.job.event_hash`), so an edited, reordered or removed
event breaks the chain here; only a removed last event leaves no trace, since nothing after
it points at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from klippfisk.engine.job import Job, event_hash

__all__ = ["BrokenChain", "VerifyReport", "notifications", "verify_chains"]


@dataclass(frozen=True)
class BrokenChain:
    job_id: str
    seq_num: int
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: every job's events re-hashed and their links checked."""

    jobs_checked: int
    events_checked: int
    broken: list[BrokenChain]

    @property
    def ok(self) -> bool:
        return not self.broken

    @property
    def broken_jobs(self) -> list[str]:
        return sorted({b.job_id for b in self.broken})


def notifications(select: Callable[[int, int], Sequence[Any]], batch: int = 1000) -> Iterator[Any]:
    """Every stored event in the log's order, read `batch` at a time through `select`
    (the recorder's `select_notifications(start, limit)`)."""
    start = 1
    while True:
        page = select(start, batch)
        yield from page
        if len(page) < batch:
            return
        start = page[-1].id + 1


def verify_chains(
    stored: Iterable[Any], to_event: Callable[[Any], Any], only: str | None = None
) -> VerifyReport:
    """Check the chains of the `stored` events (of job `only`, if given); `to_event` is the
    mapper's. A job's first broken link is reported; its later events are counted only."""
    heads: dict[str, tuple[int, str]] = {}
    broken: dict[str, BrokenChain] = {}
    events_checked = 0
    for notification in stored:
        job_id = str(notification.originator_id)
        if only and job_id != only:
            continue
        events_checked += 1
        version, prev = heads.get(job_id, (0, ""))
        heads[job_id] = (notification.originator_version, "")
        if job_id in broken:
            continue
        problem, digest = _check_event(to_event, notification, version, prev)
        if problem:
            broken[job_id] = BrokenChain(job_id, notification.originator_version, problem)
        else:
            heads[job_id] = (notification.originator_version, digest)
    return VerifyReport(len(heads), events_checked, list(broken.values()))


def _check_event(
    to_event: Callable[[Any], Any], notification: Any, version: int, prev: str
) -> tuple[str, str]:
    """What is wrong with one stored event ("" if nothing), and its hash."""
    try:
        event = to_event(notification)
    except Exception as exc:  # a stored event that no longer decodes is itself the finding
        return f"the stored event cannot be read ({type(exc).__name__})", ""
    if event.originator_version != version + 1:
        return f"event {version + 1} is missing", ""
    assert isinstance(event, Job.Event)
    if event.prev_hash != prev:
        return "the link to the previous event does not match", ""
    expected = event_hash(
        event.originator_id,
        event.originator_version,
        type(event).__name__,
        event.timestamp,
        event.body(),
        event.prev_hash,
    )
    if expected != event.hash:
        return "the event's content does not match its hash", ""
    return "", event.hash
