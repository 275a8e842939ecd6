"""History polls answered from memory while the ledger has not changed.

Clients poll history far more often than jobs change (`bacalhau job run` asks twice a
second), and building a page means resolving the job, reading all its events and replaying
them. A page is a pure function of the stored events and the query, so it stays valid until
the ledger's notification log moves; its head is one indexed query, and it moves for writes
from any process sharing the store, so an entry can never be served stale.

The route renders and stores pages; `HistoryFastPath`, a plain ASGI layer behind the guard,
answers repeats before FastAPI parses anything. Anything it is unsure of (no entry, ledger
moved, a namespace question) falls through to the route, which has the full rules.

Under load the head read is most of a cached answer's cost, so the fast path shares one
reading among the requests of one event-loop turn: a reading taken now is forgotten by a
callback queued now, and the loop runs its ready queue in order, so it serves exactly the
requests whose tasks were queued before it, whose bytes had arrived before it was taken.
A write that finished before a request was sent is therefore always seen.

On a busy server the head moves with every write to any job, so a page would rarely be
fresh by the head alone. But a page depends only on its own job's events: when the head has
moved and the poll names the job by its full id (as `bacalhau job run` does), the job's
revision (its event count) is read instead, off the event loop; unchanged, the page is
served and recorded as fresh at the new head. The head was read first, so a revision read
after it covers every event stored up to that head.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klippfisk.adapters.http.asgi import send_json
from klippfisk.adapters.http.guard import Principal
from klippfisk.engine import Ledger
from klippfisk.engine.wire import JOBS_PATH

__all__ = ["CachedPage", "HistoryCache", "HistoryFastPath", "history_key"]

_HISTORY_PATH = re.compile(rf"^{re.escape(JOBS_PATH)}/([^/]+)/history$")
HistoryKey = tuple[str, str, str]


@dataclass(frozen=True)
class CachedPage:
    """One rendered page: the JSON bytes, and the job they belong to (its namespace, id and
    revision when rendered)."""

    namespace: str
    body: bytes
    job_id: str
    revision: int


def history_key(principal: Principal, job_ref: str, query_string: str) -> HistoryKey:
    """The key of a request: the caller's namespace, the job as named and the raw query (a
    poller repeats all three). A name means different jobs in different namespaces, so one
    tenant's page must never answer another's poll of the same name."""
    return principal.namespace, job_ref, query_string


class HistoryCache:
    """A bounded LRU of pages keyed by the request, checked against the ledger's head."""

    def __init__(self, ledger: Ledger, size: int = 1024) -> None:
        self.ledger = ledger
        self.size = size
        self._pages: OrderedDict[HistoryKey, tuple[int, CachedPage]] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, key: HistoryKey, position: int) -> CachedPage | None:
        """The page for `key` if the ledger's head is still `position`, as when rendered."""
        with self._lock:
            found = self._pages.get(key)
            if found is None or found[0] != position:
                return None
            self._pages.move_to_end(key)
            return found[1]

    def by_job_id(self, key: HistoryKey) -> CachedPage | None:
        """The page stored for `key` however old, if the request named its job by full id
        (a short id or a name could come to mean another job; an id never does)."""
        with self._lock:
            found = self._pages.get(key)
        return found[1] if found is not None and found[1].job_id == key[1] else None

    def renew(self, key: HistoryKey, position: int, page: CachedPage) -> None:
        """Record `page` as fresh at `position`, unless another page replaced it meanwhile."""
        with self._lock:
            found = self._pages.get(key)
            if found is not None and found[1] is page and found[0] < position:
                self._pages[key] = (position, page)
                self._pages.move_to_end(key)

    def page(self, key: HistoryKey, render: Callable[[], CachedPage]) -> CachedPage:
        """The fresh page for `key`, rendering and storing it when there is none."""
        position = self.ledger.position()
        with self._lock:
            found = self._pages.get(key)
            if found is not None and found[0] == position:
                return found[1]
        page = render()  # read after `position`: at worst newer than recorded, never older
        with self._lock:
            self._pages[key] = (position, page)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        return page


class HistoryFastPath:
    """Answers a repeated history poll from the cache, in the event loop, before routing."""

    def __init__(self, app: Any, cache: HistoryCache, head_off_loop: bool = False) -> None:
        self.app = app
        self.cache = cache
        self.head_off_loop = head_off_loop
        self._reading: int | asyncio.Future[int] | None = None

    async def _position(self) -> int:
        """The ledger's head, read at most once per turn of the event loop (see above).

        On SQLite the read is a few tens of microseconds, less than a hop to a worker
        thread, so it runs here; a server store (PostgreSQL) costs a round trip that must
        not stall every other connection, so it runs on a worker thread, and the requests
        of this turn await that one reading."""
        if self._reading is None:
            loop = asyncio.get_running_loop()
            if self.head_off_loop:
                self._reading = loop.run_in_executor(None, self.cache.ledger.position)
            else:
                self._reading = self.cache.ledger.position()
            loop.call_soon(self._forget)
        reading = self._reading
        return reading if isinstance(reading, int) else await reading

    def _forget(self) -> None:
        self._reading = None

    async def _unchanged(self, key: HistoryKey, position: int) -> CachedPage | None:
        """The stored page for `key` if its job has not changed since it was rendered."""
        page = self.cache.by_job_id(key)
        if page is None:
            return None
        loop = asyncio.get_running_loop()
        try:
            revision = await loop.run_in_executor(None, self._revision, page.job_id)
        except Exception:  # whatever went wrong, the route meets it again and answers it
            return None
        if revision != page.revision:
            return None
        self.cache.renew(key, position, page)
        return page

    def _revision(self, job_id: str) -> int:
        return self.cache.ledger.last_modified(job_id)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _HISTORY_PATH.match(scope["path"])
            principal = scope.get("state", {}).get("principal")
            query = scope["query_string"]
            # A namespace parameter brings rules (403s) that only the route applies.
            if match and principal is not None and b"namespace" not in query:
                key = history_key(principal, match.group(1), query.decode("latin-1"))
                position = await self._position()
                page = self.cache.fresh(key, position) or await self._unchanged(key, position)
                if page is not None and principal.may_use(page.namespace):
                    await send_json(send, page.body)
                    return
        await self.app(scope, receive, send)
