"""Driver errors as eventsourcing's: the one translation both store writers use.

The ledger's own writers (engine/sqlite_store.py, engine/postgres_store.py) talk to the
drivers directly, but everything above them, optimistic concurrency first, tells a stale
write by eventsourcing's IntegrityError, as the library's own paths raise it.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import PersistenceError

__all__ = ["persistence_error"]


def persistence_error(
    exc: Exception, kinds: Sequence[tuple[type[Exception], type[PersistenceError]]]
) -> PersistenceError:
    """The eventsourcing error for a driver's error, as the library's own paths raise them
    (callers tell a stale write by its IntegrityError)."""
    kind = next((ours for theirs, ours in kinds if isinstance(exc, theirs)), PersistenceError)
    return kind(str(exc))
