"""History in Bacalhau's JobHistory shape, ready for the HTTP adapter to serve as it is."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from engine import Ledger, LedgerError
from spec.compiled import CompiledSpec

_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture
def finished(ledger: Ledger, make_spec: Callable[..., CompiledSpec]) -> tuple[str, str]:
    job_id = ledger.submit(make_spec("hist")).job_id
    ledger.queue(job_id, reason="waiting for a worker")
    execution_id = ledger.create_execution(job_id, executor="local", node="node-1")
    ledger.start_execution(job_id, execution_id)
    ledger.complete_execution(job_id, execution_id, exit_code=1)
    return job_id, execution_id


def test_each_event_is_one_entry_numbered_by_its_version(ledger: Ledger, finished):
    job_id, execution_id = finished
    history = ledger.history(job_id)
    assert [h["SeqNum"] for h in history] == [1, 2, 3, 4, 5]
    assert [h["Type"] for h in history] == ["JobLevel"] * 2 + ["ExecutionLevel"] * 3
    assert {h["JobID"] for h in history} == {job_id}
    assert [h["ExecutionID"] for h in history] == ["", ""] + [execution_id] * 3
    assert {h["JobVersion"] for h in history} == {1}


def test_entries_carry_bacalhau_topics_states_and_utc_times(ledger: Ledger, finished):
    job_id, _ = finished
    submitted, queued, created, started, completed = ledger.history(job_id)
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


def test_history_filters_by_level_execution_and_position(ledger: Ledger, finished):
    job_id, execution_id = finished
    assert [h["SeqNum"] for h in ledger.history(job_id, event_type="job")] == [1, 2]
    assert [h["SeqNum"] for h in ledger.history(job_id, execution_id=execution_id)] == [3, 4, 5]
    assert [h["SeqNum"] for h in ledger.history(job_id, since=3)] == [4, 5]


def test_an_unknown_event_type_is_refused_with_the_choices(ledger: Ledger, finished):
    with pytest.raises(LedgerError, match="all, job, execution"):
        ledger.history(finished[0], event_type="node")
