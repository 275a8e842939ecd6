"""How the stores fail: driver errors as eventsourcing's, and a store that cannot be opened.

The ledger's own writers (sqlite_store.py, postgres_store.py) talk to the drivers directly,
but everything above them, optimistic concurrency first, tells a stale write by
eventsourcing's IntegrityError, as the library's own paths raise it. `StoreUnavailable` is
defined here, below the ledger, because both the store settings and `Ledger.open` raise it.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import PersistenceError

from klippfisk.engine.job import LedgerError

__all__ = ["StoreUnavailable", "persistence_error"]


class StoreUnavailable(LedgerError):
    """The configured store cannot be opened (bad settings, unreachable server, unwritable file)."""


def persistence_error(
    exc: Exception, kinds: Sequence[tuple[type[Exception], type[PersistenceError]]]
) -> PersistenceError:
    """The eventsourcing error for a driver's error, as the library's own paths raise them
    (callers tell a stale write by its IntegrityError)."""
    kind = next((ours for theirs, ours in kinds if isinstance(exc, theirs)), PersistenceError)
    return kind(str(exc))
