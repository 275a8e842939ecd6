"""What the eventsourcing library itself costs for the same lifecycle: the reference the
ledger's target was set from.

Issue 3 set its target from three figures measured with this library: raw sqlite3, the
library saving a job's events all at once, and the library loading, changing and saving per
command. This module measures the library's side again, beside our raw floor, with the
smallest aggregate that has the lifecycle's five events (no guards, no hash chain, no read
models) on the same SQLite file settings as the ledger (WAL, the same `synchronous`), so the
note can say how much of any gap is the library and how much is ours.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from klippfisk.engine.persistence.store_env import SQLITE_FACTORY

__all__ = ["BareLibrary"]


class _BareJob(Aggregate):
    """The lifecycle's five events and nothing else."""

    @event("Submitted")
    def __init__(self, job: dict[str, Any], reason: str) -> None:
        self.job = job
        self.state = "Pending"

    @event("Queued")
    def queue(self, reason: str) -> None:
        self.state = "Queued"

    @event("ExecutionCreated")
    def create_execution(self, execution_id: str, reason: str) -> None:
        self.execution_id = execution_id

    @event("ExecutionStarted")
    def start_execution(self, execution_id: str, reason: str) -> None:
        self.state = "Running"

    @event("ExecutionCompleted")
    def complete_execution(self, execution_id: str, stdout: str, reason: str) -> None:
        self.state = "Completed"


class BareLibrary:
    """The library's own Application over `_BareJob`, in a file of its own."""

    def __init__(self, path: Path, synchronous: str, job: dict[str, Any]) -> None:
        self.app = Application(
            {
                "PERSISTENCE_MODULE": SQLITE_FACTORY,
                "SQLITE_DBNAME": str(path),
                "SQLITE_SYNCHRONOUS": synchronous,
            }
        )
        self.job = job

    def write(self, jobs: int, *, per_command: bool) -> float:
        """Jobs per second: all five events saved at once per job, or (`per_command`) saved
        after every command with the aggregate kept in memory (an aggregate cache, no load)."""
        save = self.app.save
        started = time.perf_counter()
        for _ in range(jobs):
            job = _BareJob(self.job, "submitted")
            if per_command:
                save(job)
            job.queue("queued")
            if per_command:
                save(job)
            job.create_execution("e-1", "created")
            if per_command:
                save(job)
            job.start_execution("e-1", "started")
            if per_command:
                save(job)
            job.complete_execution("e-1", "ok\n", "completed")
            save(job)
        return jobs / (time.perf_counter() - started)

    def close(self) -> None:
        self.app.close()
