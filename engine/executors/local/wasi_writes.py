"""Capping what a WASI program writes: its result paths on a private tmpfs, copied out after.

WASI writes straight into the directories preopened for it, so a module writing to a result
path could fill the host's disk. Run as root, the wasm child instead gives itself a mount
namespace of its own and mounts there one tmpfs, sized to the task's disk cap
(`Resources.Disk`, else the operator's) and with a bounded number of inodes, holding one
directory per result path; those are what it preopens. Nothing mounted there reaches the
host (/ is made private first), and the tmpfs goes with the child's namespace however the
child ends. After the module returns, the regular files and directories found there (never
links, devices or fifos) are copied to the host's result directories by the one safe copier
every reader of results uses (`copy_results`), within the same bounds; what it left out goes
into the execution's notes.

Without root (no mount is possible) the result paths are preopened as they are and only the
size of each file is capped (the child's RLIMIT_FSIZE): the notes say so. The same holds for
read-write local directories, which are the operator's, never captured.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from klippfisk.engine.result_files import ResultLimits, copy_results

__all__ = ["Preopen", "WriteCapture"]

CLONE_NEWNS = 0x20000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
NOTED_SKIPS = 5  # entries left out that the notes name; the rest are counted


@dataclass(frozen=True)
class Preopen:
    """A directory the program sees: the host's, where it appears, whether it is read-only,
    and whether it is a result path (`captured`: written on the tmpfs, copied out after)."""

    host: str
    guest: str
    read_only: bool
    captured: bool = False


@dataclass(frozen=True)
class WriteCapture:
    """A child's preopens as given (`given`) and how their writes are bounded: on the capped
    tmpfs at `scratch` (None when it could not be had) for result paths, per file otherwise."""

    given: list[Preopen]
    scratch: Path | None
    limits: ResultLimits

    @classmethod
    def open(cls, given: Sequence[Preopen], scratch: Path, limits: ResultLimits) -> WriteCapture:
        """Mount the capped tmpfs at `scratch` in a mount namespace of this process's own (it
        must have no threads yet) with a directory per result path; without a mount, the
        result paths stay the host's directories."""
        if not any(p.captured for p in given):
            return cls(list(given), None, limits)
        try:
            _private_tmpfs(scratch, limits)
        except OSError:
            return cls(list(given), None, limits)
        for index, preopen in enumerate(given):
            if preopen.captured:
                (scratch / str(index)).mkdir(mode=0o755)
        return cls(list(given), scratch, limits)

    @property
    def preopens(self) -> list[tuple[str, str, bool]]:
        """(host directory, guest path, read-only) for WASI: result paths on the tmpfs."""
        return [
            (str(self.scratch / str(i)) if self._on_tmpfs(p) else p.host, p.guest, p.read_only)
            for i, p in enumerate(self.given)
        ]

    def notes(self, file_bytes: int) -> list[str]:
        """What the execution's notes must say of the writable paths the tmpfs does not cap."""
        uncapped = [p.guest for p in self.given if not p.read_only and not self._on_tmpfs(p)]
        if not uncapped:
            return []
        captured = any(p.captured for p in self.given)
        why = " (a capped mount takes root)" if captured and self.scratch is None else ""
        return [
            f"writes through WASI to {', '.join(uncapped)} are capped per file only, at "
            f"{file_bytes} bytes each, not in total{why}"
        ]

    def copy_out(self) -> list[str]:
        """Copy each result path from the tmpfs to its host directory; notes on what was
        left out (links, special files, anything past the bounds)."""
        if self.scratch is None:
            return []
        notes = []
        for index, preopen in enumerate(self.given):
            if preopen.captured:
                report = copy_results(self.scratch / str(index), Path(preopen.host), self.limits)
                left_out = [str(s) for s in report.skipped[:NOTED_SKIPS]]
                if len(report.skipped) > NOTED_SKIPS:
                    left_out.append(f"and {len(report.skipped) - NOTED_SKIPS} more")
                if report.stopped:
                    left_out.append(report.stopped)
                if left_out:
                    notes.append(f"results in {preopen.guest} left out: {'; '.join(left_out)}")
        return notes

    def _on_tmpfs(self, preopen: Preopen) -> bool:
        return preopen.captured and self.scratch is not None


def _private_tmpfs(scratch: Path, limits: ResultLimits) -> None:
    """A mount namespace of this process's own, nothing in it shared with the host, and the
    capped tmpfs at `scratch`."""
    _check(_libc().unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    options = f"size={limits.max_bytes},nr_inodes={limits.max_files},mode=0700"
    _mount("tmpfs", str(scratch), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc().mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(result, f"mount {fstype or source} on {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
