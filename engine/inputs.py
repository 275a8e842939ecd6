"""Turning a task's InputSources into host paths an executor can mount.

Each input becomes a `Mount`: a host file or directory shown to the task at its `Target`.
Inline (`data:` URL) and urlDownload inputs are written into the execution's work
directory first (downloads through `klippfisk.engine.net_guard`: public addresses only, every
redirect re-checked, unless the operator allow-lists an exact host:port); localDirectory
inputs are used in place, but only from directories the operator allow-listed, because a
job spec must not be a way to read the host's files.
Remote stores the embedded executor cannot reach (s3, ipfs) fail the execution with a
sentence saying so.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from klippfisk.engine.executors.base import ExecutorError
from klippfisk.engine.net_guard import (
    Cutter,
    GuardPolicy,
    NetGuardError,
    NotPublic,
    TooLarge,
    TooSlow,
    Unreachable,
    capped_chunks,
    guarded_get,
)
from klippfisk.engine.settings import ExecutorSettings

__all__ = [
    "InputError",
    "Mount",
    "decode_data_url",
    "result_mounts",
    "result_names",
    "stage_inputs",
]

LOCAL_TYPES = ("localdirectory", "local")
MAX_REDIRECTS = 5


class InputError(ExecutorError):
    """An input could not be made available to the task."""


@dataclass(frozen=True)
class Mount:
    """A host path shown to the task at `target` (an absolute path inside the task)."""

    source: Path
    target: str
    read_only: bool = True


def stage_inputs(
    task: dict[str, Any],
    work_dir: Path,
    settings: ExecutorSettings,
    cutter: Cutter | None = None,
) -> list[Mount]:
    """Fetch or locate every input of `task`; fetched files land in `work_dir`.

    Another thread may stop the staging (the execution's deadline, a stop) through
    `cutter`: a download in progress ends at once, and no further input is started."""
    mounts = []
    for index, spec in enumerate(task.get("InputSources") or []):
        if cutter is not None and cutter.cut_off:
            raise InputError(f"Staging the inputs was cut short before input {index}.")
        source = spec.get("Source") or {}
        kind = str(source.get("Type", ""))
        params = source.get("Params") or {}
        target = _target(spec, index)
        staging = work_dir / f"input{index}-"  # a name prefix: no directory per input
        if kind.lower() == "inline":
            mounts.append(_inline(params, target, staging, settings))
        elif kind.lower() == "urldownload":
            mounts.append(_download(params, target, staging, settings, cutter))
        elif kind.lower() in LOCAL_TYPES:
            mounts.append(_local(params, target, settings.allowed_local_paths))
        else:
            raise InputError(
                f"Input source type {kind!r} (input {index}, target {target}) is not supported "
                "by the local executor. Use an inline, urlDownload or localDirectory input, "
                "or run the job on a Bacalhau cluster that can read it."
            )
    return mounts


def result_mounts(task: dict[str, Any], result_dirs: dict[str, Path]) -> list[Mount]:
    """Writable mounts for the task's ResultPaths, backed by the results directory."""
    return [
        Mount(source=result_dirs[entry["Name"]], target=_absolute(entry["Path"]), read_only=False)
        for entry in task.get("ResultPaths") or []
    ]


def result_names(task: dict[str, Any]) -> list[str]:
    """The names of the task's ResultPaths (each becomes a directory of results)."""
    return [str(entry["Name"]) for entry in task.get("ResultPaths") or []]


def _target(spec: dict[str, Any], index: int) -> str:
    target = spec.get("Target") or spec.get("Alias")
    if not target:
        raise InputError(
            f"Input {index} has no Target; set Target to the path where the task should see it."
        )
    return _absolute(str(target))


def _absolute(path: str) -> str:
    """Normalise a path inside the task; `..` cannot climb out of its root."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _file_name(target: str, fallback: str) -> str:
    name = PurePosixPath(target).name
    return name or fallback


def _inline(
    params: dict[str, Any], target: str, staging: Path, settings: ExecutorSettings
) -> Mount:
    data = decode_data_url(str(params.get("URL", "")), settings.url_max_bytes)
    path = _staged(staging, _file_name(target, "data"))
    path.write_bytes(data)
    return Mount(source=path, target=target)


def _staged(prefix: Path, name: str) -> Path:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return prefix.with_name(prefix.name + name)


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a `data:` URL (RFC 2397), base64 or percent-encoded."""
    if not url.startswith("data:") or "," not in url:
        raise InputError(
            "An inline input must be a data: URL such as data:text/plain;base64,aGVsbG8=; "
            "check the input's Params.URL."
        )
    header, _, payload = url[5:].partition(",")
    if len(payload) > max_bytes * 2:
        raise InputError(_too_big("An inline input", max_bytes))
    if header.endswith(";base64"):
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(
                "An inline input's base64 data is not valid base64; re-encode the data."
            ) from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise InputError(_too_big("An inline input", max_bytes))
    return data


def _download(
    params: dict[str, Any],
    target: str,
    staging: Path,
    settings: ExecutorSettings,
    cutter: Cutter | None,
) -> Mount:
    """Fetch a urlDownload input under the shared address policy (`engine.net_guard`): a
    job spec must not be a way to reach the runner's loopback, LAN or cloud metadata service."""
    url = str(params.get("URL", ""))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"urlDownload input URL {url!r} is not an http(s) URL; give a full http:// or "
            "https:// address."
        )
    path = _staged(staging, _file_name(target, _file_name(parts.path, "download")))
    policy = GuardPolicy(allow=frozenset(settings.url_allow), max_redirects=MAX_REDIRECTS)
    deadline = time.monotonic() + settings.url_timeout_seconds
    try:
        with (
            httpx.Client(
                timeout=settings.url_timeout_seconds, follow_redirects=False, trust_env=False
            ) as client,
            guarded_get(client, url, policy, cutter=cutter) as (_, response),
        ):
            if response.status_code != 200:
                raise InputError(
                    f"Downloading {url} failed with HTTP {response.status_code}; check that "
                    "the URL is right and publicly readable."
                )
            _write_chunks(capped_chunks(response, settings.url_max_bytes, deadline), path)
    except TooLarge as exc:
        raise InputError(_too_big(f"Downloading {url}", settings.url_max_bytes)) from exc
    except NotPublic as exc:
        raise InputError(
            f"urlDownload input {url} is refused: {exc} Host the file at a public address, "
            f"or (operators only) add {exc.host}:{exc.port} to KLIPPFISK_EXECUTOR__URL_ALLOW."
        ) from exc
    except (TooSlow, Unreachable) as exc:
        raise InputError(
            f"Downloading {url} failed ({exc}); check the URL and your network, or raise "
            "KLIPPFISK_EXECUTOR__URL_TIMEOUT_SECONDS."
        ) from exc
    except NetGuardError as exc:
        raise InputError(f"urlDownload input {url} is refused: {exc}") from exc
    return Mount(source=path, target=target)


def _write_chunks(chunks: Iterable[bytes], path: Path) -> None:
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


def _too_big(what: str, max_bytes: int) -> str:
    return (
        f"{what} is larger than the {max_bytes}-byte limit; use a smaller input or raise "
        "KLIPPFISK_EXECUTOR__URL_MAX_BYTES."
    )


def _local(params: dict[str, Any], target: str, allowed: list[Path]) -> Mount:
    raw = params.get("SourcePath")
    if not raw:
        raise InputError("A localDirectory input needs Params.SourcePath; set it to a host path.")
    source = Path(str(raw)).resolve()
    if not any(source.is_relative_to(root.resolve()) for root in allowed):
        raise InputError(
            f"Host path {source} is not in the allow-list for localDirectory inputs; add a "
            "parent directory to KLIPPFISK_EXECUTOR__ALLOWED_LOCAL_PATHS (a JSON list) to "
            "allow it."
        )
    if not source.exists():
        raise InputError(f"Host path {source} does not exist; check Params.SourcePath.")
    read_write = str(params.get("ReadWrite", "false")).lower() == "true"
    return Mount(source=source, target=target, read_only=not read_write)
