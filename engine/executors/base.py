"""The executor port: what the runner asks of anything that runs a task.

An executor runs one execution of one task and blocks until it ends, reporting progress
through `ExecutionHooks` so the runner can turn it into ledger events as it happens. Cancel
comes in through a `threading.Event`; deadlines are the executor's to enforce because only
it can kill what it started.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from klippfisk.engine.run_output import RunOutput

__all__ = [
    "ExecutionHooks",
    "ExecutionOutcome",
    "ExecutionRequest",
    "Executor",
    "ExecutorError",
    "HOST_FALLBACK_NOTE",
    "PYTHON_WASM_NOTE",
    "RUN_OUTPUT_LIMIT",
]

# How the note of a docker task run as a sandboxed host process (no daemon answered) begins;
# `job run` finds it to say so in a line of its own, not only inside an event.
HOST_FALLBACK_NOTE = "ran on host, image not used"
# How the note of a python task run in CPython-on-WASI (no daemon answered) begins; the rest
# names the interpreter that really ran and the image that did not, for `job run` to repeat.
PYTHON_WASM_NOTE = "ran python in python.wasm:"
# Bacalhau keeps the first 2 KiB of stdout/stderr in RunOutput; the full text goes to files.
RUN_OUTPUT_LIMIT = 2048


class ExecutorError(Exception):
    """An execution could not be started or carried out (not a non-zero exit: that completes)."""


@dataclass(frozen=True)
class ExecutionRequest:
    """One execution of one task of a compiled job."""

    job_id: str
    execution_id: str
    job: dict[str, Any]
    task: dict[str, Any]
    task_cid: str
    results_dir: Path
    # Who sent the job when it was not the operator ("bluesky user did:plc:..."; "" for the
    # operator). The runner sets it from the job's recorded source; a request built in
    # process (the library, a benchmark) is the operator's own. A stranger's task never runs
    # as a plain host process unless the operator allows it (HOST_FALLBACK_FOR).
    stranger: str = ""


@dataclass
class ExecutionOutcome:
    """How an execution ended.

    output set and error None: completed (any exit code, as in Bacalhau). error set: failed.
    timed_out / cancelled say why it was cut short. notes carry facts worth recording in the
    ledger, e.g. "ran on host, image not used".
    """

    output: RunOutput | None = None
    error: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)


class ExecutionHooks(Protocol):
    """Callbacks an executor makes while it works; the runner records them."""

    def started(self, node: str, notes: list[str]) -> None: ...

    def progress(self, message: str) -> None:
        """A word on slow work before the start (compiling python.wasm the first time): for
        whoever waits, so the wait is not silent; not an event, the execution is not Running."""


class Executor(Protocol):
    """Runs tasks of the engine types it supports."""

    name: str

    def supports(self, engine_type: str) -> bool: ...

    def run(
        self, request: ExecutionRequest, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome: ...

    def close(self) -> None:
        """Release connections and other resources once no more runs will come."""
