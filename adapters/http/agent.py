"""`/api/v1/agent/*` and Bacalhau's legacy redirects: is the server up, which version is it.

We answer as a Bacalhau v1.5-line orchestrator (the execution-state numbering we speak), with
our own version as semver build metadata so a client can still tell it is Klippfisk.
"""

from __future__ import annotations

import platform
import socket
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from klippfisk.engine.wire import BuildVersion, rfc3339

__all__ = ["BACALHAU_COMPATIBLE", "build_version", "own_version", "router"]

BACALHAU_COMPATIBLE = "v1.5.2"
_STARTED = datetime.now(UTC)

router = APIRouter(tags=["Ops"])


def own_version() -> str:
    """Klippfisk's installed version (0.0.0 when run from a source tree not installed)."""
    try:
        return version("klippfisk")
    except PackageNotFoundError:
        return "0.0.0"


def build_version() -> dict[str, Any]:
    """BuildVersionInfo: Bacalhau's line, our version in the build metadata."""
    major, minor, _ = BACALHAU_COMPATIBLE.lstrip("v").split(".")
    return {
        "Major": major,
        "Minor": minor,
        "GitVersion": f"{BACALHAU_COMPATIBLE}+klippfisk.{own_version()}",
        "GitCommit": f"klippfisk-{own_version()}",
        "BuildDate": rfc3339(_STARTED),
        "GOOS": platform.system().lower(),
        "GOARCH": platform.machine().lower(),
    }


@router.get("/api/v1/agent/alive")
async def alive() -> dict[str, str]:
    return {"Status": "OK"}


@router.get("/api/v1/agent/version", response_model=BuildVersion)
def agent_version() -> dict[str, Any]:
    return build_version()


@router.get("/api/v1/agent/node")
def node() -> dict[str, Any]:
    return {
        "NodeID": f"klippfisk-{socket.gethostname()}",
        "NodeType": "Requester",
        "Labels": {},
        "SupportedProtocols": [],
        "BacalhauVersion": build_version(),
    }


@router.get("/", include_in_schema=False)
@router.get("/version", include_in_schema=False)
def to_version() -> RedirectResponse:
    return RedirectResponse("/api/v1/agent/version", status_code=301)


@router.get("/livez", include_in_schema=False)
def to_alive() -> RedirectResponse:
    return RedirectResponse("/api/v1/agent/alive", status_code=301)
