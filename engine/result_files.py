"""Reading a result folder as data: regular files and directories only, within bounds.

A task writes its result folder, so everything in it is the task's choice, links included. A
reader that follows `ln -s /etc/shadow shadow` hands a host file to whoever downloads the
results; one that follows `ln -s ../../.. up` copies every job's results and, with a loop
(`ln -s . loop`), never ends. So every reader of a result folder (`job get`, the result
cache) goes through this one walk: it holds each directory open and reaches every entry
through that descriptor, never by path (a name swapped for a link between a check and an
open cannot redirect it), takes regular files and directories, and skips anything else – a
link, a device, a fifo, a socket – saying so. The bytes and entries it takes are bounded
(`ResultsSettings`): a task cannot make a reader copy without end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["CopyReport", "ResultFile", "ResultLimits", "Skipped", "copy_results", "walk_results"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a fifo cannot block
PIECE = 1024 * 1024
MAX_DEPTH = 64  # each level holds a descriptor open; results are never nested deeper


@dataclass(frozen=True)
class ResultLimits:
    """How much one reading of a result folder takes at most."""

    max_bytes: int
    max_files: int  # entries looked at, directories and skipped ones included


@dataclass(frozen=True)
class Skipped:
    """An entry left out, and why (a sentence fragment: "a symbolic link to /etc/shadow")."""

    path: PurePosixPath
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


@dataclass
class CopyReport:
    """What a walk took (regular files, their bytes) and what it left out."""

    files: int = 0
    bytes: int = 0
    entries: int = 0  # files, directories and skipped entries looked at
    skipped: list[Skipped] = field(default_factory=list)
    stopped: str = ""  # why the walk ended before the folder did (a limit), "" when it did not

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.stopped


@dataclass(frozen=True)
class ResultFile:
    """A regular file of the folder, open for reading (`fd`) while the walk yields it."""

    path: PurePosixPath
    fd: int
    size: int
    mode: int
    dir_fd: int  # its directory, open: `name` in it is this very file (see `copy_results`)
    name: str


class _Stop(Exception):
    """A limit was reached: the walk ends here."""


def walk_results(
    source: Path, limits: ResultLimits, report: CopyReport
) -> Iterator[PurePosixPath | ResultFile]:
    """Every directory (as its relative path, parents first) and regular file (open) below
    `source`, within `limits`; what it leaves out goes into `report`. A file is open only
    until the next item is asked for."""
    fd = os.open(source, _OPEN_DIR)
    try:
        yield from _walk(fd, PurePosixPath(), limits, report)
    except _Stop as stop:
        report.stopped = str(stop)
    finally:
        os.close(fd)


def _walk(
    dir_fd: int, here: PurePosixPath, limits: ResultLimits, report: CopyReport
) -> Iterator[PurePosixPath | ResultFile]:
    room = limits.max_files - report.entries + 1  # one more than fits: the limit is seen
    with os.scandir(dir_fd) as listing:
        names = sorted(itertools.islice((entry.name for entry in listing), max(room, 1)))
    for name in names:
        path = here / name
        _count(path, limits, report)
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode) and len(path.parts) > MAX_DEPTH:
            report.skipped.append(Skipped(path, f"nested deeper than {MAX_DEPTH} directories"))
        elif stat.S_ISDIR(info.st_mode):
            yield from _directory(dir_fd, name, path, limits, report)
        elif stat.S_ISREG(info.st_mode):
            yield from _file(dir_fd, name, path, limits, report)
        else:
            report.skipped.append(Skipped(path, _kind(dir_fd, name, info.st_mode)))


def _count(path: PurePosixPath, limits: ResultLimits, report: CopyReport) -> None:
    report.entries += 1
    if report.entries > limits.max_files:
        raise _Stop(f"more than {limits.max_files} entries; the rest, from {path} on, was left out")


def _directory(
    parent: int, name: str, path: PurePosixPath, limits: ResultLimits, report: CopyReport
) -> Iterator[PurePosixPath | ResultFile]:
    try:
        fd = os.open(name, _OPEN_DIR, dir_fd=parent)
    except OSError as exc:  # swapped for a link since we looked: O_NOFOLLOW refused it
        report.skipped.append(Skipped(path, f"not opened as a directory ({exc.strerror})"))
        return
    try:
        yield path
        yield from _walk(fd, path, limits, report)
    finally:
        os.close(fd)


def _file(
    parent: int, name: str, path: PurePosixPath, limits: ResultLimits, report: CopyReport
) -> Iterator[ResultFile]:
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=parent)
    except OSError as exc:
        report.skipped.append(Skipped(path, f"not opened as a file ({exc.strerror})"))
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped since we looked
            report.skipped.append(Skipped(path, _kind(parent, name, info.st_mode)))
            return
        if report.bytes + info.st_size > limits.max_bytes:
            raise _Stop(
                f"more than {limits.max_bytes} bytes; the rest, from {path} on, was left out"
            )
        os.set_blocking(fd, True)
        report.files += 1
        report.bytes += info.st_size
        yield ResultFile(path, fd, info.st_size, info.st_mode, parent, name)
    finally:
        os.close(fd)


def _kind(dir_fd: int, name: str, mode: int) -> str:
    """What an entry that is not data is, in words."""
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            return f"a symbolic link to {os.readlink(name, dir_fd=dir_fd)}, not followed"
        return "a symbolic link, not followed"
    if stat.S_ISFIFO(mode):
        return "a fifo, not read"
    if stat.S_ISSOCK(mode):
        return "a socket, not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not read"
    return "not a regular file, not read"


def copy_results(
    source: Path, target: Path, limits: ResultLimits, *, link: bool = False
) -> CopyReport:
    """Copy the regular files and directories of `source` into `target` (created; it may
    exist empty), never following or recreating a link; with `link`, hard-link the files
    instead of copying their bytes where the file system allows (the result cache)."""
    report = CopyReport()
    target.mkdir(parents=True, exist_ok=True)
    for item in walk_results(source, limits, report):
        if isinstance(item, PurePosixPath):
            (target / item).mkdir(exist_ok=True)
        elif not (link and _linked(item, target / item.path)):
            _copy(item, target / item.path)
    return report


def _linked(item: ResultFile, target: Path) -> bool:
    """Hard-link the file's name to `target`, when that name still is this very file."""
    try:
        os.link(item.name, target, src_dir_fd=item.dir_fd, follow_symlinks=False)
    except OSError:
        return False
    same = os.stat(target, follow_symlinks=False)
    mine = os.fstat(item.fd)
    if (same.st_dev, same.st_ino) == (mine.st_dev, mine.st_ino):
        return True
    target.unlink()  # the name changed under us: copy from the open file instead
    return False


def _copy(item: ResultFile, target: Path) -> None:
    """At most the size the file had when opened: a file still growing cannot pass the
    byte bound. Read and execute bits are kept, never setuid, setgid or sticky: a reader
    running as root must not make a task's file a setuid program of its own."""
    left = item.size
    with open(target, "xb") as out:
        os.fchmod(out.fileno(), item.mode & 0o755)
        while left > 0:
            piece = os.read(item.fd, min(PIECE, left))
            if not piece:
                break
            out.write(piece)
            left -= len(piece)
