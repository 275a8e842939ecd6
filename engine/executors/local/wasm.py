"""The `wasm` engine: a task's WASI module run by wasmtime, in a process of its own.

Bacalhau's wasm engine names its module by `EntryModule`: in current jobs a string naming
one of the task's inputs (by Target or Alias), in older ones an input source of its own.
Both are accepted; the module's bytes come from the staged input either way.
"""

from __future__ import annotations

import posixpath
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome, ExecutorError
from klippfisk.engine.executors.local.wasi import WasiProgram, run_wasi
from klippfisk.engine.executors.local.wasm_cache import ModuleCache
from klippfisk.engine.executors.local.workspace import Workspace, stage_watched
from klippfisk.engine.settings import ExecutorSettings

__all__ = ["WasmEngine"]

NOTE = "ran in wasmtime (WASI): inputs read-only, no network"


class WasmEngine:
    """Runs `wasm` tasks."""

    def __init__(self, cache: ModuleCache, settings: ExecutorSettings) -> None:
        self.cache = cache
        self.settings = settings

    def run(
        self, workspace: Workspace, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        params = workspace.engine_params
        if params.get("ImportModules"):
            raise ExecutorError(
                "ImportModules is not supported by the local executor; link the modules into "
                "one .wasm file and use it as EntryModule."
            )
        module = self._entry_module(params.get("EntryModule"), workspace, cancel)
        argv = [module.name, *[str(p) for p in params.get("Parameters") or []]]
        program = WasiProgram(
            module=module,
            entrypoint=str(params.get("Entrypoint") or "_start"),
            argv=argv,
            env=workspace.env,
            mounts=[m for m in workspace.mounts if m.source != module],
        )
        return run_wasi(
            program, workspace, self.cache, self.settings.wasm_fuel, hooks, cancel, [NOTE]
        )

    def _entry_module(self, entry: Any, workspace: Workspace, cancel: threading.Event) -> Path:
        if isinstance(entry, dict):  # the legacy form: an input source of its own
            source = {**entry, "Target": entry.get("Target") or "/entry.wasm"}
            staged = stage_watched(
                {"InputSources": [source]},
                workspace.work_dir / "entry",
                self.settings,
                workspace.limits,
                cancel,
                workspace.clock,
            )
            return staged[0].source
        if not entry:
            raise ExecutorError(
                "The wasm engine needs Params.EntryModule: the Target of the input holding "
                "the .wasm file."
            )
        wanted = _inside_path(str(entry))
        for mount in workspace.mounts:
            if mount.target == wanted and mount.source.is_file():
                return mount.source
            inside = PurePosixPath(wanted)
            if mount.source.is_dir() and inside.is_relative_to(mount.target):
                candidate = mount.source / inside.relative_to(mount.target)
                if candidate.is_file():
                    return _within(candidate, mount.source, entry)
        for index, spec in enumerate(workspace.request.task.get("InputSources") or []):
            if spec.get("Alias") == entry:
                return workspace.mounts[index].source
        raise ExecutorError(
            f"EntryModule {entry!r} is not one of the task's inputs; add an InputSource whose "
            f"Target is {wanted} (for example an inline data: URL of the .wasm file)."
        )


def _inside_path(entry: str) -> str:
    """EntryModule as a normalised absolute path inside the task; `..` is refused outright,
    since no honest spec needs it and it is how a path climbs out of a mount."""
    if ".." in PurePosixPath(entry).parts:
        raise ExecutorError(
            f"EntryModule {entry!r} contains '..'; give the module's plain path inside the "
            "task, such as /inputs/main.wasm."
        )
    return posixpath.normpath("/" + entry.lstrip("/"))


def _within(candidate: Path, root: Path, entry: str) -> Path:
    """`candidate` if it really lies in the mount `root` (a symlink may point out of it)."""
    if not candidate.resolve().is_relative_to(root.resolve()):
        raise ExecutorError(
            f"EntryModule {entry!r} leads outside its mount (a symbolic link?); point it at "
            "a module file inside one of the task's inputs."
        )
    return candidate
