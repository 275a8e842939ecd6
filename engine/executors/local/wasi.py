"""Running one WASI program with wasmtime, in a child process the runner can end at once.

Isolation comes from WASI itself: the program sees only the directories preopened for it
(inputs read-only, result paths writable), has no sockets at all, and its memory is capped
by the store. Around that, each run is a child process of its own (`wasm_child`, forked by
`wasm_zygote`) in cgroups of its own: at the deadline or on a stop the runner SIGKILLs it,
whatever the module is doing (a blocking `sleep` in a host call included), and returns as
soon as it is dead, so the runner's slot is free at once; a runtime that dies (a panic, the
kernel's OOM killer) is that execution's error, never the runner's. The runner compiles the
module (once per machine: `ModuleCache`); the child maps the compiled file.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome, ExecutorError
from klippfisk.engine.executors.local.cgroups import TaskCgroup, cgroup_name
from klippfisk.engine.executors.local.sandbox import MAX_INODES
from klippfisk.engine.executors.local.wasi_writes import Preopen
from klippfisk.engine.executors.local.wasm_cache import ModuleCache
from klippfisk.engine.executors.local.wasm_child import BACKSTOP_SECONDS, ChildRequest
from klippfisk.engine.executors.local.wasm_zygote import ChildProcess, spawn_child
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.inputs import Mount
from klippfisk.engine.results import summarise

__all__ = ["WasiProgram", "run_wasi"]

log = logging.getLogger(__name__)

NODE = "local"
# What the child is charged beside the module's linear memory and its result files (pages it
# shares with the fork server are the server's): measured, python.wasm printing a line peaks
# at 5.5 MiB, and holding 100 MiB at 106 MiB. Ten times that, for room; the compiled module's
# size is added, since the child may be the first to read it from disk.
RUNTIME_BYTES = 64 * 1024 * 1024
CHILD_PIDS = 16  # the child and its threads (the deadline timer, wasmtime's own)


@dataclass(frozen=True)
class WasiProgram:
    """What to run: a module file, its entry function, argv, environment, and the mounts it
    may see (the entry module's own input need not be one of them)."""

    module: Path
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
    """Run `program` to its end, its deadline, a trap, or a stop; raises ExecutorError only
    if the module cannot start. Its stdout and stderr are capped (`CappedFile`), and so are
    its result paths (`wasi_writes`)."""
    compiled = cache.compiled(program.module, fuel=fuel is not None, progress=hooks.progress)
    limits = workspace.limits
    memory = limits.memory_bytes + limits.output_bytes + RUNTIME_BYTES + compiled.stat().st_size
    group = TaskCgroup.create(
        cgroup_name(workspace.request.job_id, workspace.request.execution_id),
        memory_bytes=memory,
        pids=CHILD_PIDS,
        cpu_millicores=limits.cpu_millicores,
    )
    try:
        request = _request(program, workspace, compiled, fuel, group.procs_files)
        return _supervise(request, group, workspace, hooks, cancel, notes)
    finally:
        group.remove()


def _supervise(
    request: ChildRequest,
    group: TaskCgroup,
    workspace: Workspace,
    hooks: ExecutionHooks,
    cancel: threading.Event,
    notes: list[str],
) -> ExecutionOutcome:
    """Start the child and follow it to its end under the execution's watchdog."""
    path, runtime_log = workspace.work_dir / "wasm-request.json", workspace.work_dir / "wasm.log"
    request.write(path)
    try:
        child = spawn_child(path, runtime_log)
    except OSError as exc:
        raise ExecutorError(f"The wasm runtime could not be started ({exc}).") from exc
    try:
        with workspace.watchdog(cancel, lambda: _end(child, group)) as dog:
            first = last = child.next()
            if first is not None and "ready" in first:
                notes = [*notes, *first["ready"], *_unenforced(group, workspace)]
                hooks.started(NODE, notes)  # armed first: whoever sees it Running sees a deadline
                last = child.next()
    finally:
        child.kill()  # never left behind; after `finished` it has nothing more to do
        child.close()
    cut = dog.cut_short(workspace.results, notes, killed="the wasm runtime was killed")
    if cut is not None:
        return cut
    if first is not None and "failed" in first:
        raise ExecutorError(first["failed"])
    if last is None or "finished" not in last:
        _log_last_words(runtime_log, workspace)
        return summarise(workspace.results, error=_died(child, group), notes=notes)
    return _finished(last, request, workspace, [*notes, *last["notes"]])


def _end(child: ChildProcess, group: TaskCgroup) -> None:
    """SIGKILL the child, through its cgroup and its pid (all there is without cgroups)."""
    group.kill()
    child.kill()


def _finished(
    report: dict[str, Any], request: ChildRequest, workspace: Workspace, notes: list[str]
) -> ExecutionOutcome:
    """The outcome of a child that saw its module to an end: an exit code, or a trap."""
    ending, results = report["finished"], workspace.results
    if "exit_code" in ending:
        return summarise(results, exit_code=ending["exit_code"], notes=notes)
    if ending["trap"] == "fuel":
        error = (
            f"the module used up its CPU budget of {request.fuel} fuel units; raise "
            "KLIPPFISK_EXECUTOR__WASM_FUEL or make the work smaller"
        )
    elif ending["trap"] == "deadline":
        return summarise(
            results,
            timed_out=True,
            error=f"execution timed out after {request.timeout_seconds:g}s; the runtime "
            f"interrupted the module itself, {BACKSTOP_SECONDS:g}s past the deadline",
            notes=notes,
        )
    else:
        error = (
            f"the module trapped ({ending['cause']}); this is a fault in the program, not "
            "the runner"
        )
    return summarise(results, error=error, notes=notes)


def _died(child: ChildProcess, group: TaskCgroup) -> str:
    """Why a child ended without seeing its module to an end, in a sentence."""
    if group.oom_killed:
        return (
            "the wasm runtime went over its memory limit (Resources.Memory, plus its result "
            "files and the runtime itself) and the kernel killed it; ask for more with "
            "Resources.Memory, or use less"
        )
    if child.status is None:
        how = "its fork server ended"
    elif child.status < 0:
        how = f"killed by {signal.Signals(-child.status).name}"
    else:
        how = f"exit status {child.status}"
    return (
        f"the wasm runtime ended abnormally ({how}) before the module did; the execution "
        "failed, and the runner's log (level INFO) has the runtime's last words"
    )


def _log_last_words(runtime_log: Path, workspace: Workspace) -> None:
    """The end of a dead runtime's own output (a panic, a traceback), for the operator only."""
    try:
        text = runtime_log.read_bytes()[-2000:].decode(errors="replace")
    except OSError:
        return
    log.info("wasm runtime of %s ended abnormally: %s", workspace.request.execution_id, text)


def _unenforced(group: TaskCgroup, workspace: Workspace) -> list[str]:
    """A note when Resources.CPU asks for a cap no cgroup could keep."""
    millicores = workspace.limits.cpu_millicores
    if not millicores or "cpu" in group.enforced:
        return []
    return [f"not enforced: cpu {millicores}m (a CPU cap takes a cgroup, which takes root)"]


def _request(
    program: WasiProgram,
    workspace: Workspace,
    compiled: Path,
    fuel: int | None,
    cgroup_procs: list[str],
) -> ChildRequest:
    limits, results = workspace.limits, workspace.results
    scratch = workspace.work_dir / "wasi-results"
    scratch.mkdir()
    return ChildRequest(
        module=str(compiled),
        fuel=fuel,
        memory_bytes=limits.memory_bytes,
        timeout_seconds=limits.timeout_seconds,
        entrypoint=program.entrypoint,
        argv=list(program.argv),
        env=dict(program.env),
        preopens=_preopens(program.mounts, workspace.work_dir / "wasi-view", results.path),
        scratch=str(scratch),
        output_bytes=limits.output_bytes,
        max_files=MAX_INODES,
        stdout=str(results.stdout),
        stderr=str(results.stderr),
        cgroup_procs=cgroup_procs,
    )


def _preopens(mounts: Sequence[Mount], view: Path, results: Path) -> list[Preopen]:
    """WASI preopens directories only: file mounts are linked into a read-only view dir.
    Writable directories inside the results directory are result paths: captured."""
    preopens = []
    file_dirs: dict[str, Path] = {}
    for mount in mounts:
        if mount.source.is_dir():
            captured = not mount.read_only and mount.source.is_relative_to(results)
            preopens.append(Preopen(str(mount.source), mount.target, mount.read_only, captured))
            continue
        parent = str(PurePosixPath(mount.target).parent)
        holder = file_dirs.setdefault(parent, view / str(len(file_dirs)))
        holder.mkdir(parents=True, exist_ok=True)
        _link_or_copy(mount.source, holder / PurePosixPath(mount.target).name)
    preopens += [Preopen(str(holder), parent, True) for parent, holder in file_dirs.items()]
    return preopens


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, dest)
