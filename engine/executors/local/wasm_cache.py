"""Compiled wasm modules, kept on disk so a module is compiled once per machine.

Compiling a large module (CPython's 26 MB python.wasm) takes seconds; loading its
serialized form takes well under a millisecond because wasmtime maps the file. Serialized
code is only valid for the wasmtime build and engine settings that made it, so the key is
the module's sha-256 plus the wasmtime version plus a fingerprint of the engine settings.
The runner compiles (once) and hands the file to the process that runs the task, which maps
it with an engine of the same settings (`engine_config`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import wasmtime

from klippfisk.engine.executors.base import ExecutorError

__all__ = ["ModuleCache", "engine_config"]

log = logging.getLogger(__name__)


def engine_config(fuel: bool) -> wasmtime.Config:
    """The settings of every engine that compiles or runs a task's module: epoch interruption
    (a deadline inside the runtime), and fuel metering when a CPU budget is set."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    return config


class ModuleCache:
    """A directory of serialized compilations, each made once, from module files."""

    def __init__(self, cache_dir: Path, max_file_digests: int = 256) -> None:
        self.cache_dir = cache_dir
        self.wasmtime_version = version("wasmtime")
        self.max_file_digests = max_file_digests
        self._file_digests: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._engines: dict[bool, wasmtime.Engine] = {}
        self._lock = threading.Lock()

    @property
    def file_digest_count(self) -> int:
        """How many file digests are remembered (at most `max_file_digests`)."""
        return len(self._file_digests)

    def compiled(
        self, module: Path, *, fuel: bool, progress: Callable[[str], None] = lambda _: None
    ) -> Path:
        """The file holding `module` compiled for an engine of `engine_config(fuel)`:
        compiled only on a miss, and again when the cached file is unusable. A compile is
        told to `progress` before and after: a large one (python.wasm) is seconds of silence."""
        engine = self._engine(fuel)
        digest = self._file_digest(module)
        cached = self.cache_dir / f"{digest}-{self.wasmtime_version}-epoch-fuel{int(fuel)}.cwasm"
        if cached.exists():
            try:
                wasmtime.Module.deserialize_file(engine, str(cached))
                return cached
            except wasmtime.WasmtimeError as exc:  # stale or damaged: compile it again
                log.warning("discarding unusable cached module %s: %s", cached, exc)
        size_mb = module.stat().st_size / 1e6
        progress(
            f"compiling {module.name} ({size_mb:.0f} MB) for this machine, once: later runs "
            f"load it from {self.cache_dir}..."
        )
        began = time.monotonic()
        try:
            compiled = wasmtime.Module(engine, module.read_bytes())
        except wasmtime.WasmtimeError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise ExecutorError(
                f"The entry module is not a valid WebAssembly module ({first_line}); check "
                "that EntryModule points at a .wasm file built for wasm32-wasi."
            ) from exc
        self._store(cached, compiled.serialize())
        progress(f"compiled {module.name} in {time.monotonic() - began:.1f} s")
        return cached

    def _engine(self, fuel: bool) -> wasmtime.Engine:
        """One engine per setting, for compiling: the runs themselves have engines of their own."""
        with self._lock:
            if fuel not in self._engines:
                self._engines[fuel] = wasmtime.Engine(engine_config(fuel))
            return self._engines[fuel]

    def _file_digest(self, path: Path) -> str:
        """The file's sha-256, remembered by what identifies its content (device, inode, size,
        mtime, ctime: a rewrite changes ctime) rather than its path, which is per execution for
        staged modules. Least recently used first out, so a long `serve` stays bounded while
        python.wasm, used by every python task, stays in."""
        stat = path.stat()
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        with self._lock:
            digest = self._file_digests.get(key)
            if digest is not None:
                self._file_digests.move_to_end(key)
                return digest
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        with self._lock:
            self._file_digests[key] = digest
            while len(self._file_digests) > self.max_file_digests:
                self._file_digests.popitem(last=False)
        return digest

    def _store(self, path: Path, data: bytes) -> None:
        """Write atomically: concurrent workers may compile the same module at once."""
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
