"""Where an execution's results live, how they are summarised for the ledger, and how its
output files are read while the task still writes them (`OutputFollower`, for every way in
that shows a task's output as it comes).

Every execution gets its own directory, `<results_dir>/<job>/<execution>/`, laid out as
Bacalhau's `local` publisher lays it out: `stdout`, `stderr`, `exitCode`, and one directory
per ResultPath named after it. The ledger only keeps the first `RUN_OUTPUT_LIMIT` bytes of
each stream (Bacalhau's RunOutput rule), so the full text is always on disk.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from klippfisk.engine.executors.base import RUN_OUTPUT_LIMIT, ExecutionOutcome, ExecutorError
from klippfisk.engine.result_files import CopyReport, ResultLimits, copy_results
from klippfisk.engine.run_output import RunOutput
from klippfisk.engine.settings import Settings

__all__ = [
    "CACHEABLE_INPUTS",
    "PIECE_BYTES",
    "CachedRun",
    "OutputFollower",
    "ResultCache",
    "ResultsDir",
    "cacheable",
    "execution_results_dir",
    "result_cache",
    "results_root",
    "summarise",
]


def results_root(settings: Settings) -> Path:
    """The directory holding every job's results (a setting, else under the data dir)."""
    return settings.executor.results_dir or settings.data_dir / "results"


def result_cache(settings: Settings) -> ResultCache:
    """The opt-in result cache, kept beside the results it points at."""
    return ResultCache(results_root(settings) / "cache")


def execution_results_dir(settings: Settings, job_id: str, execution_id: str) -> Path:
    """`<results_root>/<job>/<execution>/`; ids are ours (j-/e- uuids), so safe as names."""
    return results_root(settings) / job_id / execution_id


@dataclass(frozen=True)
class ResultsDir:
    """One execution's results directory and the files in it."""

    path: Path

    @property
    def stdout(self) -> Path:
        return self.path / "stdout"

    @property
    def stderr(self) -> Path:
        return self.path / "stderr"

    @property
    def exit_code(self) -> Path:
        return self.path / "exitCode"

    def prepare(self, result_names: list[str]) -> dict[str, Path]:
        """Create the directory and one writable dir per result path (streams come later)."""
        self.path.mkdir(parents=True, exist_ok=True)
        dirs = {}
        for name in result_names:
            if not name or name in (".", "..") or "/" in name or "\\" in name:
                raise ExecutorError(
                    f"Result path name {name!r} cannot be a directory name; use a plain name "
                    "such as outputs."
                )
            target = self.path / name
            target.mkdir(parents=True, exist_ok=True)
            dirs[name] = target
        return dirs

    def write_exit_code(self, code: int) -> None:
        """Record how the run ended; a run that printed nothing still gets its stream files."""
        for stream in (self.stdout, self.stderr):
            if not stream.exists():
                stream.touch()
        self.exit_code.write_text(f"{code}\n", encoding="ascii")

    def head(self, stream: Path) -> tuple[str, bool]:
        """The first RUN_OUTPUT_LIMIT bytes of a stream as text, and whether there was more."""
        try:
            with _open_output(stream) as fh:
                data = fh.read(RUN_OUTPUT_LIMIT + 1)
        except FileNotFoundError:
            return "", False
        truncated = len(data) > RUN_OUTPUT_LIMIT
        return data[:RUN_OUTPUT_LIMIT].decode("utf-8", errors="replace"), truncated

    def published(self) -> dict[str, Any]:
        """The `local` publisher's result: a URL to this directory."""
        return {"Type": "local", "Params": {"URL": self.path.resolve().as_uri()}}

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


PIECE_BYTES = 64 * 1024  # an output file is read this much at a time, whatever its size


def _open_output(path: Path) -> BinaryIO:
    """An output file (`stdout`, `stderr`) open for reading, only when it is a regular file:
    a link, fifo or device in its place is never followed nor read, it counts as no file
    (FileNotFoundError), so a reader shows the ledger's head instead of a host file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileNotFoundError(errno.ENOENT, "a link, not an output file", str(path)) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(errno.ENOENT, "not a regular file", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class OutputFollower:
    """One output file (`stdout`, `stderr`) read as text from where the last read stopped.

    The file may still be growing: a task is writing it. Each read takes what it grew by
    since the offset, at most a piece at a time, so following an output of any size costs
    one piece of memory. The UTF-8 is decoded incrementally: a character cut by a piece
    boundary (or by the task, which wrote only part of it so far) is held back until the
    rest arrives, never shown as two replacement characters. Reads block: an async caller
    runs them off its event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str | None:
        """The text of at most one piece read on from the offset: "" when the file has not
        grown (or only by part of a character), None when there is no file (yet, or any
        more)."""
        try:
            with _open_output(self.path) as stream:
                stream.seek(self.offset)
                return self._decoded(stream.read(PIECE_BYTES))
        except FileNotFoundError:
            return None

    def read_grown(self) -> Iterator[str]:
        """The text of everything the file grew by up to now, a piece at a time; nothing
        when there is no file. What the task writes meanwhile is left for the next call,
        so a task that never stops writing cannot keep the caller here."""
        try:
            stream = _open_output(self.path)
        except FileNotFoundError:
            return
        with stream:
            end = os.fstat(stream.fileno()).st_size
            stream.seek(self.offset)
            while self.offset < end:
                piece = stream.read(min(PIECE_BYTES, end - self.offset))
                if not piece:  # the file was cut short under us
                    return
                yield self._decoded(piece)

    def flush(self) -> str:
        """The end of the output: a character still held back was cut off for good, and is
        shown as U+FFFD ("" when there is none)."""
        return self._decoder.decode(b"", final=True)

    def _decoded(self, piece: bytes) -> str:
        self.offset += len(piece)
        return self._decoder.decode(piece)


def summarise(
    results: ResultsDir,
    *,
    exit_code: int | None = None,
    error: str | None = None,
    timed_out: bool = False,
    cancelled: bool = False,
    notes: list[str] | None = None,
) -> ExecutionOutcome:
    """The outcome of a run: with an exit code (also written as `exitCode`), its output (the
    head of each stream, and the results published); otherwise the error that ended it."""
    outcome = ExecutionOutcome(
        error=error, timed_out=timed_out, cancelled=cancelled, notes=list(notes or [])
    )
    if exit_code is None:
        return outcome
    results.write_exit_code(exit_code)
    stdout, stdout_truncated = results.head(results.stdout)
    stderr, stderr_truncated = results.head(results.stderr)
    outcome.output = RunOutput(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=stdout_truncated,
        stderr_truncated=stderr_truncated,
        published_result=results.published() if error is None else None,
    )
    return outcome


# Input sources whose content the task_cid pins: inline data sits in the spec itself and an
# IPFS CID names its content. A URL or a host directory may hold something else next time.
CACHEABLE_INPUTS = frozenset({"inline", "ipfs"})


def cacheable(task: dict[str, Any]) -> bool:
    """Whether the task's results may be reused: only when its task_cid covers everything it
    reads, i.e. every input source is one whose content the spec pins."""
    sources = task.get("InputSources") or []
    return all(
        str((spec.get("Source") or {}).get("Type", "")).lower() in CACHEABLE_INPUTS
        for spec in sources
    )


@dataclass(frozen=True)
class CachedRun:
    """A completed execution the result cache holds: which it was, and its output."""

    execution_id: str
    output: RunOutput

    @property
    def folder(self) -> Path:
        """Where that execution's results are (the cache keeps only entries whose folder is)."""
        url = str((self.output.published_result or {}).get("Params", {}).get("URL", ""))
        return Path(url.removeprefix("file://"))

    def share_with(self, target: Path, limits: ResultLimits) -> CopyReport:
        """Give a reusing execution its own results folder: the same files, hard-linked (a
        copy across file systems), so every reader finds an execution's results in
        `<results>/<job>/<execution>`, cache hit or not. Only regular files and directories
        are shared (`copy_results`): a link the task left is not recreated there."""
        return copy_results(self.folder, target, limits, link=True)


_OUTPUT_FIELDS = tuple(f.name for f in fields(RunOutput))


class ResultCache:
    """Results of completed tasks by namespace and `task_cid`, to skip re-running the very
    same task.

    Opt-in (`job run --cache`), never the default: a task_cid says what ran, not that running
    it again would give the same answer (clocks, randomness, the network). Entries never cross
    namespaces (a namespace's stdout and results are its own), callers only offer tasks that
    are `cacheable`, only executions that exited 0 are kept, and an entry whose results
    directory is gone is ignored.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entry(self, namespace: str, task_cid: str) -> Path:
        """A file name from both keys, hashed so that no namespace can shape a path."""
        key = hashlib.sha256(json.dumps([namespace, task_cid]).encode()).hexdigest()
        return self.root / f"{key}.json"

    def get(self, namespace: str, task_cid: str) -> CachedRun | None:
        """The recorded run of `task_cid` in `namespace`, or None."""
        try:
            entry = json.loads(self._entry(namespace, task_cid).read_text())
            output = RunOutput(**{name: entry[name] for name in _OUTPUT_FIELDS})
            run = CachedRun(str(entry["execution_id"]), output)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        url = str((output.published_result or {}).get("Params", {}).get("URL", ""))
        if not url.startswith("file://") or not run.folder.is_dir():
            return None
        return run

    def put(
        self, namespace: str, task_cid: str, execution_id: str, outcome: ExecutionOutcome
    ) -> None:
        """Remember a completed execution (exit code 0 only)."""
        output = outcome.output
        if output is None or output.exit_code != 0 or outcome.error is not None:
            return
        if not output.published_result:
            return
        entry = {"execution_id": execution_id, **asdict(output)}
        self.root.mkdir(parents=True, exist_ok=True)
        target = self._entry(namespace, task_cid)
        tmp = target.with_name(f"{target.stem}.{execution_id}.tmp")  # one per writer
        tmp.write_text(json.dumps(entry))
        tmp.replace(target)
