"""The ledger's own connections to its store, beside the library's pool, and what it asks
through them.

On SQLite, one writer carries every write of the process (commands and read models alike)
and one point reader answers the two reads pollers repeat (the log's head, a job's latest
version). On PostgreSQL, one writer appends in a single round trip, and reads go through the
library's recorder. Whichever it is, the ledger asks the same questions here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from klippfisk.engine.persistence.sqlite_store import SQLitePointReader, SQLiteWriter

if TYPE_CHECKING:
    from klippfisk.engine.persistence.postgres_store import PostgresWriter

__all__ = ["StoreLinks"]


class StoreLinks:
    """The connections opened for one ledger over `recorder`'s store; `close` releases them."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self.writer: SQLiteWriter | None = None
        self.reader: SQLitePointReader | None = None
        self.pg_writer: PostgresWriter | None = None
        datastore = recorder.datastore
        table = recorder.events_table_name
        self.postgres = not isinstance(datastore, SQLiteDatastore)  # the only other store
        try:
            if not self.postgres:
                self.writer = SQLiteWriter(datastore.pool, table)
                self.reader = SQLitePointReader(datastore.pool, table)
            else:  # imported here: the SQLite default never loads the PostgreSQL driver
                from klippfisk.engine.persistence.postgres_store import PostgresWriter

                self.pg_writer = PostgresWriter(datastore, table, recorder.channel_name)
        except BaseException:
            self.close()
            raise
        # Appends events in one transaction; a taken (job, version) raises IntegrityError.
        self.insert_events: Callable[[Sequence[StoredEvent]], Any] = (
            self.writer or self.pg_writer or recorder
        ).insert_events

    def has_events(self, job_id: str) -> bool:
        """Whether the job has events, without reading them: a new job costs one probe."""
        if self.writer is not None:
            return self.writer.has_events(job_id)
        return bool(self._recorder.select_events(job_id, limit=1))

    def head(self) -> int:
        """The id of the newest event any process stored (0 for an empty log)."""
        if self.reader is not None:
            return self.reader.head()
        return int(self._recorder.max_notification_id() or 0)

    def latest_version(self, job_id: str) -> int:
        """The job's latest stored version, which is its event count (0: nothing stored)."""
        if self.reader is not None:
            return self.reader.version_of(job_id)
        stored = self._recorder.select_events(job_id, desc=True, limit=1)
        return stored[0].originator_version if stored else 0

    def close(self) -> None:
        for connection in (self.writer, self.reader, self.pg_writer):
            if connection is not None:
                connection.close()
