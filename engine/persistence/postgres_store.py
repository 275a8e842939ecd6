"""The PostgreSQL store: eventsourcing's factory tuned for the ledger, and its one writer.

Chosen by setting (KLIPPFISK_LEDGER__STORE=postgres and eventsourcing's POSTGRES_*) when one
machine is not enough. Imported only when that store is configured, so the SQLite default
never loads the PostgreSQL driver.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType
from psycopg import ClientCursor, Connection
from psycopg import Error as PsycopgError
from psycopg import IntegrityError as PsycopgIntegrityError
from psycopg import InterfaceError as PsycopgInterfaceError
from psycopg import OperationalError as PsycopgOperationalError
from psycopg.sql import SQL, Identifier

from klippfisk.engine.persistence.store_errors import persistence_error

__all__ = ["PostgresStoreFactory", "PostgresWriter"]


_POSTGRES_ERRORS: tuple[tuple[type[PsycopgError], type[PersistenceError]], ...] = (
    (PsycopgIntegrityError, IntegrityError),
    (PsycopgOperationalError, OperationalError),
    (PsycopgInterfaceError, InterfaceError),
)


class PostgresWriter:
    """The one connection through which this process appends events to PostgreSQL, one
    round trip per transaction.

    The library's insert takes a pooled connection and sends BEGIN, the lock, NOTIFY, the
    insert and COMMIT in a pipeline it waits on twice, plus the pool's own bookkeeping, and
    the table lock is held all the while, so every other writer waits out those round
    trips too. Here the same statements go as one simple-protocol message (parameters bound
    on this side), which PostgreSQL runs as one implicit transaction: it commits when the
    last statement succeeds and rolls back whole when any fails, leaving nothing to send
    afterwards. What readers rely on is kept: `LOCK TABLE ... IN EXCLUSIVE MODE` comes first,
    so notification ids commit in the order they are issued and a projector following the
    log never passes a gap that fills later; NOTIFY still wakes the library's subscribers;
    a taken (job, version) still raises eventsourcing's IntegrityError, on which optimistic
    concurrency depends. When the link breaks mid-write (a restarted server, a dropped idle
    connection), the transaction committed whole or not at all: a new connection finds out
    which, and writes it again only if it did not, as the library's pool would retry.
    """

    _COLUMNS = "(originator_id, originator_version, topic, state)"

    def __init__(self, datastore: PostgresDatastore, events_table: str, channel: str) -> None:
        self._connect_args: dict[str, Any] = {
            **datastore.pool.kwargs,
            "connect_timeout": max(1, round(datastore.pool.timeout)),
        }
        table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(events_table))
        self._head = SQL(
            "SET LOCAL lock_timeout = '{timeout}s'; LOCK TABLE {table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; INSERT INTO {table} {columns} VALUES "
        ).format(
            timeout=SQL(str(int(datastore.lock_timeout))),
            table=table,
            channel=Identifier(channel),
            columns=SQL(self._COLUMNS),
        )
        self._row = SQL("(%s, %s, %s, %s)")
        self._select = SQL(
            "SELECT state FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(table)
        self._lock = threading.Lock()
        self._connection: Connection[Any] | None = None

    def insert_events(self, stored: Sequence[StoredEvent]) -> None:
        """Append events in one transaction; a taken (job, version) raises IntegrityError."""
        if not stored:
            return
        statement = self._head + SQL(", ").join([self._row] * len(stored))
        params = [
            value
            for s in stored
            for value in (s.originator_id, s.originator_version, s.topic, s.state)
        ]
        with self._lock:
            try:
                try:
                    self._connected().execute(statement, params)
                except (PsycopgOperationalError, PsycopgInterfaceError):
                    if self._connection is None or not self._connection.broken:
                        raise
                    self._drop()
                    if not self._stored(stored[0]):
                        self._connected().execute(statement, params)
            except PsycopgError as exc:
                if self._connection is not None and self._connection.broken:
                    self._drop()
                raise persistence_error(exc, _POSTGRES_ERRORS) from exc

    def _stored(self, event: StoredEvent) -> bool:
        """Whether `event` itself (not another writer's at its version) is in the store."""
        key = (event.originator_id, event.originator_version)
        row = self._connected().execute(self._select, key).fetchone()
        return row is not None and bytes(row["state"]) == event.state

    def _connected(self) -> Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = Connection.connect(
                **self._connect_args, autocommit=True, cursor_factory=ClientCursor
            )
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class _PostgresRecorder(PostgresApplicationRecorder):
    """The library's recorder without the insert function it replaces on every open.

    The function serves only POSTGRES_ENABLE_DB_FUNCTIONS, a path this ledger never takes
    (it skips the table lock; PostgresWriter inserts itself), and two processes replacing
    one function at once is refused outright ("tuple concurrently updated"), so two
    processes opening a ledger together could fail for nothing."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        del self.sql_create_statements[self.create_insert_function_statement_index]


class PostgresStoreFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, creating the configured schema if it is missing
    (the library expects it to exist), so a schema of its own is one setting away."""

    application_recorder_class = _PostgresRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        schema = self.datastore.schema
        if schema == "public":
            return
        try:  # two processes racing here: one gets IntegrityError, and `Ledger.open`
            # tries once more, as it does for the tables themselves
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
        except BaseException:
            self.close()  # nobody else holds this factory, so nobody else could close its pool
            raise
