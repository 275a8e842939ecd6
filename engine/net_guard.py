"""GETting a URL someone else chose, without letting them aim us at inside addresses.

A job spec's urlDownload input and a URL posted to the bot are both chosen by someone who
may not be trusted, so both go through this one policy: http(s) only, no credentials in the
URL; the host is resolved here and every address must be public (no loopback, private,
link-local, shared, metadata, NAT64-wrapped or other special ranges); the connection goes to
the address that was checked (pinned, so a second DNS answer cannot swap it for an inside
one) with the original Host header and TLS server name; redirects are followed by hand so
each hop is checked the same way, up to a cap. Bodies are read under a size cap and a total
deadline, and another thread may cut the connection at any point (`Cutter`). Operators (and
tests) exempt exact host:port pairs through an allow-list; never a range.

Errors are `NetGuardError` subclasses whose messages are neutral sentences; callers that
need their own wording (the bot speaks in the first person) catch the specific class.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = [
    "GuardPolicy",
    "Resolver",
    "NetGuardError",
    "NotPublic",
    "Refused",
    "Target",
    "TooLarge",
    "TooManyRedirects",
    "TooSlow",
    "Unreachable",
    "Cutter",
    "capped_chunks",
    "check_url",
    "guarded_get",
    "is_public",
    "resolve_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# NAT64 prefix: the embedded IPv4 address decides where the packet really goes.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class NetGuardError(Exception):
    """A guarded fetch was refused or did not finish; the message is a sentence."""


class Refused(NetGuardError):
    """The URL itself is not acceptable (scheme, syntax, credentials, unknown host)."""


class NotPublic(Refused):
    """The host resolves to an address that is not public and is not allow-listed."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"{host} is not a public address, so it is not fetched.")
        self.host = host
        self.port = port


class Unreachable(NetGuardError):
    """The connection failed or the server did not answer in time."""


class TooManyRedirects(NetGuardError):
    """The redirect chain is longer than the policy allows."""


class TooLarge(NetGuardError):
    """The body is larger than the cap."""


class TooSlow(NetGuardError):
    """The whole fetch took longer than its total deadline."""


@dataclass(frozen=True)
class GuardPolicy:
    """Which addresses may be reached and how many redirects are followed. `allow` holds
    host:port pairs exempt from the address check (a test server, an operator's mirror)."""

    allow: frozenset[str] = field(default_factory=frozenset)
    max_redirects: int = 3
    resolve: Resolver = field(default=lambda host, port: resolve_host(host, port))


@dataclass(frozen=True)
class Target:
    """One checked request target: the URL as given and the address to connect to."""

    url: httpx.URL
    address: str

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.url.scheme]
        port = self.url.port or default
        return self.url.host if port == default else f"{self.url.host}:{port}"


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), as strings."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"The host {host} could not be found; check the URL.") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """Whether packets to `address` leave for the public internet (unwrapping v4-in-v6)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def check_url(url: str, policy: GuardPolicy) -> Target:
    """Refuse a URL that must not be fetched; return where to connect for one that may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(
            f"Only http:// and https:// URLs are fetched, not {parts.scheme or 'this one'}; "
            "give an http(s) address."
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused("That URL is not valid; check it.") from exc
    if not parsed.host:
        raise Refused("That URL has no host; give the full address.")
    if parsed.userinfo:
        raise Refused("URLs with a user name or password in them are not fetched.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = policy.resolve(parsed.host, port)
    if not addresses:
        raise Refused(f"The host {parsed.host} could not be found; check the URL.")
    if f"{parsed.host}:{port}" not in policy.allow:
        for text in addresses:
            if not is_public(ipaddress.ip_address(text.split("%", 1)[0])):
                raise NotPublic(parsed.host, port)
    return Target(parsed, addresses[0].split("%", 1)[0])


def _send(
    client: httpx.Client, target: Target, headers: Mapping[str, str], cutter: Cutter | None
) -> httpx.Response:
    extensions: dict[str, Any] = {"trace": cutter.trace} if cutter is not None else {}
    if target.url.scheme == "https":
        extensions["sni_hostname"] = target.url.host
    request = client.build_request(
        "GET",
        target.pinned_url(),
        headers={**headers, "Host": target.host_header()},
        extensions=extensions,
    )
    try:
        return client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise Unreachable(f"{target.url.host} did not answer in time; try later.") from exc
    except httpx.HTTPError as exc:
        raise Unreachable(f"Could not connect to {target.url.host}; check the URL.") from exc


@contextlib.contextmanager
def guarded_get(
    client: httpx.Client,
    url: str,
    policy: GuardPolicy,
    headers: Mapping[str, str] | None = None,
    cutter: Cutter | None = None,
) -> Iterator[tuple[Target, httpx.Response]]:
    """The first non-redirect response to GET `url`, every hop checked, as a stream.

    `client` must not follow redirects itself (that would skip the checks)."""
    current = url
    for _ in range(policy.max_redirects + 1):
        target = check_url(current, policy)
        response = _send(client, target, headers or {}, cutter)
        if response.is_redirect and "location" in response.headers:
            current = urljoin(current, response.headers["location"])
            response.close()
            continue
        try:
            yield target, response
        finally:
            response.close()
        return
    raise TooManyRedirects(f"The URL redirected more than {policy.max_redirects} times.")


def capped_chunks(response: httpx.Response, max_bytes: int, deadline: float) -> Iterator[bytes]:
    """The body in chunks, ending with TooLarge / TooSlow when a limit is hit.

    `deadline` is a `time.monotonic()` instant for the whole body, not per read; a read
    blocked on a silent server ends at the client's read timeout, or at once through a
    `Cutter`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"The body is larger than {max_bytes} bytes.")
    total = 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(f"The body is larger than {max_bytes} bytes.")
            if time.monotonic() > deadline:
                raise TooSlow("The fetch took longer than its time limit.")
            yield chunk
    except httpx.HTTPError as exc:
        if time.monotonic() > deadline:
            raise TooSlow("The fetch took longer than its time limit.") from exc
        raise Unreachable(f"Reading from {response.url.host} failed; try again.") from exc


class Cutter:
    """Lets another thread cut a guarded GET's connection at any point (connecting, waiting
    for headers, reading the body): a read blocked on a silent server then returns at once
    instead of at its read timeout. Learns each new socket through httpcore's trace hook."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.cut_off = False

    def trace(self, name: str, info: Mapping[str, Any]) -> None:
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with self._lock:
                self._sockets.append(sock)
                if self.cut_off:
                    _shut(sock)

    def cut(self) -> None:
        with self._lock:
            self.cut_off = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
