"""A job's stored events in Bacalhau's JobHistory shape, so adapters can serve them as they are.

Each entry is one event: SeqNum is the event's version in the job's stream, Type says whether
it concerns the job or one execution, JobState / ExecutionState give the change it caused
(numbers for executions, names for jobs, as Bacalhau's API writes them) and Event carries the
reason, topic, time (RFC 3339, UTC) and string details.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from engine.job import Execution, Job

__all__ = ["EVENT_TYPES", "history_entries", "rfc3339"]

EVENT_TYPES = ("all", "job", "execution")
# Event fields worth showing as Details, under Bacalhau-style names.
_DETAILS = {
    "executor": "Executor",
    "node": "NodeID",
    "exit_code": "ExitCode",
    "error": "Error",
    "retryable": "Retryable",
    "kind": "TimeoutKind",
    "limit_seconds": "LimitSeconds",
    "job_cid": "JobCID",
}


def rfc3339(moment: datetime) -> str:
    """A time as Bacalhau writes it: RFC 3339 in UTC with a `Z`, sub-seconds trimmed."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def _details(event: Job.Event) -> dict[str, str]:
    details = {"Type": type(event).__name__, "Actor": event.actor}
    for field, key in _DETAILS.items():
        value = getattr(event, field, None)
        if value is not None and value != "":
            details[key] = str(value).lower() if isinstance(value, bool) else str(value)
    notes = getattr(event, "notes", None)
    if notes:
        details["Notes"] = "; ".join(notes)
    return details


def _execution_state(execution: Execution | None) -> int:
    return int(execution.state) if execution is not None else 0


def history_entries(
    events: Iterable[Job.Event],
    *,
    event_type: str = "all",
    execution_id: str | None = None,
    since: int = 0,
) -> list[dict[str, Any]]:
    """Replay `events` (one job's, in order) into JobHistory dicts, filtered as asked.

    Replaying is what tells each entry the state before and after, so the events are applied
    to a scratch copy of the job rather than read field by field.
    """
    entries: list[dict[str, Any]] = []
    job: Job | None = None
    for event in events:
        execution_of = getattr(event, "execution_id", "")
        before_job = job.state if job is not None else None
        before_exec = job.executions.get(execution_of) if job is not None else None
        before_exec_state = _execution_state(before_exec)
        job = event.mutate(job)  # type: ignore[arg-type]
        assert job is not None
        if event.originator_version <= since:
            continue
        if execution_of and event_type == "job" or not execution_of and event_type == "execution":
            continue
        if execution_id is not None and execution_of != execution_id:
            continue
        entry: dict[str, Any] = {
            "SeqNum": event.originator_version,
            "Type": "ExecutionLevel" if execution_of else "JobLevel",
            "JobID": event.originator_id,
            "JobVersion": job.job_version,
            "ExecutionID": execution_of,
            "Time": rfc3339(event.timestamp),
            "Event": {
                "Message": event.reason,
                "Topic": event.topic,
                "Timestamp": rfc3339(event.timestamp),
                "Details": _details(event),
            },
        }
        if execution_of:
            after = _execution_state(job.executions.get(execution_of))
            entry["ExecutionState"] = {"Previous": before_exec_state, "New": after}
        else:
            entry["JobState"] = {"Previous": str(before_job or "Undefined"), "New": str(job.state)}
        entries.append(entry)
    return entries
