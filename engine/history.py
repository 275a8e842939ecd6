"""A job's stored events in Bacalhau's JobHistory shape, so adapters can serve them as they are.

Each event gives one entry: Type says whether it concerns the job or one execution,
JobState / ExecutionState give the change it caused (numbers for executions, names for jobs,
as Bacalhau's API writes them) and Event carries the reason, topic, time (RFC 3339, UTC) and
string details. When an execution's event moves the job itself (Running on the first start,
Completed, Failed), Bacalhau also records a JobLevel "State Update" entry; it is derived here
from the same event, right after the execution's entry, so no extra event is stored.

SeqNum numbers the entries 1, 2, 3... in order. Entries only ever get appended (an event's
entries depend on nothing after it), so a SeqNum is a stable cursor: `since=n` returns what
came after entry n. Each entry is built as the wire's `WireHistory`, the model the remote
client reads the same shape with, and handed out as the plain data it dumps to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from klippfisk.engine.job import Execution, Job, Topic
from klippfisk.engine.states import JobState
from klippfisk.engine.wire import UNDEFINED, ListResponse, WireHistory, rfc3339

__all__ = ["EVENT_TYPES", "history_entries"]

EVENT_TYPES = ("all", "job", "execution")
_Entries = ListResponse[WireHistory]
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


def _entry(
    event: Job.Event,
    job: Job,
    message: str,
    topic: str,
    details: dict[str, str],
    change: dict[str, Any],
) -> dict[str, Any]:
    """The fields of one `WireHistory` entry but its SeqNum, which it gets once it is kept
    (only kept entries are made into the model); the state change is the job's when its
    states are names, the execution's when they are numbers."""
    when = rfc3339(event.timestamp)
    job_level = not isinstance(change["New"], int)
    return {
        "Type": "JobLevel" if job_level else "ExecutionLevel",
        "JobID": event.originator_id,
        "JobVersion": job.job_version,
        "ExecutionID": "" if job_level else getattr(event, "execution_id", ""),
        "Time": when,
        "Event": {"Message": message, "Topic": topic, "Timestamp": when, "Details": details},
        "JobState" if job_level else "ExecutionState": change,
    }


def _state_update(event: Job.Event, job: Job, before: JobState) -> dict[str, Any]:
    """The JobLevel entry Bacalhau writes when an execution's event changes the job's state:
    topic "State Update", the new state as the message (with the cause when it failed)."""
    message = str(job.state)
    error = getattr(event, "error", "")
    if job.state is JobState.FAILED and error:
        message += f". {error}"
    details = {"NewState": str(job.state), "Type": type(event).__name__, "Actor": event.actor}
    change = {"Previous": str(before), "New": str(job.state)}
    return _entry(event, job, message, str(Topic.STATE_UPDATE), details, change)


def _entries_of(event: Job.Event, job: Job | None) -> tuple[Job, list[dict[str, Any]]]:
    """Apply `event` to `job` and return the job after it with the entries it gives."""
    execution_of = getattr(event, "execution_id", "")
    before_job = job.state if job is not None else None
    before_exec = _execution_state(job.executions.get(execution_of) if job else None)
    after = event.mutate(job)  # type: ignore[arg-type]
    assert after is not None
    details = _details(event)
    if not execution_of:
        change = {"Previous": str(before_job or UNDEFINED), "New": str(after.state)}
        return after, [_entry(event, after, event.reason, event.topic, details, change)]
    new_exec = _execution_state(after.executions.get(execution_of))
    moved = {"Previous": before_exec, "New": new_exec}
    entry = _entry(event, after, event.reason, event.topic, details, moved)
    if before_job is not None and after.state is not before_job:
        return after, [entry, _state_update(event, after, before_job)]
    return after, [entry]


def history_entries(
    events: Iterable[Job.Event],
    *,
    event_type: str = "all",
    execution_id: str | None = None,
    since: int = 0,
) -> list[dict[str, Any]]:
    """Replay `events` (one job's, in order) into JobHistory entries, filtered as asked.

    Replaying is what tells each entry the state before and after, so the events are applied
    to a scratch copy of the job rather than read field by field. Filters never renumber:
    an entry keeps the SeqNum it has in the full history.
    """
    wanted = {"all": None, "job": "JobLevel", "execution": "ExecutionLevel"}[event_type]
    entries: list[dict[str, Any]] = []
    job: Job | None = None
    seq = 0
    for event in events:
        job, produced = _entries_of(event, job)
        for entry in produced:
            seq += 1
            if seq <= since or (wanted and entry["Type"] != wanted):
                continue
            if execution_id is not None and entry["ExecutionID"] != execution_id:
                continue
            entries.append({"SeqNum": seq, **entry})
    # Made into the wire's model and written by it (the other level's state change, None,
    # is left out as Bacalhau leaves it out); one list in one call costs the least.
    page = _Entries.model_validate({"Items": entries, "NextToken": ""})
    return page.model_dump(mode="json", exclude_none=True)["Items"]
