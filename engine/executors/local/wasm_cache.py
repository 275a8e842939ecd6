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
from collections import OrderedDict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import wasmtime

from klippfisk.engine.executors.base import ExecutorError

__all__ = ["ModuleCache"]

log = logging.getLogger(__name__)


class ModuleCache:
    """Loads modules through a directory of serialized compilations."""

    def __init__(self, cache_dir: Path, max_file_digests: int = 256) -> None:
        self.cache_dir = cache_dir
        self.wasmtime_version = version("wasmtime")
        self.max_file_digests = max_file_digests
        self._file_digests: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def file_digest_count(self) -> int:
        """How many file digests are remembered (at most `max_file_digests`)."""
        return len(self._file_digests)

    def load(self, engine: wasmtime.Engine, wasm: bytes, fingerprint: str) -> wasmtime.Module:
        """A module for `engine` from raw bytes, compiled only on a cache miss."""
        return self._load(engine, hashlib.sha256(wasm).hexdigest(), lambda: wasm, fingerprint)

    def load_file(self, engine: wasmtime.Engine, path: Path, fingerprint: str) -> wasmtime.Module:
        """Like `load`, for a file; its digest is remembered while the file is unchanged."""
        digest = self._file_digest(path)
        return self._load(engine, digest, path.read_bytes, fingerprint)

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
