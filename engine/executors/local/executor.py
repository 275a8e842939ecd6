"""The embedded executor: runs tasks on this machine with no server and no account.

One executor, several engines: `wasm` in wasmtime, `docker` in a Docker daemon's containers
when one answers, else as a sandboxed host process (python images in python.wasm when it is
installed), `noop`. The host process is the weakest of these boxes: a stranger's docker task
(`ExecutionRequest.stranger`) is run there only if HOST_FALLBACK_FOR allows it. Everything
an engine needs on disk is prepared by `Workspace`; anything that goes wrong before or
around the task becomes a failed outcome with a sentence, never an exception for the runner
to interpret.
"""

from __future__ import annotations

import logging
import threading

from klippfisk.engine.clock import SYSTEM_CLOCK, Clock
from klippfisk.engine.executors.base import (
    ExecutionHooks,
    ExecutionOutcome,
    ExecutionRequest,
    ExecutorError,
)
from klippfisk.engine.executors.local.docker import DockerEngine
from klippfisk.engine.executors.local.host import HostProcessEngine
from klippfisk.engine.executors.local.noop import NoopEngine
from klippfisk.engine.executors.local.python_wasm import PythonWasmEngine, find_python_wasm
from klippfisk.engine.executors.local.wasm import WasmEngine
from klippfisk.engine.executors.local.wasm_cache import ModuleCache
from klippfisk.engine.executors.local.workspace import StagingCut, Workspace, task_network
from klippfisk.engine.settings import ExecutorSettings, Settings

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)


class LocalExecutor:
    """Runs wasm, docker and noop tasks locally (see the module docstring)."""

    name = "local"

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock  # executions' deadlines (ExecutionTimeout) are kept on it
        cache = ModuleCache(settings.executor.cache_dir or settings.data_dir / "cache" / "wasm")
        self.wasm = WasmEngine(cache, settings.executor)
        self.docker = DockerEngine(settings.executor.docker, settings.executor.pull)
        self.host = HostProcessEngine()
        python = find_python_wasm(settings.executor)
        self.python = python and PythonWasmEngine(python, cache, settings.executor)
        self.noop = NoopEngine()

    def close(self) -> None:
        self.docker.close()

    def supports(self, engine_type: str) -> bool:
        return engine_type.lower() in ("wasm", "docker", "noop")

    def run(
        self, request: ExecutionRequest, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        engine_type = str((request.task.get("Engine") or {}).get("Type", ""))
        if not self.supports(engine_type):
            return ExecutionOutcome(error=f"the local executor does not support {engine_type}")
        if cancel.is_set():
            return ExecutionOutcome(cancelled=True, error="stopped before it started")
        try:
            _admit_network(request.task, self.settings.executor)
            engine = self._engine(engine_type.lower(), request)
            with Workspace.open(request, self.settings, cancel, self.clock) as workspace:
                return engine.run(workspace, hooks, cancel)
        except StagingCut as exc:
            return ExecutionOutcome(
                error=str(exc), timed_out=exc.timed_out, cancelled=exc.cancelled
            )
        except ExecutorError as exc:
            return ExecutionOutcome(error=str(exc))
        except OSError as exc:
            log.exception("execution %s failed on a host error", request.execution_id)
            return ExecutionOutcome(
                error=f"the local executor hit a host error ({exc}); check disk space and "
                "permissions of the data directory"
            )

    def _engine(
        self, engine_type: str, request: ExecutionRequest
    ) -> WasmEngine | DockerEngine | HostProcessEngine | PythonWasmEngine | NoopEngine:
        """The strongest box this machine has for the task, chosen before anything is
        staged for it: a refusal costs no download."""
        if engine_type == "wasm":
            return self.wasm
        if engine_type == "noop":
            return self.noop
        if self.docker.available():
            return self.docker
        wants_network = task_network(request.task) != "none"  # python.wasm has no sockets
        params = (request.task.get("Engine") or {}).get("Params") or {}
        if self.python and not wants_network and PythonWasmEngine.accepts(params):
            return self.python
        _admit_host_fallback(request.stranger, self.settings.executor)
        return self.host


def _admit_host_fallback(stranger: str, settings: ExecutorSettings) -> None:
    """Refuse to run a docker task as a host process unless the operator allows it for
    whoever sent the job: the host sandbox is weaker than a container, so by default only
    the operator's own jobs may use it; a stranger's need Docker (or python.wasm)."""
    allowed = settings.host_fallback_for
    if allowed == "everyone" or (allowed == "operator" and not stranger):
        return
    setting = f"KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR={allowed}"
    if allowed == "none":
        raise ExecutorError(
            "This docker task needs a Docker daemon: no daemon answers, and running docker "
            f"tasks as host processes is switched off ({setting}). Start Docker (or set "
            "DOCKER_HOST), or (operators) set KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR=operator "
            "to run your own jobs' tasks in the host sandbox."
        )
    raise ExecutorError(
        f"This job came from a stranger ({stranger}) and needs a Docker daemon: the "
        f"host-process fallback is for the operator's own jobs ({setting}). Start Docker "
        "(or set DOCKER_HOST), use a wasm task or a python code-runner job (python.wasm), "
        "or (operators) set KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR=everyone to run strangers' "
        "tasks in the host sandbox too."
    )


def _admit_network(task: dict, settings: ExecutorSettings) -> None:
    """Refuse a networked task unless the operator allows them, as a Bacalhau compute node
    does: a job spec alone must not open the host's network to whatever the task runs."""
    network = task_network(task)
    if network != "none" and not settings.allow_networked_jobs:
        raise ExecutorError(
            f"The task asks for Network {network.capitalize()}, and this executor does not "
            "run networked jobs; use Network None, or (operators) set "
            "KLIPPFISK_EXECUTOR__ALLOW_NETWORKED_JOBS=true to allow them."
        )
