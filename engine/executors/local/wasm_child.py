"""One WASI program run in a process of its own: what a wasm child does, start to end.

A blocking host call (python.wasm's `time.sleep`, a read) cannot be interrupted from inside
wasmtime, and a fault in the runtime (a Rust panic) aborts the whole process. So each wasm
execution runs in a child the runner can SIGKILL at once, at its deadline or on a stop, and
whose death is that execution's error, never the runner's. The child is forked by the
wasm fork server (`wasm_zygote`, which has wasmtime loaded already) and

1. joins the task's cgroups before anything else, and asks to be killed if the fork server
   dies (which it does when the runner does);
2. caps the size of every file it writes (RLIMIT_FSIZE) and puts the result paths on a
   capped tmpfs of its own (`wasi_writes`);
3. maps the module the runner compiled (`ModuleCache`), instantiates it within the task's
   memory and fuel, and keeps the epoch deadline as a second line behind the runner's kill:
   it interrupts the module on the child's own clock a little after the deadline;
4. runs it, copies the results out, and says what happened as JSON lines on its report
   pipe: `pid`, then `failed` (it could not start) or `ready` and `finished`.

Its own stdout and stderr are the runtime's log file, so a panic or a traceback lands there
and not before the user.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import threading
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import wasmtime

from klippfisk.engine.executors.base import ExecutorError
from klippfisk.engine.executors.local.output_cap import CappedFile, truncation_notes
from klippfisk.engine.executors.local.wasi_writes import Preopen, WriteCapture
from klippfisk.engine.executors.local.wasm_cache import engine_config
from klippfisk.engine.result_files import ResultLimits

__all__ = ["BACKSTOP_SECONDS", "ChildRequest", "run_child"]

PR_SET_PDEATHSIG = 1
BACKSTOP_SECONDS = 5.0  # after the deadline, when the child interrupts the module itself


@dataclass(frozen=True)
class ChildRequest:
    """Everything a child needs, as plain data (it travels as a JSON file)."""

    module: str  # the compiled module: a file of the runner's ModuleCache
    fuel: int | None
    memory_bytes: int
    timeout_seconds: float
    entrypoint: str
    argv: list[str]
    env: dict[str, str]
    preopens: list[Preopen]
    scratch: str  # an empty directory the result paths' tmpfs is mounted on
    output_bytes: int  # stdout, stderr, each file, and all result files together
    max_files: int  # entries in the result paths
    stdout: str
    stderr: str
    cgroup_procs: list[str]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> ChildRequest:
        data = json.loads(path.read_text())
        data["preopens"] = [Preopen(**p) for p in data["preopens"]]
        return cls(**data)


def run_child(request_path: str, report_fd: int, parent: int) -> None:
    """The child's whole life, from the fork server's fork to its report of the end."""
    request = ChildRequest.read(Path(request_path))
    for procs in request.cgroup_procs:  # first: everything after is the task's
        Path(procs).write_text(str(os.getpid()))
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the fork server died before the line above
        return
    report = _Report(report_fd)
    report.send(pid=os.getpid())
    os.chdir(Path(request_path).parent)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (request.output_bytes, request.output_bytes))
    limits = ResultLimits(max_bytes=request.output_bytes, max_files=request.max_files)
    writes = WriteCapture.open(request.preopens, Path(request.scratch), limits)
    with (
        closing(CappedFile(Path(request.stdout), request.output_bytes)) as out,
        closing(CappedFile(Path(request.stderr), request.output_bytes)) as err,
    ):
        try:
            engine, store, entry = _instantiate(request, writes, out, err)
        except ExecutorError as exc:
            report.send(failed=str(exc))
            return
        report.send(ready=writes.notes(request.output_bytes))
        backstop = threading.Timer(
            request.timeout_seconds + BACKSTOP_SECONDS, engine.increment_epoch
        )
        backstop.daemon = True
        backstop.start()
        ending = _call(entry, store)
    notes = truncation_notes({"stdout": out, "stderr": err}) + writes.copy_out()
    report.send(finished=ending, notes=notes)


class _Report:
    """JSON lines on the report pipe, each written whole."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, **message: Any) -> None:
        os.write(self.fd, json.dumps(message).encode() + b"\n")


def _call(entry: wasmtime.Func, store: wasmtime.Store) -> dict[str, Any]:
    """Run the entry function: its exit code, or the kind and cause of its trap."""
    try:
        entry(store)
    except wasmtime.ExitTrap as exc:
        return {"exit_code": exc.code}
    except wasmtime.Trap as exc:
        kinds = {wasmtime.TrapCode.OUT_OF_FUEL: "fuel", wasmtime.TrapCode.INTERRUPT: "deadline"}
        cause = str(exc).strip().splitlines()[-1].strip()
        return {"trap": kinds.get(exc.trap_code, "fault"), "cause": cause}
    return {"exit_code": 0}


def _instantiate(
    request: ChildRequest, writes: WriteCapture, stdout: CappedFile, stderr: CappedFile
) -> tuple[wasmtime.Engine, wasmtime.Store, wasmtime.Func]:
    """A fresh engine (its epoch is this run's alone), a store within the task's memory, and
    the entry function, or an ExecutorError saying why the module cannot start."""
    engine = wasmtime.Engine(engine_config(request.fuel is not None))
    try:
        module = wasmtime.Module.deserialize_file(engine, request.module)
    except wasmtime.WasmtimeError as exc:
        raise ExecutorError(_instantiate_message(exc)) from exc
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=request.memory_bytes)
    store.set_epoch_deadline(1)
    if request.fuel is not None:
        store.set_fuel(request.fuel)
    store.set_wasi(_wasi_config(request, writes, stdout, stderr))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    try:
        instance = linker.instantiate(store, module)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raise ExecutorError(_instantiate_message(exc)) from exc
    entry = instance.exports(store).get(request.entrypoint)
    if not isinstance(entry, wasmtime.Func):
        raise ExecutorError(
            f"The module exports no function {request.entrypoint!r}; set Entrypoint to one of "
            f"{sorted(e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType))}."
        )
    return engine, store, entry


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
    request: ChildRequest, writes: WriteCapture, stdout: CappedFile, stderr: CappedFile
) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(request.argv)
    wasi.env = list(request.env.items())
    wasi.stdout_custom = stdout.write
    wasi.stderr_custom = stderr.write
    for host, guest, read_only in writes.preopens:
        wasi.preopen_dir(host, guest, fs_mutable=not read_only)
    return wasi
