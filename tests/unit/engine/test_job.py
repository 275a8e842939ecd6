"""The Job aggregate's rules, without a store: what each command allows and what it records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from klippfisk.engine.job import (
    ExecutionState,
    IllegalTransition,
    Job,
    JobState,
    LedgerError,
    RunOutput,
    event_hash,
)
from klippfisk.spec.compiled import CompiledSpec


def _submit(compiled: CompiledSpec) -> Job:
    return Job.submit(
        "j-00000000-0000-0000-0000-000000000001",
        job=compiled.job,
        job_cid=compiled.job_cid,
        task_cids=compiled.task_cids,
        source={"adapter": "cli", "actor": "alice", "ref": "hello.yaml"},
        report=compiled.report.to_dict(),
        actor="alice",
    )


@pytest.fixture
def job(make_spec: Callable[..., CompiledSpec]) -> Job:
    return _submit(make_spec("hello"))


def _run(job: Job, exit_code: int = 0) -> str:
    execution_id = job.create_execution(executor="local", node="n1", actor="runner")
    job.start_execution(execution_id, node="n1", notes=[], actor="runner")
    job.complete_execution(execution_id, RunOutput(exit_code, stdout="out"), actor="runner")
    return execution_id


def test_a_submitted_job_is_pending_and_its_first_event_starts_the_chain(job: Job) -> None:
    (submitted,) = job.pending_events
    assert job.state is JobState.PENDING and job.version == 1
    assert submitted.prev_hash == "" and len(submitted.hash) == 64
    assert (submitted.topic, submitted.actor) == ("Submission", "alice")


def test_the_lifecycle_runs_pending_queued_running_completed(job: Job) -> None:
    job.queue(reason="waiting for a worker", actor="runner")
    assert job.state is JobState.QUEUED
    execution_id = _run(job)
    assert job.state is JobState.COMPLETED
    assert job.executions[execution_id].state is ExecutionState.COMPLETED


def test_a_non_zero_exit_code_still_completes_the_job(job: Job) -> None:
    execution_id = _run(job, exit_code=3)
    assert job.state is JobState.COMPLETED
    assert job.executions[execution_id].output == RunOutput(3, stdout="out")


def test_every_event_links_to_the_hash_of_the_one_before(job: Job) -> None:
    _run(job)
    events = job.pending_events
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    last = events[-1]
    recomputed = event_hash(
        last.originator_id,
        last.originator_version,
        type(last).__name__,
        last.timestamp,
        last.body(),
        last.prev_hash,
    )
    assert recomputed == last.hash


@pytest.mark.parametrize(
    ("command", "kwargs"),
    [
        ("stop", {"reason": "no", "actor": "alice"}),
        ("queue", {"reason": "again", "actor": "runner"}),
        ("create_execution", {"executor": "local", "node": "n", "actor": "runner"}),
        ("time_out", {"kind": "total", "limit_seconds": 1, "actor": "runner"}),
    ],
)
def test_nothing_is_accepted_after_a_terminal_state(
    job: Job, command: str, kwargs: dict[str, Any]
) -> None:
    _run(job)
    version = job.version
    with pytest.raises(IllegalTransition) as refused:
        getattr(job, command)(**kwargs)
    message = str(refused.value)
    assert "Completed" in message and command.replace("_", " ") in message
    assert job.version == version and job.state is JobState.COMPLETED


def test_completing_an_execution_that_never_started_is_refused(job: Job) -> None:
    execution_id = job.create_execution(executor="local", node="n1", actor="runner")
    job.start_execution(execution_id, node="n1", notes=[], actor="runner")
    waiting = job.create_execution(executor="local", node="n2", actor="runner")
    with pytest.raises(IllegalTransition, match="is New"):
        job.complete_execution(waiting, RunOutput(0), actor="runner")


def test_an_unknown_execution_is_refused_by_name(job: Job) -> None:
    with pytest.raises(IllegalTransition, match="has no execution e-missing"):
        job.start_execution("e-missing", node="n", notes=[], actor="runner")


def test_stop_cancels_active_executions_before_the_job_stops(job: Job) -> None:
    execution_id = job.create_execution(executor="local", node="n1", actor="runner")
    job.start_execution(execution_id, node="n1", notes=[], actor="runner")
    job.stop(reason="changed my mind", actor="alice")
    kinds = [type(e).__name__ for e in job.pending_events[-2:]]
    assert kinds == ["ExecutionCancelled", "StopRequested"]
    assert job.state is JobState.STOPPED
    assert job.executions[execution_id].state is ExecutionState.CANCELLED


def test_a_retryable_failure_leaves_the_job_running_and_a_final_one_fails_it(job: Job) -> None:
    first = job.create_execution(executor="local", node="n1", actor="runner")
    job.start_execution(first, node="n1", notes=[], actor="runner")
    job.fail_execution(first, error="node lost", retryable=True, actor="runner")
    assert job.state is JobState.RUNNING
    second = job.create_execution(executor="local", node="n2", actor="runner")
    job.fail_execution(second, error="image missing", retryable=False, actor="runner")
    assert job.state is JobState.FAILED


def test_a_job_with_count_two_completes_only_when_both_partitions_have(
    make_spec: Callable[..., CompiledSpec],
) -> None:
    job = _submit(make_spec("pair", count=2))
    _run(job)
    assert job.state is JobState.RUNNING
    _run(job)
    assert job.state is JobState.COMPLETED


def test_a_timeout_fails_the_job_under_the_timeout_topic(job: Job) -> None:
    job.create_execution(executor="local", node="n1", actor="runner")
    job.time_out(kind="execution", limit_seconds=30, actor="runner")
    assert job.state is JobState.FAILED
    assert job.pending_events[-1].topic == "Exec Timeout"
    assert job.pending_events[-2].topic == "Execution"  # the execution was cancelled first


def test_an_unknown_timeout_kind_is_refused_and_names_the_choices(job: Job) -> None:
    with pytest.raises(LedgerError, match="execution, queue, total"):
        job.time_out(kind="lunch", limit_seconds=1, actor="runner")
    assert job.version == 1


def test_resubmitting_cancels_old_executions_and_bumps_the_version(
    job: Job, make_spec: Callable[..., CompiledSpec]
) -> None:
    execution_id = job.create_execution(executor="local", node="n1", actor="runner")
    changed = make_spec("hello", command="echo changed")
    job.resubmit(
        job=changed.job,
        job_cid=changed.job_cid,
        task_cids=changed.task_cids,
        source={"adapter": "cli", "actor": "alice", "ref": ""},
        report={},
        actor="alice",
    )
    assert (job.job_version, job.state) == (2, JobState.PENDING)
    assert job.executions[execution_id].state is ExecutionState.CANCELLED
    assert job.job_cid == changed.job_cid
