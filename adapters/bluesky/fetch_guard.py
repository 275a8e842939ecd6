"""Fetching a job file from a URL someone posted, without letting them aim the bot inward.

Anyone on Bluesky can make the bot fetch a URL, so every hop goes through the engine's
address policy (`klippfisk.engine.net_guard`: public addresses only, pinned, redirects re-checked).
What is the bot's own: the size cap and deadline of a job file, the document-like content
types it accepts, and first-person messages for the reply. Tests allow their own loopback
server through an explicit allow-list of host:port entries; nothing else is relaxed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from klippfisk.engine.net_guard import (
    GuardPolicy,
    NetGuardError,
    NotPublic,
    Resolver,
    TooLarge,
    TooSlow,
    capped_chunks,
    guarded_get,
    resolve_host,
)

__all__ = ["FetchError", "FetchPolicy", "Fetched", "fetch"]

DOCUMENT_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
    "text/plain",
    "application/octet-stream",
)


class FetchError(Exception):
    """The URL was refused or could not be fetched; the message is a sentence for the user."""


@dataclass(frozen=True)
class FetchPolicy:
    """The limits of one fetch. `allow` lists host:port pairs exempt from the address check
    (for a test server on loopback), never a range."""

    max_bytes: int = 256 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_redirects: int = 3
    content_types: tuple[str, ...] = DOCUMENT_TYPES
    allow: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Fetched:
    """A fetched document: where it finally came from, its bytes and declared type."""

    url: str
    content: bytes
    content_type: str


def _accept(response: httpx.Response, policy: FetchPolicy, deadline: float) -> tuple[bytes, str]:
    """The body and media type of a final (non-redirect) response, if acceptable."""
    host = response.request.headers.get("host", "the server")
    if response.status_code != 200:
        raise FetchError(f"{host} answered {response.status_code} for the job file; check the URL.")
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in policy.content_types:
        raise FetchError(
            f"The URL serves {media_type or 'no content type'}, not a job file; "
            "link the raw YAML or JSON file."
        )
    try:
        return b"".join(capped_chunks(response, policy.max_bytes, deadline)), media_type
    except TooLarge as exc:
        raise FetchError(f"The job file is larger than {policy.max_bytes // 1024} KiB.") from exc
    except TooSlow as exc:
        raise FetchError(
            f"The job file took longer than {policy.total_timeout:g} s to fetch."
        ) from exc


def fetch(url: str, policy: FetchPolicy | None = None, resolve: Resolver = resolve_host) -> Fetched:
    """GET a job file under `policy`; raise FetchError with the reason for any refusal."""
    policy = policy or FetchPolicy()
    deadline = time.monotonic() + policy.total_timeout
    guard = GuardPolicy(allow=policy.allow, max_redirects=policy.max_redirects, resolve=resolve)
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    headers = {"Accept": ", ".join(DOCUMENT_TYPES)}
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            guarded_get(client, url, guard, headers) as (target, response),
        ):
            return Fetched(str(target.url), *_accept(response, policy, deadline))
    except NotPublic as exc:
        raise FetchError(
            f"I do not fetch from {exc.host}: it is not a public address. "
            "Host the job file somewhere public."
        ) from exc
    except NetGuardError as exc:
        raise FetchError(str(exc)) from exc
