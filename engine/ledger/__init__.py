"""The ledger: where compiled jobs are recorded, changed by commands, and read back.

- application.py: `Ledger`, the eventsourcing Application (its commands and queries);
- submission.py: what a submission does (new job, repeat, new version, no changes);
- write_path.py: the change cycle (locks, the cache of recent jobs, batches, the write);
- queries.py: a list's arguments checked, a short id or name resolved;
- audit.py: `verify` (the hash chains), and what it reports;
- views.py: the frozen views it hands out; errors.py: its refusals.

The Job aggregate it records is klippfisk.engine.job; how events are stored is
klippfisk.engine.persistence.
"""

from __future__ import annotations

from klippfisk.engine.ledger.application import Ledger
from klippfisk.engine.ledger.audit import BrokenChain, VerifyReport
from klippfisk.engine.ledger.errors import (
    BadQuery,
    IdempotencyConflict,
    JobNotFound,
    NoChanges,
    StoreUnavailable,
)
from klippfisk.engine.ledger.views import ExecutionView, JobView, Page, Source, SubmitResult

__all__ = [
    "BadQuery",
    "BrokenChain",
    "ExecutionView",
    "IdempotencyConflict",
    "JobNotFound",
    "JobView",
    "Ledger",
    "NoChanges",
    "Page",
    "Source",
    "StoreUnavailable",
    "SubmitResult",
    "VerifyReport",
]
