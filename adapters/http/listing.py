"""Job lists in Bacalhau's order and paging, correct across pages.

The ledger pages jobs newest first by a cursor; that is our default order, and a list in it
(label selector or not) walks the ledger's pages, so it costs what the page costs. Any other
order (Bacalhau's `order_by=created_at|modified_at`, ascending unless `reverse`; `reverse`
alone gives oldest first) has no index behind it, so, as Bacalhau's own job store does, it
reads every job in the namespace, sorts them all and cuts the page by offset. That read is
bounded by a setting; past it the caller is told how to narrow the list.

Tokens are Bacalhau's `sort_by:reverse:limit:offset`; the order they carry decides what
their offset is: the ledger's cursor in the default order, a position in the sorted list
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.http.problems import ApiProblem
from adapters.http.selectors import LabelSelector
from engine import JobView, Ledger
from engine.wire import PagingToken

__all__ = ["ListQuery", "list_page"]

_SCAN_PAGE = 500


@dataclass(frozen=True)
class ListQuery:
    """One list request; `offset` is the resume point a token carried (None: page one)."""

    namespace: str | None
    limit: int
    order_by: str = ""
    reverse: bool = False
    selector: LabelSelector = LabelSelector()
    offset: int | None = None

    @property
    def default_order(self) -> bool:
        return not self.order_by and not self.reverse

    def token(self, offset: int) -> str:
        return PagingToken(
            sort_by=self.order_by, reverse=self.reverse, limit=self.limit, offset=offset
        ).encode()


def _labels_match(query: ListQuery, view: JobView) -> bool:
    return query.selector.matches(view.job.get("Labels") or {})


def _newest_first(ledger: Ledger, query: ListQuery, scan_limit: int) -> tuple[list[JobView], str]:
    """Walk the ledger's pages until the page is full; a sparse selector stops after
    `scan_limit` jobs with a token to go on from there."""
    items: list[JobView] = []
    cursor, scanned = query.offset, 0
    while len(items) < query.limit and scanned < scan_limit:
        page = ledger.list_jobs(
            namespace=query.namespace,
            limit=min(query.limit - len(items), scan_limit - scanned),
            next_token=str(cursor) if cursor is not None else None,
        )
        scanned += len(page.items)
        items += [v for v in page.items if _labels_match(query, v)]
        if page.next_token is None:
            return items, ""
        cursor = int(page.next_token)
    return items, query.token(cursor) if cursor is not None else ""


def _every_job(ledger: Ledger, query: ListQuery, scan_limit: int) -> list[JobView]:
    jobs: list[JobView] = []
    cursor: str | None = None
    while True:
        page = ledger.list_jobs(namespace=query.namespace, limit=_SCAN_PAGE, next_token=cursor)
        jobs += page.items
        if len(jobs) > scan_limit:
            raise ApiProblem(
                400,
                f"Sorting lists at most {scan_limit} jobs, and there are more.",
                "Leave out order_by and reverse to page through jobs newest first, ask for "
                "one namespace, or raise KLIPPFISK_SERVER__LIST_SCAN_LIMIT on the server.",
            )
        if page.next_token is None:
            return jobs
        cursor = page.next_token


def _sorted(ledger: Ledger, query: ListQuery, scan_limit: int) -> tuple[list[JobView], str]:
    jobs = [v for v in _every_job(ledger, query, scan_limit) if _labels_match(query, v)]
    moment = "modified_at" if query.order_by == "modified_at" else "created_at"
    descending = query.reverse if query.order_by else not query.reverse
    jobs.sort(key=lambda v: (getattr(v, moment), v.id), reverse=descending)
    start = query.offset or 0
    end = start + query.limit
    return jobs[start:end], query.token(end) if end < len(jobs) else ""


def list_page(ledger: Ledger, query: ListQuery, scan_limit: int) -> tuple[list[JobView], str]:
    """One page of jobs in the order asked for, and the token for the next ("" at the end)."""
    if query.default_order:
        return _newest_first(ledger, query, scan_limit)
    return _sorted(ledger, query, scan_limit)
