"""Everything one local execution needs on disk, set up before and removed after.

The results directory stays (it is the `local` publisher's output); the work directory,
holding staged inputs and the sandbox's mount points, goes when the execution ends so a
busy worker does not fill the disk.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.executors.base import ExecutionRequest, ExecutorError
from engine.executors.local.limits import TaskLimits
from engine.inputs import Mount, result_mounts, result_names, stage_inputs
from engine.results import ResultsDir
from engine.settings import Settings

__all__ = ["Workspace", "string_map"]


@dataclass(frozen=True)
class Workspace:
    """One execution's results dir, scratch dir, mounts (inputs, then results) and limits."""

    request: ExecutionRequest
    results: ResultsDir
    work_dir: Path
    mounts: list[Mount]
    limits: TaskLimits

    @classmethod
    @contextmanager
    def open(cls, request: ExecutionRequest, settings: Settings) -> Iterator[Workspace]:
        """Prepare results and inputs; always remove the scratch dir afterwards."""
        results = ResultsDir(request.results_dir)
        result_dirs = results.prepare(result_names(request.task))
        scratch_root = settings.data_dir / "work"
        scratch_root.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"{request.execution_id}-", dir=scratch_root))
        try:
            limits = TaskLimits.of(request.task, settings.executor)
            inputs = stage_inputs(request.task, work_dir, settings.executor)
            mounts = inputs + result_mounts(request.task, result_dirs)
            yield cls(request, results, work_dir, mounts, limits)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    @property
    def engine_params(self) -> dict:
        """The task's `Engine.Params` (an empty dict when the spec has none)."""
        return (self.request.task.get("Engine") or {}).get("Params") or {}

    @property
    def network(self) -> str:
        """The task's network, lower case: none (the default), host or full.

        HTTP (a domain allow-list) needs a filtering proxy the local executor does not have,
        so it is refused rather than quietly widened or narrowed.
        """
        kind = str((self.request.task.get("Network") or {}).get("Type") or "None").lower()
        if kind == "http":
            raise ExecutorError(
                "Network type HTTP (a domain allow-list) is not supported by the local "
                "executor; use None, or Host/Full if the task may reach any address."
            )
        return kind if kind in ("host", "full") else "none"

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


def string_map(mapping: dict) -> dict[str, str]:
    """Keys and values as strings (specs may hold numbers where the process needs text)."""
    return {str(k): str(v) for k, v in mapping.items()}
