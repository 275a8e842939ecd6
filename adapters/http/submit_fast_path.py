"""Job submissions answered in plain ASGI, before FastAPI's stack.

Measured under load, FastAPI's layers around the submit route (error and telemetry
middleware, the exit-stack, dependency solving, the thread-pool limiter, the Response
object) cost as much CPU per submission as compiling the job. This layer sits behind the
guard, so auth, namespace scope, rate limits, the body limit and request ids are already
settled, and does the submission itself with the very code the route runs
(`submission.submit`), answering failures with the very bodies the handlers write.

It takes only what it can answer exactly as the route would: PUT or POST on the jobs path
with no query parameters but `namespace` and `idempotency_token`, each at most once and
within the route's length limits. Anything else goes on to the route, whose validation has
the full rules; the route also keeps the operation in the OpenAPI document.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from klippfisk.adapters.http.asgi import ASGIApp, Receive, Scope, Send, read_body, send_json
from klippfisk.adapters.http.guard import Principal
from klippfisk.adapters.http.namespaces import NAMESPACE_MAX_LENGTH
from klippfisk.adapters.http.problems import failure_response
from klippfisk.adapters.http.submission import IDEMPOTENCY_TOKEN_MAX_LENGTH, submit
from klippfisk.engine import Ledger
from klippfisk.engine.wire import JOBS_PATH

__all__ = ["SubmitFastPath"]

_LIMITS = {"namespace": NAMESPACE_MAX_LENGTH, "idempotency_token": IDEMPOTENCY_TOKEN_MAX_LENGTH}


def _simple_query(query_string: bytes) -> dict[str, str] | None:
    """The query's parameters if the fast path may take it, else None (the route's turn).

    Decoded as Starlette decodes it, so both paths read the same values."""
    if not query_string:
        return {}
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        return None  # a repeated parameter: the route decides which one counts
    for name, value in params.items():
        limit = _LIMITS.get(name)
        if limit is None or len(value) > limit:
            return None
    return params


def _idempotency_header(scope: Scope) -> str:
    """The first Idempotency-Key header, as Starlette's `headers.get` reads it."""
    for name, value in scope["headers"]:
        if name == b"idempotency-key":  # ASGI servers send header names lower-cased
            return str(value.decode("latin-1"))
    return ""


class SubmitFastPath:
    """Takes PUT/POST /api/v1/orchestrator/jobs off FastAPI's hands (see the module doc)."""

    def __init__(self, app: ASGIApp, ledger: Ledger) -> None:
        self.app = app
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == JOBS_PATH
            and scope["method"] in ("PUT", "POST")
        ):
            principal = scope.get("state", {}).get("principal")
            query = _simple_query(scope["query_string"])
            if principal is not None and query is not None:
                await self._submit(scope, receive, send, principal, query)
                return
        await self.app(scope, receive, send)

    async def _submit(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal,
        query: dict[str, str],
    ) -> None:
        request_id: str = scope["state"]["request_id"]
        try:
            raw = await read_body(receive)
            if raw is None:
                return
            answer = await submit(
                self.ledger,
                principal,
                raw,
                namespace=query.get("namespace", ""),
                idempotency_token=query.get("idempotency_token") or _idempotency_header(scope),
                request_id=request_id,
            )
        except Exception as exc:
            await failure_response(request_id, exc)(scope, receive, send)
            return
        await send_json(send, answer)
