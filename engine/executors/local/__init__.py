"""The embedded executor (wasm, docker-without-daemon, noop engines).

`LocalExecutor` is imported on first use, not with the package: the wasm fork server and
its children import modules of this package and must not pay for the executor's whole
stack (the Docker client, the settings) in every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from klippfisk.engine.executors.local.executor import LocalExecutor

__all__ = ["LocalExecutor"]


def __getattr__(name: str) -> Any:
    if name != "LocalExecutor":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from klippfisk.engine.executors.local.executor import LocalExecutor

    return LocalExecutor
