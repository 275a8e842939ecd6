"""Running one WASI program in-process with wasmtime, inside a workspace's limits.

Isolation comes from WASI itself: the program sees only the directories preopened for it
(inputs read-only, result paths writable), has no sockets at all, and its memory is capped
by the store. The wall clock and the runner's stop share one mechanism: each run has its
own wasmtime Engine with epoch interruption and a deadline of one tick, so bumping that
engine's epoch (from the watchdog) traps the program at its next loop back-edge or call.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import wasmtime

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome, ExecutorError
from klippfisk.engine.executors.local.output_cap import CappedFile, truncation_notes
from klippfisk.engine.executors.local.wasm_cache import ModuleCache
from klippfisk.engine.executors.local.watchdog import Watchdog
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.inputs import Mount
from klippfisk.engine.results import summarise

__all__ = ["WasiProgram", "run_wasi"]

NODE = "local"


@dataclass(frozen=True)
class WasiProgram:
    """What to run: a module (bytes or a file), its entry function, argv, environment, and
    the mounts it may see (the entry module's own input need not be one of them)."""

    module: bytes | Path
    entrypoint: str
    argv: Sequence[str]
    env: Mapping[str, str]
    mounts: Sequence[Mount]


def run_wasi(
    program: WasiProgram,
    workspace: Workspace,
    cache: ModuleCache,
    fuel: int | None,
    hooks: ExecutionHooks,
    cancel: threading.Event,
    notes: list[str],
) -> ExecutionOutcome:
    """Run `program` to its end, its deadline, a trap, or a stop; never raises for the task.

    Its stdout and stderr go through `CappedFile`s, so a chatty module cannot fill the disk.
    """
    cap = workspace.limits.output_bytes
    results = workspace.results
    trap: wasmtime.Trap | None = None
    exit_code = 0
    with (
        closing(CappedFile(results.stdout, cap)) as out,
        closing(CappedFile(results.stderr, cap)) as err,
    ):
        engine, store, entry = _instantiate(program, workspace, cache, fuel, out, err)
        with workspace.watchdog(cancel, engine.increment_epoch) as dog:
            hooks.started(NODE, notes)  # armed first: whoever sees it Running sees a deadline
            try:
                entry(store)
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            except wasmtime.Trap as exc:
                trap = exc
    notes = [*notes, *truncation_notes({"stdout": out, "stderr": err})]
    if trap is not None:
        return _trapped(trap, dog, workspace, fuel, notes)
    return summarise(results, exit_code=exit_code, notes=notes)


def _instantiate(
    program: WasiProgram,
    workspace: Workspace,
    cache: ModuleCache,
    fuel: int | None,
    stdout: CappedFile,
    stderr: CappedFile,
) -> tuple[wasmtime.Engine, wasmtime.Store, wasmtime.Func]:
    """A fresh engine (its epoch is this run's alone), a store within the task's memory, and
    the entry function, or an ExecutorError saying why the module cannot start."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel is not None
    engine = wasmtime.Engine(config)
    fingerprint = f"epoch-fuel{int(fuel is not None)}"
    if isinstance(program.module, Path):
        module = cache.load_file(engine, program.module, fingerprint)
    else:
        module = cache.load(engine, program.module, fingerprint)

    store = wasmtime.Store(engine)
    store.set_limits(memory_size=workspace.limits.memory_bytes)
    store.set_epoch_deadline(1)
    if fuel is not None:
        store.set_fuel(fuel)
    store.set_wasi(_wasi_config(program, workspace, stdout, stderr))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    try:
        instance = linker.instantiate(store, module)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raise ExecutorError(_instantiate_message(exc)) from exc
    entry = instance.exports(store).get(program.entrypoint)
    if not isinstance(entry, wasmtime.Func):
        raise ExecutorError(
            f"The module exports no function {program.entrypoint!r}; set Entrypoint to one of "
            f"{sorted(e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType))}."
        )
    return engine, store, entry


def _trapped(
    exc: wasmtime.Trap, dog: Watchdog, workspace: Workspace, fuel: int | None, notes: list[str]
) -> ExecutionOutcome:
    results = workspace.results
    cut = dog.cut_short(results, notes)
    if cut is not None:
        return cut
    if exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
        error = (
            f"the module used up its CPU budget of {fuel} fuel units; raise "
            "KLIPPFISK_EXECUTOR__WASM_FUEL or make the work smaller"
        )
    else:
        cause = str(exc).strip().splitlines()[-1].strip()
        error = f"the module trapped ({cause}); this is a fault in the program, not the runner"
    return summarise(results, error=error, notes=notes)


def _instantiate_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0]
    if "exceeds memory limits" in text:
        return (
            f"The module needs more memory than the task allows ({text}); raise "
            "Resources.Memory in the job spec."
        )
    if "unknown import" in text:
        return (
            f"The module imports something the local executor does not provide ({text}); "
            "build it for wasm32-wasi (wasi_snapshot_preview1) without other imports."
        )
    return f"The module could not be instantiated ({text})."


def _wasi_config(
    program: WasiProgram, workspace: Workspace, stdout: CappedFile, stderr: CappedFile
) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(program.argv)
    wasi.env = list(program.env.items())
    wasi.stdout_custom = stdout.write
    wasi.stderr_custom = stderr.write
    for host, guest, read_only in _preopens(program.mounts, workspace.work_dir / "wasi-view"):
        wasi.preopen_dir(str(host), guest, fs_mutable=not read_only)
    return wasi


def _preopens(mounts: Sequence[Mount], view: Path) -> list[tuple[Path, str, bool]]:
    """WASI preopens directories only: file mounts are linked into a read-only view dir."""
    preopens = []
    file_dirs: dict[str, Path] = {}
    for mount in mounts:
        if mount.source.is_dir():
            preopens.append((mount.source, mount.target, mount.read_only))
            continue
        parent = str(PurePosixPath(mount.target).parent)
        holder = file_dirs.setdefault(parent, view / str(len(file_dirs)))
        holder.mkdir(parents=True, exist_ok=True)
        _link_or_copy(mount.source, holder / PurePosixPath(mount.target).name)
    preopens += [(holder, parent, True) for parent, holder in file_dirs.items()]
    return preopens


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, dest)
