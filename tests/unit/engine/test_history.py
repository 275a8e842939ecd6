"""History in Bacalhau's JobHistory shape, ready for the HTTP adapter to serve as it is."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from klippfisk.engine import Ledger, LedgerError, rfc3339
from klippfisk.spec.compiled import CompiledSpec

_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture
def finished(ledger: Ledger, make_spec: Callable[..., CompiledSpec]) -> tuple[str, str]:
    job_id = ledger.submit(make_spec("hist")).job_id
    ledger.queue(job_id, reason="waiting for a worker")
    execution_id = ledger.create_execution(job_id, executor="local", node="node-1")
    ledger.start_execution(job_id, execution_id)
    ledger.complete_execution(job_id, execution_id, exit_code=1)
    return job_id, execution_id


def test_entries_are_numbered_in_order_and_typed_by_level(ledger: Ledger, finished):
    job_id, execution_id = finished
    history = ledger.history(job_id)
    assert [h["SeqNum"] for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert [h["Type"] for h in history] == [
        "JobLevel",  # submitted
        "JobLevel",  # queued
        "ExecutionLevel",  # created
        "ExecutionLevel",  # started
        "JobLevel",  # ... so the job is Running
        "ExecutionLevel",  # completed
        "JobLevel",  # ... so the job is Completed
    ]
    assert {h["JobID"] for h in history} == {job_id}
    assert [h["ExecutionID"] for h in history] == [
        "",
        "",
        *[execution_id] * 2,
        "",
        execution_id,
        "",
    ]
    assert {h["JobVersion"] for h in history} == {1}


def test_an_execution_that_moves_the_job_adds_a_job_level_state_update(ledger: Ledger, finished):
    job_id, _ = finished
    history = ledger.history(job_id)
    started, running, completed, done = history[3:7]
    assert running["JobState"] == {"Previous": "Queued", "New": "Running"}
    assert done["JobState"] == {"Previous": "Running", "New": "Completed"}
    for update, cause in ((running, started), (done, completed)):
        assert update["Event"]["Topic"] == "State Update"
        assert update["Event"]["Message"] == update["JobState"]["New"]
        assert update["Event"]["Details"]["NewState"] == update["JobState"]["New"]
        assert update["Time"] == cause["Time"]
        assert "JobState" not in cause and "ExecutionState" not in update


def test_a_failed_execution_says_why_the_job_failed(ledger: Ledger, make_spec):
    job_id = ledger.submit(make_spec("fails")).job_id
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id)
    ledger.fail_execution(job_id, execution_id, error="out of memory", retryable=True)
    retry = ledger.create_execution(job_id)
    ledger.start_execution(job_id, retry)  # already Running: no second state update
    ledger.fail_execution(job_id, retry, error="out of memory again")
    updates = [h for h in ledger.history(job_id, event_type="job") if h["SeqNum"] > 1]
    assert [(u["JobState"]["New"], u["Event"]["Message"]) for u in updates] == [
        ("Running", "Running"),
        ("Failed", "Failed. out of memory again"),
    ]


def test_entries_carry_bacalhau_topics_states_and_utc_times(ledger: Ledger, finished):
    job_id, _ = finished
    submitted, queued, created, started, _, completed, _ = ledger.history(job_id)
    assert [e["Event"]["Topic"] for e in (submitted, queued, created, started, completed)] == [
        "Submission",
        "Queueing",
        "Scheduling",
        "Execution",
        "Execution",
    ]
    assert queued["JobState"] == {"Previous": "Pending", "New": "Queued"}
    assert queued["Event"]["Message"] == "waiting for a worker"
    assert completed["ExecutionState"] == {"Previous": 6, "New": 9}
    assert completed["Event"]["Details"]["ExitCode"] == "1"
    assert created["Event"]["Details"]["NodeID"] == "node-1"
    assert all(isinstance(v, str) for v in completed["Event"]["Details"].values())
    assert (
        _RFC3339_UTC.match(completed["Time"])
        and completed["Time"] == completed["Event"]["Timestamp"]
    )


def test_history_times_are_the_wire_format_of_the_event_times(ledger: Ledger, finished):
    job_id, _ = finished
    events = list(ledger.events.get(job_id))
    assert ledger.history(job_id)[0]["Time"] == rfc3339(events[0].timestamp)


def test_history_filters_by_level_execution_and_position(ledger: Ledger, finished):
    job_id, execution_id = finished
    assert [h["SeqNum"] for h in ledger.history(job_id, event_type="job")] == [1, 2, 5, 7]
    assert [h["SeqNum"] for h in ledger.history(job_id, event_type="execution")] == [3, 4, 6]
    assert [h["SeqNum"] for h in ledger.history(job_id, execution_id=execution_id)] == [3, 4, 6]
    assert [h["SeqNum"] for h in ledger.history(job_id, since=4)] == [5, 6, 7]


def test_following_with_since_sees_each_entry_once(ledger: Ledger, make_spec):
    job_id = ledger.submit(make_spec("followed")).job_id
    seen: list[int] = []

    def poll() -> None:
        seen.extend(h["SeqNum"] for h in ledger.history(job_id, since=seen[-1] if seen else 0))

    poll()
    execution_id = ledger.create_execution(job_id)
    ledger.start_execution(job_id, execution_id)
    poll()
    ledger.complete_execution(job_id, execution_id, exit_code=0)
    poll()
    assert seen == [h["SeqNum"] for h in ledger.history(job_id)] == [1, 2, 3, 4, 5, 6]


def test_an_unknown_event_type_is_refused_with_the_choices(ledger: Ledger, finished):
    with pytest.raises(LedgerError, match="all, job, execution"):
        ledger.history(finished[0], event_type="node")
