"""Group commit: writes that pile up behind a busy store share one transaction, and each
caller still gets its own outcome once its rows are stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from klippfisk.engine import JobState, Ledger
from klippfisk.engine.persistence.group_commit import GroupCommit
from klippfisk.engine.settings import Settings
from klippfisk.spec.compiled import CompiledSpec

MakeSpec = Callable[..., CompiledSpec]


def _row(job: str, version: int) -> StoredEvent:
    return StoredEvent(originator_id=job, originator_version=version, topic="t", state=b"{}")


class _HeldFirstWrite:
    """The real recorder's insert, with the first call held until released, so that other
    writers queue up behind it as they would behind a slow disk."""

    def __init__(self, ledger: Ledger) -> None:
        self.insert = ledger.recorder.insert_events
        self.release = threading.Event()
        self.calls: list[int] = []

    def __call__(self, rows: Sequence[Any]) -> Any:
        self.calls.append(len(rows))
        if len(self.calls) == 1:
            self.release.wait()
        return self.insert(rows)


def _write_behind_a_held_leader(
    commit: GroupCommit, held: _HeldFirstWrite, batches: list[list[StoredEvent]]
) -> list[BaseException | None]:
    """Write batches[0] (held), then the rest from threads of their own; release once they
    all wait; return each writer's outcome."""
    outcomes: list[BaseException | None] = [None] * len(batches)

    def write(n: int) -> None:
        try:
            commit.write(batches[n])
        except BaseException as exc:  # asserted on by the caller
            outcomes[n] = exc

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(batches))]
    threads[0].start()
    while not held.calls:
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    while len(commit._queue) < len(batches) - 1:  # everyone else is waiting behind it
        time.sleep(0.001)
    held.release.set()
    for thread in threads:
        thread.join()
    return outcomes


def test_writes_that_wait_behind_a_busy_store_share_one_transaction(ledger: Ledger):
    held = _HeldFirstWrite(ledger)
    commit = GroupCommit(held)
    batches = [[_row(f"job-{n}", 1), _row(f"job-{n}", 2)] for n in range(6)]
    assert _write_behind_a_held_leader(commit, held, batches) == [None] * 6
    assert held.calls == [2, 10]  # the leader alone, then the five that queued, together
    assert (commit.groups, commit.writes) == (2, 6)
    for n in range(6):
        assert [e.originator_version for e in ledger.recorder.select_events(f"job-{n}")] == [1, 2]


def test_a_stale_write_in_a_group_fails_alone(ledger: Ledger):
    ledger.recorder.insert_events([_row("taken", 1)])
    held = _HeldFirstWrite(ledger)
    commit = GroupCommit(held)
    batches = [[_row("first", 1)], [_row("fresh", 1)], [_row("taken", 1)], [_row("other", 1)]]
    outcomes = _write_behind_a_held_leader(commit, held, batches)
    assert [type(o) for o in outcomes] == [type(None), type(None), IntegrityError, type(None)]
    for job in ("first", "fresh", "other"):
        assert len(ledger.recorder.select_events(job)) == 1


def test_a_lone_writer_commits_at_once_each_time(ledger: Ledger):
    commit = GroupCommit(ledger.recorder.insert_events)
    for n in range(3):
        commit.write([_row("alone", n + 1)])
        assert len(ledger.recorder.select_events("alone")) == n + 1
    assert (commit.groups, commit.writes) == (3, 3)


def test_a_group_is_capped_in_rows(ledger: Ledger):
    held = _HeldFirstWrite(ledger)
    commit = GroupCommit(held, max_rows=4)
    batches = [[_row(f"cap-{n}", 1), _row(f"cap-{n}", 2)] for n in range(5)]
    assert _write_behind_a_held_leader(commit, held, batches) == [None] * 5
    assert held.calls == [2, 4, 4]


@pytest.mark.parametrize("group_commit", [True, False])
def test_threads_driving_jobs_command_by_command_store_every_event(
    store_settings: Settings, make_spec: MakeSpec, group_commit: bool
):
    settings = store_settings.model_copy(
        update={"ledger": store_settings.ledger.model_copy(update={"group_commit": group_commit})}
    )
    with Ledger.open(settings) as ledger:
        ids = [ledger.submit(make_spec(f"g-{n}")).job_id for n in range(12)]

        def run(job_id: str) -> None:
            ledger.queue(job_id)
            execution_id = ledger.create_execution(job_id)
            ledger.start_execution(job_id, execution_id)
            ledger.complete_execution(job_id, execution_id, exit_code=0)

        threads = [threading.Thread(target=run, args=(job_id,)) for job_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with Ledger.open(settings) as fresh:  # nothing cached: only what was stored
        assert {fresh.get(job_id).state for job_id in ids} == {JobState.COMPLETED}
        assert fresh.verify().ok


def test_with_a_window_a_leader_waits_for_the_writers_that_were_about(ledger: Ledger):
    held = _HeldFirstWrite(ledger)
    commit = GroupCommit(held, window_seconds=600.0)  # an upper bound, never reached here
    batches = [[_row("w-0", 1)], [_row("w-1", 1)], [_row("w-2", 1)]]
    assert _write_behind_a_held_leader(commit, held, batches) == [None] * 3
    assert held.calls == [1, 2]  # two writers shared the last transaction ...
    first = threading.Thread(target=commit.write, args=([_row("w-3", 1)],))
    first.start()  # ... so the next leader waits for a second writer instead of going alone
    while not commit._queue:
        time.sleep(0.001)
    commit.write([_row("w-4", 1)])
    first.join()
    assert held.calls == [1, 2, 2]
