"""Keeping a task's output from filling the disk.

A job can print gigabytes in seconds, so every stream file an engine writes for a task is
capped at the task's output limit (Resources.Disk, else the operator's
max_output_bytes). Where the engine itself writes the file (wasm's stdout callback, the
copy of a container's logs) a `CappedFile` keeps the first bytes and refuses the rest; the
host sandbox has the kernel refuse them instead (RLIMIT_FSIZE). Either way the outcome's
notes say which stream was cut and where, because a silent cut looks like a finished run.
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["CappedFile", "truncation_note", "truncation_notes"]


class CappedFile:
    """A binary file that takes at most `limit` bytes; later writes fail with EFBIG."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.written = 0
        self.truncated = False
        self._fh = path.open("wb", buffering=0)  # readable at once, by summarise

    def write(self, data: bytes) -> int:
        """Bytes taken (a short count at the cap), or -EFBIG once full, as WASI expects."""
        room = self.limit - self.written
        if len(data) > room:
            self.truncated = True
            if room <= 0:
                return -errno.EFBIG
            data = data[:room]
        self._fh.write(data)
        self.written += len(data)
        return len(data)

    def close(self) -> None:
        self._fh.close()


def truncation_note(stream: str, limit: int) -> str:
    return (
        f"{stream} output truncated at {limit} bytes (Resources.Disk, else "
        "KLIPPFISK_EXECUTOR__MAX_OUTPUT_BYTES)"
    )


def truncation_notes(files: dict[str, CappedFile]) -> list[str]:
    """One note per stream that hit its cap, named as the dict names it."""
    return [truncation_note(name, f.limit) for name, f in files.items() if f.truncated]
