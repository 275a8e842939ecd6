"""Which executor runs which engine: the runner asks here, by the task's engine type.

Executors are tried in the order they were registered, so a deployment can put the remote
Bacalhau executor first (everything it supports goes to the cluster) or last (only what the
local executor cannot run). An engine nobody supports fails the job in Bacalhau's words:
`does not support <engine>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from engine.executors.base import Executor, ExecutorError
from engine.settings import Settings

__all__ = ["ExecutorRegistry", "UnsupportedEngine", "default_registry"]


class UnsupportedEngine(ExecutorError):
    """No registered executor runs this engine type."""


class ExecutorRegistry:
    """An ordered set of executors, looked up by engine type."""

    def __init__(self, executors: Iterable[Executor] = ()) -> None:
        self._executors: list[Executor] = list(executors)

    def register(self, executor: Executor, *, first: bool = False) -> None:
        """Add an executor (e.g. the remote one); `first` makes it win ties."""
        if first:
            self._executors.insert(0, executor)
        else:
            self._executors.append(executor)

    def __iter__(self) -> Iterator[Executor]:
        return iter(self._executors)

    def for_engine(self, engine_type: str) -> Executor:
        for executor in self._executors:
            if executor.supports(engine_type):
                return executor
        names = ", ".join(e.name for e in self._executors) or "none registered"
        raise UnsupportedEngine(
            f"executor {names} does not support {engine_type}; use an engine this machine "
            "runs (docker, wasm, noop) or run the job on a Bacalhau cluster that has it"
        )


def default_registry(settings: Settings) -> ExecutorRegistry:
    """The embedded executor, or with `executor.remote` the Bacalhau cluster's executor."""
    if settings.executor.remote:
        from engine.executors.bacalhau import BacalhauExecutor

        return ExecutorRegistry([BacalhauExecutor(settings.bacalhau)])
    from engine.executors.local import LocalExecutor

    return ExecutorRegistry([LocalExecutor(settings)])
