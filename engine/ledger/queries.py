"""Reading the ledger by the read models: a list's arguments checked into a page query, and
a short id or a name resolved to the one job it stands for.

Both refuse with a sentence that says what to do instead (BadQuery, JobNotFound).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from klippfisk.engine.job import JobState
from klippfisk.engine.ledger.errors import BadQuery, JobNotFound
from klippfisk.engine.persistence import JobsProjection, Order, PageQuery

__all__ = ["page_query", "resolve_name"]

_PAGE_TOKEN = re.compile(r"[0-9]{1,18}")
_ORDERS: dict[str, Order] = {"created_at": "created", "modified_at": "modified"}


def page_query(
    *,
    state: str | Sequence[str] | None,
    name: str | None,
    job_cid: str | None,
    source_ref: str | None,
    namespace: str | None,
    limit: int,
    next_token: str | None,
    order_by: str,
    oldest_first: bool,
    scan_limit: int | None,
) -> PageQuery:
    """The query `Ledger.list_jobs` was asked, or BadQuery saying which argument is wrong."""
    order = _ORDERS.get(order_by)
    if order is None:
        raise BadQuery(f"Cannot order jobs by {order_by!r}. Use created_at or modified_at.")
    if scan_limit is not None and scan_limit < 1:
        raise BadQuery("The scan limit must be at least 1.")
    states = [state] if isinstance(state, str) else list(state or [])
    known = set(JobState)
    unknown = [s for s in states if s not in known]
    if unknown:
        raise BadQuery(f"Unknown job state {unknown[0]!r}. Use one of: {', '.join(JobState)}.")
    if limit < 1:
        raise BadQuery("The page size must be at least 1.")
    before = None
    if next_token:
        # Tokens are notification ids: ASCII digits that fit a 64-bit integer column.
        if not _PAGE_TOKEN.fullmatch(next_token):
            raise BadQuery(
                f"The page token {next_token!r} is not one this ledger gave out. Pass "
                "back the next_token of a previous page, or leave it out to start over."
            )
        before = int(next_token)
    return PageQuery(
        states=[str(s) for s in states],
        name=name,
        job_cid=job_cid,
        source_ref=source_ref,
        namespace=namespace,
        before=before,
        oldest_first=oldest_first,
        order=order,
        limit=limit,
    )


def resolve_name(projection: JobsProjection, ref: str, namespace: str | None) -> str:
    """The full id of the one job whose short id or name `ref` is (a name within
    `namespace`; without one, a name used in several namespaces is refused as ambiguous
    rather than guessed). The projection is expected to be caught up."""
    if ref.startswith("j-") and len(ref) > 2:
        matches = projection.by_prefix(ref, namespace)
        if len(matches) == 1:
            return matches[0].job_id
        if matches:
            ids = ", ".join(m.job_id[:14] for m in matches)
            raise JobNotFound(
                f"The id prefix {ref} matches several jobs ({ids}). Type more of the id."
            )
    where = f" in namespace {namespace!r}" if namespace is not None else ""
    if namespace is None:
        spaces = projection.namespaces_of(ref)
        if len(spaces) > 1:
            raise JobNotFound(
                f"The name {ref!r} is used in several namespaces ({', '.join(spaces)}). "
                "Give the namespace too, or use the job's id."
            )
        namespace = spaces[0] if spaces else None
    named = projection.page(PageQuery(name=ref, namespace=namespace, limit=1))
    if named:
        return named[0].job_id
    raise JobNotFound(
        f"No job matches {ref!r} by id, short id or name{where}. "
        "Use `klippfisk job list` to see jobs and their ids."
    )
