"""Job lists in Bacalhau's order and paging, answered from the ledger's indexes.

Bacalhau's `order_by=created_at|modified_at` lists ascending unless `reverse`; without
`order_by`, jobs come newest first and `reverse` alone gives oldest first. Every such order
has an index in the ledger's read model, which pages by key: a page ends at a job and the
next one starts after it, so jobs submitted or changed while a client pages never shift the
pages (an offset would repeat or skip jobs). A label selector is tested while the index is
read; a selector matching few jobs stops after the server's scan limit with a short page and
a token to read on from there, so no request reads an unbounded number of jobs.

Tokens are Bacalhau's `sort_by:reverse:limit:offset`, carrying the order and page size of
page one (Bacalhau's rule); their offset is the ledger's key of the last job listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from klippfisk.adapters.http.selectors import LabelSelector
from klippfisk.engine import JobView, Ledger
from klippfisk.engine.wire import PagingToken

__all__ = ["ListQuery", "list_page"]


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
    def oldest_first(self) -> bool:
        """Bacalhau's direction: ascending for an explicit order, unless reversed; the
        default order is newest first, and reversed it is oldest first."""
        return not self.reverse if self.order_by else self.reverse

    def token(self, offset: int) -> str:
        return PagingToken(
            sort_by=self.order_by, reverse=self.reverse, limit=self.limit, offset=offset
        ).encode()


def list_page(ledger: Ledger, query: ListQuery, scan_limit: int) -> tuple[list[JobView], str]:
    """One page of jobs in the order asked for, and the token for the next ("" at the end).

    A label selector reads at most `scan_limit` jobs for the page."""
    page = ledger.list_jobs(
        namespace=query.namespace,
        limit=query.limit,
        next_token=str(query.offset) if query.offset is not None else None,
        order_by=query.order_by or "created_at",
        oldest_first=query.oldest_first,
        labels=query.selector.matches if query.selector.tests else None,
        scan_limit=scan_limit if query.selector.tests else None,
    )
    return page.items, query.token(int(page.next_token)) if page.next_token else ""
