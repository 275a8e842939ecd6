"""The paging rules around Bacalhau v1 bodies, and the compiler's warnings in its terms.

Jobs and executions go out as the wire's models, which the ledger's views build themselves
(`JobView.to_wire`, `ExecutionView.to_wire`). History is paged here the way Bacalhau's job
store does: a NextToken keeps coming until the job is terminal, even on an empty page,
because `bacalhau job run` polls on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klippfisk.engine import JobView
from klippfisk.engine.wire import PagingToken, list_body, parse_rfc3339

__all__ = ["HistoryQuery", "history_body", "warning_lines"]


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
