"""The engine's public face: the job ledger, its states and errors.

`Ledger.open()` opens the store the settings name (a SQLite file under the user's data dir
by default, PostgreSQL by setting) and is all an adapter or an auditor needs: submit compiled
jobs, record what happens to them, and read, list, wait for and verify them.
"""

from engine.job import ExecutionState, IllegalTransition, JobState, LedgerError, Topic
from engine.ledger import (
    BadQuery,
    BrokenChain,
    ExecutionView,
    IdempotencyConflict,
    JobNotFound,
    JobView,
    Ledger,
    NoChanges,
    Page,
    Source,
    StoreUnavailable,
    SubmitResult,
    VerifyReport,
)
from engine.wire import rfc3339

__all__ = [
    "BadQuery",
    "BrokenChain",
    "ExecutionState",
    "ExecutionView",
    "IdempotencyConflict",
    "IllegalTransition",
    "JobNotFound",
    "JobState",
    "JobView",
    "Ledger",
    "LedgerError",
    "NoChanges",
    "Page",
    "Source",
    "StoreUnavailable",
    "SubmitResult",
    "Topic",
    "VerifyReport",
    "rfc3339",
]
