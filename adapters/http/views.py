"""Ledger views turned into Bacalhau v1 bodies, and the paging rules around them.

The ledger's `to_dict` gives the core of Bacalhau's Job and Execution shapes; this module
fills in what the Go client expects to find (empty maps rather than nulls, DesiredState,
Namespace) and pages history the way Bacalhau's job store does: a NextToken keeps coming
until the job is terminal, even on an empty page, because `bacalhau job run` polls on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klippfisk.engine import ExecutionState, ExecutionView, JobView
from klippfisk.engine.wire import PagingToken, list_body, parse_rfc3339

__all__ = ["HistoryQuery", "execution_body", "history_body", "job_body", "warning_lines"]

# DesiredState numbers (Bacalhau's ExecutionDesiredStateType): Pending 0, Running 1, Stopped 2.
_DESIRED_RUNNING, _DESIRED_STOPPED = 1, 2
_ACTIVE = frozenset({ExecutionState.NEW, ExecutionState.RUNNING})


def job_body(view: JobView) -> dict[str, Any]:
    """A Job as Bacalhau's server writes it (maps and lists never null)."""
    body = view.to_dict()
    for key, empty in (("Meta", {}), ("Labels", {}), ("Constraints", []), ("Tasks", [])):
        if body.get(key) is None:
            body[key] = type(empty)()
    body.setdefault("Type", "batch")
    body.setdefault("Priority", 0)
    body.setdefault("Count", 1)
    return body


def execution_body(view: ExecutionView, namespace: str) -> dict[str, Any]:
    """An Execution: compute state an integer, plus the fields the ledger does not track."""
    body = view.to_dict()
    desired = _DESIRED_RUNNING if view.state in _ACTIVE else _DESIRED_STOPPED
    body.update(
        Namespace=namespace,
        EvalID="",
        Name=view.id,
        AllocatedResources={"Tasks": {}},
        DesiredState={"StateType": desired},
        PreviousExecution="",
        NextExecution="",
        FollowupEvalID="",
        Revision=0,
    )
    return body


def warning_lines(report: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    """The compiler's warnings as the one-line strings Bacalhau's Warnings list holds."""
    warnings = report.get("warnings", []) if isinstance(report, dict) else report
    lines = []
    for w in warnings:
        where = w.get("pointer") or "/"
        hint = f" ({w['hint']})" if w.get("hint") else ""
        lines.append(f"{w.get('code', 'warning')} at {where}: {w.get('message', '')}{hint}")
    return lines


@dataclass(frozen=True)
class HistoryQuery:
    """What a history request asks for, in Bacalhau's terms (since = Unix seconds)."""

    since: int = 0
    job_version: int = 0
    all_job_versions: bool = False
    limit: int = 100
    next_token: str = ""


def history_body(
    entries: list[dict[str, Any]], view: JobView, query: HistoryQuery
) -> dict[str, Any]:
    """One page of history and the token for the next (empty only once the job is over)."""
    version = query.job_version or view.version
    chosen = [
        e
        for e in entries
        if (query.all_job_versions or e.get("JobVersion", version) == version)
        and (not query.since or parse_rfc3339(e["Time"]).timestamp() >= query.since)
    ]
    offset = PagingToken.decode(query.next_token).offset if query.next_token else 0
    page = chosen[offset : offset + query.limit]
    after = offset + len(page)
    more = after < len(chosen) or not view.terminal
    token = PagingToken(limit=query.limit, offset=after).encode() if more else ""
    return list_body(page, token)
