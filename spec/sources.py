"""Where a document's bytes come from: a file, standard input ("-") or an http(s) URL.

Every route is bounded before the loader sees a byte: files and streams are read up to the
size limit plus one byte (so `/dev/zero` or a growing file cannot exhaust memory), and URLs are
fetched with httpx under a timeout, a redirect cap, a streamed size cap and an overall
deadline, because a job URL may come from a stranger (the Bluesky bot takes them from posts).
Every failure is a LoadError whose message says what to do.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from klippfisk.spec.errors import LoadError, Problem
from klippfisk.spec.limits import DEFAULT_LIMITS, LoadLimits, size_limit_error

__all__ = ["read_source"]

_ACCEPT = "application/yaml, application/json;q=0.9, text/plain;q=0.8, */*;q=0.5"


def read_source(
    ref: str, *, limits: LoadLimits | None = None, stdin: BinaryIO | None = None
) -> tuple[bytes, str]:
    """The bytes `ref` names and the source name to use in messages."""
    limits = limits or DEFAULT_LIMITS
    if ref == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return _read_bounded(stream, "<stdin>", limits), "<stdin>"
    if not ref:
        raise _error("<no source>", "no file name was given", "Give a job file path, - or a URL.")
    try:
        parts = urlsplit(ref)
        host = parts.hostname
    except ValueError as exc:
        raise _error(ref, f"the URL is malformed ({exc})", "Check the URL.") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not host:
            raise _error(ref, "the URL names no host", "Write it as https://host/path.")
        return _fetch(ref, limits), ref
    if "://" in ref:
        raise _error(
            ref,
            f"the {scheme or 'unknown'}:// scheme is not supported",
            "Give a local file path, - for standard input, or an http:// or https:// URL.",
        )
    return _read_file(ref, limits), ref


def _read_file(ref: str, limits: LoadLimits) -> bytes:
    path = Path(ref)
    try:
        if path.is_dir():
            raise _error(ref, "this is a directory, not a file", "Give the path of a job file.")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise size_limit_error(ref, limits)
        with path.open("rb") as stream:
            return _read_bounded(stream, ref, limits)
    except FileNotFoundError:
        raise _error(ref, "the file does not exist", "Check the path and its spelling.") from None
    except PermissionError:
        raise _error(
            ref, "the file cannot be read (permission denied)", "Make the file readable."
        ) from None
    except OSError as exc:
        raise _error(
            ref, f"the file cannot be read ({exc.strerror or exc})", "Check the path."
        ) from None


def _read_bounded(stream: BinaryIO, source: str, limits: LoadLimits) -> bytes:
    data = stream.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise size_limit_error(source, limits)
    return data


def _fetch(url: str, limits: LoadLimits) -> bytes:
    import httpx  # here, not at the top: only a URL needs it, and every command pays an import

    deadline = time.monotonic() + limits.fetch_timeout_seconds
    try:
        with (
            httpx.Client(
                timeout=limits.fetch_timeout_seconds,
                follow_redirects=True,
                max_redirects=limits.max_redirects,
            ) as client,
            client.stream("GET", url, headers={"Accept": _ACCEPT}) as response,
        ):
            if response.status_code >= 400:
                raise _error(
                    url,
                    f"the server answered {response.status_code} {response.reason_phrase}",
                    "Check that the URL is right and publicly readable.",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise size_limit_error(url, limits)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limits.max_bytes:
                    raise size_limit_error(url, limits)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("overall deadline passed")
            return bytes(body)
    except httpx.TooManyRedirects:
        raise _error(
            url,
            f"the URL redirects more than {limits.max_redirects} times",
            "Give the final URL directly.",
        ) from None
    except httpx.TimeoutException:
        raise _error(
            url,
            f"the server did not deliver the document within {limits.fetch_timeout_seconds:g}s",
            "Try again later, or download the file and give its path.",
        ) from None
    except httpx.UnsupportedProtocol:
        raise _error(
            url,
            "the URL was redirected to a scheme other than http or https",
            "Give an http(s) URL that stays on http(s).",
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _error(
            url,
            f"the document could not be fetched ({exc})",
            "Check the URL and your network connection.",
        ) from None


def _error(source: str, message: str, hint: str) -> LoadError:
    return LoadError([Problem("", message, hint, code="source")], source)
