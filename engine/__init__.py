"""The engine's public face: the job ledger, its states and errors.

`Ledger.open()` opens the store the settings name (a SQLite file under the user's data dir
by default, PostgreSQL by setting) and is all an adapter or an auditor needs: submit compiled
jobs, record what happens to them, and read, list, wait for and verify them.

The names are imported on first use, not with the package: the ledger pulls in
eventsourcing and the PostgreSQL driver (about half a second), and every
`klippfisk.engine.*` import (`klippfisk.engine.settings` for a command's settings, say) runs
this file first. A command that never touches the ledger, such as `klippfisk spec validate`,
should not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from klippfisk.engine.job import IllegalTransition, LedgerError, Topic
    from klippfisk.engine.ledger import (
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
    from klippfisk.engine.run_output import RunOutput
    from klippfisk.engine.states import ExecutionState, JobState
    from klippfisk.engine.wire import rfc3339

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
    "RunOutput",
    "Source",
    "StoreUnavailable",
    "SubmitResult",
    "Topic",
    "VerifyReport",
    "rfc3339",
]

# Where the public names not defined by the ledger package are; the TYPE_CHECKING imports
# above say the same for type checkers, and tests/unit/test_public_faces.py holds the
# two to each other.
_NOT_IN_LEDGER = {
    "ExecutionState": "klippfisk.engine.states",
    "IllegalTransition": "klippfisk.engine.job",
    "JobState": "klippfisk.engine.states",
    "LedgerError": "klippfisk.engine.job",
    "RunOutput": "klippfisk.engine.run_output",
    "Topic": "klippfisk.engine.job",
    "rfc3339": "klippfisk.engine.wire",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name here for the next one."""
    if name not in __all__:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module = importlib.import_module(_NOT_IN_LEDGER.get(name, "klippfisk.engine.ledger"))
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
