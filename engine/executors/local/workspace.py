"""Everything one local execution needs on disk, set up before and removed after.

The results directory stays (it is the `local` publisher's output); the work directory,
holding staged inputs and the sandbox's mount points, goes when the execution ends so a
busy worker does not fill the disk.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from klippfisk.engine.clock import Clock
from klippfisk.engine.executors.base import ExecutionRequest, ExecutorError
from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.executors.local.watchdog import Watchdog
from klippfisk.engine.inputs import InputError, Mount, result_mounts, result_names, stage_inputs
from klippfisk.engine.net_guard import Cutter
from klippfisk.engine.results import ResultsDir
from klippfisk.engine.settings import ExecutorSettings, Settings

__all__ = ["StagingCut", "Workspace", "stage_watched", "string_map", "task_network"]


@dataclass(frozen=True)
class Workspace:
    """One execution's results dir, scratch dir, mounts (inputs, then results) and limits, and
    the clock its deadline is kept on."""

    request: ExecutionRequest
    results: ResultsDir
    work_dir: Path
    mounts: list[Mount]
    limits: TaskLimits
    clock: Clock

    @classmethod
    @contextmanager
    def open(
        cls, request: ExecutionRequest, settings: Settings, cancel: threading.Event, clock: Clock
    ) -> Iterator[Workspace]:
        """Prepare results and inputs; always remove the scratch dir afterwards.

        Staging counts against the task's wall clock and heeds a stop: a large or stalled
        download must not outlive either (StagingCut says which ended it)."""
        results = ResultsDir(request.results_dir)
        result_dirs = results.prepare(result_names(request.task))
        scratch_root = settings.data_dir / "work"
        scratch_root.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"{request.execution_id}-", dir=scratch_root))
        try:
            limits = TaskLimits.of(request.task, settings.executor)
            inputs = stage_watched(request.task, work_dir, settings.executor, limits, cancel, clock)
            mounts = inputs + result_mounts(request.task, result_dirs)
            yield cls(request, results, work_dir, mounts, limits, clock)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    def watchdog(self, cancel: threading.Event, kill: Callable[[], None]) -> Watchdog:
        """A watchdog that calls `kill` at this execution's deadline or on a stop."""
        return Watchdog(self.limits.timeout_seconds, cancel, kill, self.clock)

    @property
    def engine_params(self) -> dict:
        """The task's `Engine.Params` (an empty dict when the spec has none)."""
        return (self.request.task.get("Engine") or {}).get("Params") or {}

    @property
    def network(self) -> str:
        """The task's network, lower case: none (the default), host or full."""
        return task_network(self.request.task)

    @property
    def env(self) -> dict[str, str]:
        """The task's Env plus the engine's EnvironmentVariables (a map, or docker's K=V list)."""
        env = string_map(self.request.task.get("Env") or {})
        engine_env = self.engine_params.get("EnvironmentVariables") or {}
        if isinstance(engine_env, dict):
            env.update(string_map(engine_env))
        else:
            for pair in engine_env:
                key, _, value = str(pair).partition("=")
                env[key] = value
        return env


class StagingCut(ExecutorError):
    """Staging the inputs was ended by the task's deadline or a stop."""

    def __init__(self, message: str, *, timed_out: bool = False, cancelled: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.cancelled = cancelled


def stage_watched(
    task: dict,
    work_dir: Path,
    settings: ExecutorSettings,
    limits: TaskLimits,
    cancel: threading.Event,
    clock: Clock,
) -> list[Mount]:
    """`stage_inputs` under a watchdog that cuts any download short at the deadline or stop."""
    cutter = Cutter()
    try:
        with Watchdog(limits.timeout_seconds, cancel, cutter.cut, clock) as dog:
            mounts = stage_inputs(task, work_dir, settings, cutter)
    except InputError:
        if not dog.fired:
            raise
    if dog.cancelled:
        raise StagingCut("stopped while staging its inputs", cancelled=True)
    if dog.timed_out:
        raise StagingCut(
            f"execution timed out after {limits.timeout_seconds:g}s while staging its inputs; "
            "use smaller or faster inputs, or raise Timeouts.ExecutionTimeout",
            timed_out=True,
        )
    return mounts


def task_network(task: dict) -> str:
    """A task's network, lower case: none (the default), host or full.

    HTTP (a domain allow-list) needs a filtering proxy the local executor does not have,
    so it is refused rather than quietly widened or narrowed.
    """
    kind = str((task.get("Network") or {}).get("Type") or "None").lower()
    if kind == "http":
        raise ExecutorError(
            "Network type HTTP (a domain allow-list) is not supported by the local "
            "executor; use None, or Host/Full if the task may reach any address."
        )
    return kind if kind in ("host", "full") else "none"


def string_map(mapping: dict) -> dict[str, str]:
    """Keys and values as strings (specs may hold numbers where the process needs text)."""
    return {str(k): str(v) for k, v in mapping.items()}
