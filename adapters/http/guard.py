"""The door: request ids, body limit, bearer-token auth and a rate limit per token.

Written as plain ASGI rather than Starlette's BaseHTTPMiddleware because it sits in front
of every request and the benchmark compares us with a bare endpoint: one small coroutine,
no extra task per request. Tokens are compared by their SHA-256 digest (never stored or
logged in clear); a token is scoped to one namespace, or to all with "*".
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klippfisk.adapters.http.asgi import ASGIApp, Message, Receive, Scope, Send
from klippfisk.adapters.http.problems import BodyTooLarge, problem_response
from klippfisk.adapters.http.rate_limit import Buckets
from klippfisk.adapters.settings import ServerSettings

__all__ = ["OPEN_PATHS", "Guard", "Principal", "is_loopback"]

# Paths anyone may read: liveness, version and the API's own description.
OPEN_PATHS = frozenset(
    {
        "/",
        "/version",
        "/livez",
        "/api/v1/agent/alive",
        "/api/v1/agent/version",
        "/openapi.json",
        "/docs",
    }
)
log = logging.getLogger(__name__)

_READS = frozenset({b"authorization", b"content-length", b"x-request-id"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ALL_NAMESPACES = "*"


@dataclass(frozen=True)
class Principal:
    """Who is asking: the actor recorded in the ledger and the namespace they may touch."""

    name: str
    namespace: str
    operator: bool = False  # the operator's own key (ApiKey.operator): its jobs are theirs

    def may_use(self, namespace: str) -> bool:
        return self.namespace in (ALL_NAMESPACES, namespace)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, the only hosts anonymous mode may bind."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _new_request_id() -> str:
    """128 random bits from the process's PRNG: an id, not a secret, and no system call, so
    the event loop does not hand the GIL to a busy worker thread and queue to get it back."""
    return f"{random.getrandbits(128):032x}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _too_many(message: str, wait: float) -> tuple[int, str, str, dict[str, str]]:
    seconds = max(1, int(wait + 0.999))
    return (
        429,
        message,
        f"Slow down; retry after {seconds} second(s).",
        {"Retry-After": str(seconds)},
    )


class Guard:
    """ASGI middleware in front of the whole API (`clock` paces the rate limits)."""

    def __init__(
        self, app: ASGIApp, settings: ServerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = {
            _digest(k.key.get_secret_value()): Principal(
                k.name or f"key-{i}", k.namespace, k.operator
            )
            for i, k in enumerate(settings.api_keys)
        }
        most = settings.rate_limit_callers
        self.buckets = Buckets(
            settings.rate_per_second, settings.rate_burst, max_callers=most, clock=clock
        )
        self.refusals = Buckets(
            settings.refused_rate_per_second, settings.refused_burst, max_callers=most, clock=clock
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _READS  # ASGI servers send header names lower-cased
        }
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else _new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        send = self._tagging(send, request_id)
        refusal = self._admit(scope, headers, state)
        if refusal is not None:
            status, message, hint, extra = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
                return
            response = problem_response(request_id, status, message, hint, headers=extra)
            await response(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _admit(
        self, scope: Scope, headers: dict[str, str], state: dict[str, Any]
    ) -> tuple[int, str, str, dict[str, str]] | None:
        """None to let the request in, else (status, message, hint, headers) to refuse it."""
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.settings.max_body_bytes:
            problem = BodyTooLarge(self.settings.max_body_bytes)
            return problem.status, problem.message, problem.hint, {}
        principal = self._principal(headers.get("authorization", ""))
        client = (scope.get("client") or ("", 0))[0]
        if isinstance(principal, str):
            if scope["path"] in OPEN_PATHS:
                principal = Principal("anonymous", self.settings.anonymous_namespace)
            else:
                return self._refuse(client, principal)
        state["principal"] = principal
        wait = self.buckets.take(principal.name if principal.name != "anonymous" else client)
        return _too_many("Too many requests for this key.", wait) if wait else None

    def _refuse(self, client: str, why: str) -> tuple[int, str, str, dict[str, str]]:
        """A 401, or a 429 once an address keeps failing: guessing keys must stay slow.

        Refusals have their own bucket per client address, because a caller without a
        valid key has no key bucket; a logged 401 says who failed, never the key sent."""
        wait = self.refusals.take(client)
        if wait:
            return _too_many("Too many failed authentications from this address.", wait)
        log.warning("Refused a request from %s: %s", client or "an unknown address", why)
        return 401, why, "Send Authorization: Bearer <key> (BACALHAU_API_KEY).", {}

    def _principal(self, authorization: str) -> Principal | str:
        """The caller, or a sentence saying why there is none."""
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            if self.settings.anonymous:
                return Principal("anonymous", self.settings.anonymous_namespace)
            return "This server needs an API key."
        if scheme.lower() != "bearer" or not token.strip():
            return "The Authorization header must be `Bearer <key>`."
        found = self.keys.get(_digest(token.strip()))
        return found if found is not None else "The API key is not valid."

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive: Content-Length can be absent or lie."""
        limit, seen = self.settings.max_body_bytes, 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited

    @staticmethod
    def _tagging(send: Send, request_id: str) -> Send:
        """Echo the request id on every response, so a user can quote it."""

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        return send_tagged
