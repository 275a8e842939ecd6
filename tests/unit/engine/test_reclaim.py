"""Re-claiming a job a dead runner queued: only when nothing of it ran, and only once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from klippfisk.engine import IllegalTransition, JobState, Ledger
from klippfisk.engine.settings import Settings
from klippfisk.spec.compiled import CompiledSpec

DEAD = "local/host/4242-17"


def queued_by_dead_runner(ledger: Ledger, make_spec: Callable[..., CompiledSpec]) -> str:
    job_id = ledger.submit(make_spec("orphan")).job_id
    ledger.queue(job_id, reason="Queued for a worker", actor=DEAD)
    return job_id


def queue_entries(ledger: Ledger, job_id: str) -> list[dict]:
    return [e["Event"] for e in ledger.history(job_id) if e["Event"]["Details"]["Type"] == "Queued"]


def test_a_successor_reclaims_a_job_the_dead_runner_never_started(ledger, make_spec):
    job_id = queued_by_dead_runner(ledger, make_spec)

    ledger.reclaim(job_id, dead_owner=DEAD, actor="successor", reason=f"resumed after {DEAD}")

    view = ledger.get(job_id)
    assert view.state is JobState.QUEUED
    assert view.queued_by == "successor"
    last = queue_entries(ledger, job_id)[-1]
    assert last["Topic"] == "Queueing"
    assert last["Message"] == f"resumed after {DEAD}"
    assert last["Details"]["Actor"] == "successor"
    assert ledger.verify(job_id).ok


def refused_without_a_write(ledger: Ledger, job_id: str, owner: str) -> str:
    before = ledger.last_modified(job_id)
    with pytest.raises(IllegalTransition) as refused:
        ledger.reclaim(job_id, dead_owner=owner, actor="successor")
    assert ledger.last_modified(job_id) == before
    assert "Cannot reclaim" in str(refused.value)
    return str(refused.value)


def test_a_job_that_is_not_queued_cannot_be_reclaimed(ledger, make_spec):
    job_id = ledger.submit(make_spec("pending")).job_id

    message = refused_without_a_write(ledger, job_id, DEAD)

    assert "is Pending" in message


def test_a_claim_that_is_not_the_dead_runners_is_left_alone(ledger, make_spec):
    job_id = queued_by_dead_runner(ledger, make_spec)

    message = refused_without_a_write(ledger, job_id, "local/host/1-1")

    assert f"is Queued by {DEAD}" in message


def test_a_job_with_an_execution_is_never_reclaimed_because_it_may_have_run(ledger, make_spec):
    job_id = queued_by_dead_runner(ledger, make_spec)
    execution_id = ledger.create_execution(job_id, actor=DEAD)
    ledger.fail_execution(job_id, execution_id, error="lost", retryable=True, actor=DEAD)

    message = refused_without_a_write(ledger, job_id, DEAD)

    assert "already has execution" in message
    assert ledger.get(job_id).state is JobState.QUEUED


def test_of_two_ledgers_racing_on_the_same_orphan_exactly_one_reclaims_it(
    ledger, store_settings: Settings, make_spec
):
    job_id = queued_by_dead_runner(ledger, make_spec)
    with Ledger.open(store_settings) as rival:
        rival.get(job_id)  # both now hold the job as the dead runner left it
        ledger.get(job_id)
        rival.reclaim(job_id, dead_owner=DEAD, actor="rival")

        with pytest.raises(IllegalTransition, match="is Queued by rival, not by"):
            ledger.reclaim(job_id, dead_owner=DEAD, actor="successor")

    assert [e["Details"]["Actor"] for e in queue_entries(ledger, job_id)] == [DEAD, "rival"]
