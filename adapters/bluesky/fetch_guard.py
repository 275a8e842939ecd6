"""Fetching a job file from a URL someone posted, without letting them aim the bot inward.

Anyone on Bluesky can make the bot fetch a URL, so every hop is checked before it is made:
http(s) only; the host is resolved here and every address must be public (no loopback,
private, link-local, shared, metadata or other special ranges); the connection then goes to
the address that was checked (pinned, so a second DNS answer cannot swap it for an inside
one), with the original Host header and TLS server name. Redirects are followed by hand so
the same checks apply to each hop, up to a cap. The body is streamed under a size cap and a
total deadline, and only document-like content types are accepted. Tests allow their own
loopback server through an explicit allow-list of host:port entries; nothing else is relaxed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = ["FetchError", "FetchPolicy", "Fetched", "fetch", "resolve_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# NAT64 prefix: the embedded IPv4 address decides where the packet really goes.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

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


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), as strings."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"I could not find the host {host}; check the URL.") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if address in _NAT64:
            return _is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class _Hop:
    """One checked request target: the URL as given and the address to connect to."""

    url: httpx.URL
    address: str

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.url.scheme]
        port = self.url.port or default
        return self.url.host if port == default else f"{self.url.host}:{port}"


def _check(url: str, policy: FetchPolicy, resolve: Resolver) -> _Hop:
    """Refuse a URL the bot must not fetch; return where to connect for one it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"I only fetch http:// or https:// URLs, not {parts.scheme or 'this'}.")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError("That URL is not valid; check it and post again.") from exc
    if not parsed.host:
        raise FetchError("That URL has no host; post the full address of the job file.")
    if parsed.userinfo:
        raise FetchError("I do not fetch URLs with a user name or password in them.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolve(parsed.host, port)
    if not addresses:
        raise FetchError(f"I could not find the host {parsed.host}; check the URL.")
    if f"{parsed.host}:{port}" not in policy.allow:
        for text in addresses:
            if not _is_public(ipaddress.ip_address(text.split("%", 1)[0])):
                raise FetchError(
                    f"I do not fetch from {parsed.host}: it is not a public address. "
                    "Host the job file somewhere public."
                )
    return _Hop(parsed, addresses[0].split("%", 1)[0])


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _read_capped(response: httpx.Response, policy: FetchPolicy, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(f"The job file is larger than {policy.max_bytes // 1024} KiB.")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > policy.max_bytes:
            raise FetchError(f"The job file is larger than {policy.max_bytes // 1024} KiB.")
        if time.monotonic() > deadline:
            raise FetchError(f"The job file took longer than {policy.total_timeout:g} s to fetch.")
    return bytes(body)


def _get(client: httpx.Client, hop: _Hop) -> httpx.Response:
    extensions = {"sni_hostname": hop.url.host} if hop.url.scheme == "https" else {}
    request = client.build_request(
        "GET",
        hop.pinned_url(),
        headers={"Host": hop.host_header(), "Accept": ", ".join(DOCUMENT_TYPES)},
        extensions=extensions,
    )
    return client.send(request, stream=True)


def _accept(
    response: httpx.Response, hop: _Hop, policy: FetchPolicy, deadline: float
) -> tuple[bytes, str]:
    """The body and media type of a final (non-redirect) response, if acceptable."""
    if response.status_code != 200:
        raise FetchError(
            f"{hop.url.host} answered {response.status_code} for the job file; check the URL."
        )
    media_type = _media_type(response)
    if media_type not in policy.content_types:
        raise FetchError(
            f"The URL serves {media_type or 'no content type'}, not a job file; "
            "link the raw YAML or JSON file."
        )
    try:
        return _read_capped(response, policy, deadline), media_type
    except httpx.HTTPError as exc:
        raise FetchError(f"Reading the job file from {hop.url.host} failed.") from exc


def fetch(url: str, policy: FetchPolicy | None = None, resolve: Resolver = resolve_host) -> Fetched:
    """GET a job file under `policy`; raise FetchError with the reason for any refusal."""
    policy = policy or FetchPolicy()
    deadline = time.monotonic() + policy.total_timeout
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(policy.max_redirects + 1):
            hop = _check(current, policy, resolve)
            try:
                response = _get(client, hop)
            except httpx.TimeoutException as exc:
                raise FetchError(f"{hop.url.host} did not answer in time; try later.") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"I could not connect to {hop.url.host}; check the URL.") from exc
            try:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                return Fetched(current, *_accept(response, hop, policy, deadline))
            finally:
                response.close()
    raise FetchError(f"The URL redirected more than {policy.max_redirects} times; link the file.")
