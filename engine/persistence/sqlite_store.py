"""The SQLite store: eventsourcing's factory tuned for the ledger, and its one writer.

SQLite is the embedded default (a file under the data directory). Kept apart from the
ledger so that what is particular to one store lives with that store, and so that the
PostgreSQL driver is imported only by processes that use PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment, EnvType

from klippfisk.engine.persistence.store_errors import persistence_error

__all__ = ["SQLitePointReader", "SQLiteStoreFactory", "SQLiteWriter"]


class _WriteFirstTransaction(SQLiteTransaction):
    """A write transaction that takes the write lock as it begins (BEGIN IMMEDIATE).

    With a plain BEGIN, a transaction that reads before it writes (creating tables that
    exist, the projection's upsert) holds a snapshot; if another process commits before its
    first write, SQLite refuses the write at once (SQLITE_BUSY_SNAPSHOT) instead of waiting
    out the busy timeout. Taking the lock first makes it wait its turn."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if self.commit else "BEGIN")
        return cursor


class _SQLiteConnection(SQLiteConnection):
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with _WriteFirstTransaction(self, commit=commit) as cursor, cursor:
            yield cursor


class _SQLitePool(SQLiteConnectionPool):
    """The library's pool, plus the durability level the settings ask for on each connection."""

    synchronous = "NORMAL"

    def connect(self) -> sqlite3.Connection:
        """A plain sqlite3 connection set up as every connection to the ledger's file is."""
        try:
            connection = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # the library issues BEGIN itself
                cached_statements=128,  # the library passes True, which means a cache of 1
                timeout=self.lock_timeout or 5,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            raise InterfaceError(exc) from exc
        connection.row_factory = sqlite3.Row
        return connection

    def _create_connection(self) -> SQLiteConnection:
        return _SQLiteConnection(sqlite_conn=self.connect(), max_age=self.max_age)


_SQLITE_ERRORS: tuple[tuple[type[sqlite3.Error], type[PersistenceError]], ...] = (
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.OperationalError, OperationalError),
)


class SQLitePointReader:
    """One connection of its own for the two reads pollers repeat: the log's head and one
    job's latest version.

    Through the library's pool each costs ~45 µs (a pooled connection, a transaction, a
    cursor wrapper) against a few µs for the indexed read itself, and history polls ask
    them on every request; through the writer's connection they would queue behind commits.
    In WAL mode this connection reads the last committed state without waiting on writers.
    """

    def __init__(self, pool: _SQLitePool, events_table: str) -> None:
        self._connection = pool.connect()
        self._lock = threading.Lock()
        self._head = f"SELECT MAX(rowid) FROM {events_table}"
        self._version = (
            f"SELECT MAX(originator_version) FROM {events_table} WHERE originator_id = ?"
        )

    def head(self) -> int:
        """The newest notification id any process has committed (0 for an empty log)."""
        return self._one(self._head, ())

    def version_of(self, originator_id: str) -> int:
        """The latest stored version of `originator_id` (0 if it has no events)."""
        return self._one(self._version, (originator_id,))

    def _one(self, query: str, args: tuple[str, ...]) -> int:
        with self._lock:
            try:
                row = self._connection.execute(query, args).fetchone()
            except sqlite3.Error as exc:
                raise persistence_error(exc, _SQLITE_ERRORS) from exc
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class SQLiteWriter:
    """The one connection through which this process writes the SQLite file.

    Every write of a process queues for SQLite's single write lock anyway; taking turns on a
    Python lock in front of one long-lived connection costs a few microseconds, where a
    pooled connection per write (semaphore, reader/writer interlock, bookkeeping, a cursor
    wrapper) cost more than the insert itself. Commands and the read models' upserts both
    write through here, so within a process they never meet in SQLite's busy handler, which
    waits by sleeping. Other processes still wait on the file lock (BEGIN IMMEDIATE).
    """

    def __init__(self, pool: _SQLitePool, events_table: str) -> None:
        self._connection = pool.connect()
        self._lock = threading.Lock()
        self._insert = f"INSERT INTO {events_table} VALUES (?,?,?,?)"
        self._probe = f"SELECT 1 FROM {events_table} WHERE originator_id = ? LIMIT 1"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction, committed when the block ends and rolled back if it raises;
        sqlite3's errors come out as eventsourcing's, as the library's own path raises them."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                self._roll_back()
                raise persistence_error(exc, _SQLITE_ERRORS) from exc
            except BaseException:
                self._roll_back()
                raise
            finally:
                cursor.close()

    def insert_events(self, stored: Sequence[StoredEvent]) -> None:
        """Append events in one transaction; a taken (job, version) raises IntegrityError."""
        rows = [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]
        with self.transaction() as cursor:
            cursor.executemany(self._insert, rows)

    def has_events(self, originator_id: str) -> bool:
        """Whether anything of `originator_id` is stored: one probe of the primary key, on
        this connection rather than a pooled one (which costs ten times the query)."""
        with self._lock:
            return self._connection.execute(self._probe, (originator_id,)).fetchone() is not None

    def _roll_back(self) -> None:
        if self._connection.in_transaction:
            self._connection.rollback()

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class SQLiteStoreFactory(SQLiteFactory):
    """eventsourcing's SQLite factory with a WAL pool whose fsync policy is a setting.

    In WAL mode, synchronous=NORMAL keeps every committed event through a crash of the
    process (the crash test kills writers with SIGKILL); only an operating-system crash or
    power loss may drop the last commits, and never corrupts the file.
    """

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        tuned = _SQLitePool(db_name=pool.db_name, lock_timeout=pool.lock_timeout)
        tuned.synchronous = self.env.get(self.SQLITE_SYNCHRONOUS) or "NORMAL"
        pool.close()
        self.datastore.pool = tuned
