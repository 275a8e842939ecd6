"""Compiled wasm modules, kept on disk so a module is compiled once per machine.

Compiling a large module (CPython's 26 MB python.wasm) takes seconds; loading its
serialized form takes well under a millisecond because wasmtime maps the file. Serialized
code is only valid for the wasmtime build and engine settings that made it, so the key is
the module's sha-256 plus the wasmtime version plus a fingerprint of the engine settings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import wasmtime

from engine.executors.base import ExecutorError

__all__ = ["ModuleCache"]

log = logging.getLogger(__name__)


class ModuleCache:
    """Loads modules through a directory of serialized compilations."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.wasmtime_version = version("wasmtime")
        self._file_digests: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def load(self, engine: wasmtime.Engine, wasm: bytes, fingerprint: str) -> wasmtime.Module:
        """A module for `engine` from raw bytes, compiled only on a cache miss."""
        return self._load(engine, hashlib.sha256(wasm).hexdigest(), lambda: wasm, fingerprint)

    def load_file(self, engine: wasmtime.Engine, path: Path, fingerprint: str) -> wasmtime.Module:
        """Like `load`, for a file; its digest is remembered while size and mtime hold."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._file_digests.get(key)
        if digest is None:
            with path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            self._file_digests[key] = digest
        return self._load(engine, digest, path.read_bytes, fingerprint)

    def _load(
        self,
        engine: wasmtime.Engine,
        digest: str,
        read: Callable[[], bytes],
        fingerprint: str,
    ) -> wasmtime.Module:
        cached = self.cache_dir / f"{digest}-{self.wasmtime_version}-{fingerprint}.cwasm"
        if cached.exists():
            try:
                return wasmtime.Module.deserialize_file(engine, str(cached))
            except wasmtime.WasmtimeError as exc:  # stale or damaged: compile it again
                log.warning("discarding unusable cached module %s: %s", cached, exc)
        try:
            module = wasmtime.Module(engine, read())
        except wasmtime.WasmtimeError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise ExecutorError(
                f"The entry module is not a valid WebAssembly module ({first_line}); check "
                "that EntryModule points at a .wasm file built for wasm32-wasi."
            ) from exc
        self._store(cached, module.serialize())
        return module

    def _store(self, path: Path, data: bytes) -> None:
        """Write atomically: concurrent workers may compile the same module at once."""
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
