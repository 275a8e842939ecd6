"""Which executor runs which engine: the runner asks here, by the task's engine type.

Executors are tried in the order they were registered. The default registry puts the
executor the settings (or `job run --executor`) chose first: with `bacalhau`, every engine
the cluster is configured for (`KLIPPFISK_BACALHAU__ENGINES`) goes there and the rest (e.g.
`noop`) still runs here; with `local`, nothing leaves the machine. An engine nobody supports
fails the job in Bacalhau's words: `does not support <engine>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import get_args

from klippfisk.engine.clock import SYSTEM_CLOCK, Clock
from klippfisk.engine.executors.base import Executor, ExecutorError
from klippfisk.engine.settings import ExecutorSettings, Settings

__all__ = ["EXECUTOR_CHOICES", "ExecutorRegistry", "UnsupportedEngine", "default_registry"]

EXECUTOR_CHOICES: tuple[str, ...] = get_args(ExecutorSettings.model_fields["default"].annotation)


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

    def close(self) -> None:
        """Release what the executors hold (the remote one keeps an HTTP connection pool)."""
        for executor in self._executors:
            executor.close()


def default_registry(
    settings: Settings, executor: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> ExecutorRegistry:
    """The executor `executor` names (default: `settings.executor.default`) first; with
    `bacalhau`, the embedded executor after it for the engines the cluster is not sent.
    Both keep their deadlines on `clock`."""
    from klippfisk.engine.executors.local import LocalExecutor

    choice = executor or settings.executor.default
    if choice not in EXECUTOR_CHOICES:
        raise ExecutorError(
            f"unknown executor {choice!r}; use one of: {', '.join(EXECUTOR_CHOICES)}"
        )
    registry = ExecutorRegistry([LocalExecutor(settings, clock)])
    if choice == "bacalhau":
        from klippfisk.engine.executors.bacalhau import BacalhauExecutor

        registry.register(BacalhauExecutor(settings.bacalhau, clock=clock), first=True)
    return registry
