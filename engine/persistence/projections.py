"""Read models: one row per job, findable by state, name, job_cid and source ref, and
listable newest or oldest first by creation or by last change, a page at a time.

The rows are kept in the ledger's own database (SQLite or PostgreSQL) and fed by a catch-up
loop over the notification log, because the library's ProjectionRunner cannot follow SQLite.
Each batch of events and the new log position are written in one transaction, after taking
the position row's lock and checking nobody moved it, so a crash or a second process never
skips or double-applies an event. Job state is not re-derived here: each event is applied to
a copy of the Job aggregate, so the read model can never disagree with the domain rules.

Orders are keyed by notification ids, which are unique and grow with every commit: a job's
`created_seq` is the id of its first event, its `modified_seq` that of its latest. A page
ends at a key and the next page starts after it (keyset paging), so jobs added or changed
meanwhile never shift a page: every job is listed once, except that a job changed while
someone pages by change moves to its new place. Labels are kept with the row, so a label
selector is checked without loading the job, over a bounded stretch of the index.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from klippfisk.engine.job import Job

__all__ = ["JobRow", "JobsProjection", "LabelTest", "Order", "PageQuery"]

log = logging.getLogger(__name__)

_NAME = "jobs"
_COLUMNS = (
    "job_id",
    "name",
    "namespace",
    "state",
    "job_cid",
    "source_ref",
    "source_adapter",
    "job_type",
    "engine",
    "job_version",
    "event_version",
    "created_seq",
    "created_at",
    "modified_at",
    "modified_seq",
    "labels",
)
# Columns added since the first read model, with what an old row holds until it is rebuilt.
_ADDED_COLUMNS = (
    ("modified_seq", "BIGINT NOT NULL DEFAULT 0"),
    ("labels", "TEXT NOT NULL DEFAULT '{}'"),
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {jobs} ("
    " job_id TEXT {bytewise} PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL,"
    " state TEXT NOT NULL, job_cid TEXT NOT NULL, source_ref TEXT NOT NULL,"
    " source_adapter TEXT NOT NULL, job_type TEXT NOT NULL, engine TEXT NOT NULL,"
    " job_version INTEGER NOT NULL, event_version INTEGER NOT NULL,"
    " created_seq BIGINT NOT NULL, created_at TEXT NOT NULL, modified_at TEXT NOT NULL,"
    " modified_seq BIGINT NOT NULL DEFAULT 0, labels TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE IF NOT EXISTS {positions} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
)
# Created once the table has every column (an old table gains them first).
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_state ON {jobs} (state, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_name ON {jobs} (name, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_ns_name ON {jobs} (namespace, name, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_cid ON {jobs} (job_cid, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_ref ON {jobs} (source_ref, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_seq ON {jobs} (created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_ns_seq ON {jobs} (namespace, created_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_mod ON {jobs} (modified_seq)",
    "CREATE INDEX IF NOT EXISTS klippfisk_jobs_ns_mod ON {jobs} (namespace, modified_seq)",
)
_ORDER_COLUMNS = {"created": "created_seq", "modified": "modified_seq"}
_SCAN_CHUNK = 200  # rows read at a time while a label test skips most of them
_UPSERT = (
    f"INSERT INTO {{jobs}} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    " ON CONFLICT (job_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("job_id", "created_seq"))
)


@dataclass(frozen=True)
class JobRow:
    """A job as the read model knows it: enough to list and find it."""

    job_id: str
    name: str
    namespace: str
    state: str
    job_cid: str
    source_ref: str
    source_adapter: str
    job_type: str
    engine: str
    job_version: int
    event_version: int
    created_seq: int
    created_at: str
    modified_at: str
    modified_seq: int
    labels: Mapping[str, str] = field(default_factory=dict)

    def key(self, order: Order) -> int:
        """Where this row stands in `order`: the cursor a page that ends here hands on."""
        return self.modified_seq if order == "modified" else self.created_seq


Order = Literal["created", "modified"]
LabelTest = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class PageQuery:
    """Filters for `JobsProjection.page`, in `order` (by creation or by latest change);
    `before` is the key of the last row seen (`JobRow.key`), None for the first page."""

    states: Sequence[str] = ()
    name: str | None = None
    job_cid: str | None = None
    source_ref: str | None = None
    namespace: str | None = None
    before: int | None = None
    oldest_first: bool = False
    order: Order = "created"
    limit: int = 20


def _labels_json(job: Job) -> str:
    labels = job.job.get("Labels")
    return json.dumps(labels if isinstance(labels, dict) else {}, sort_keys=True)


def _row_values(job: Job, created_seq: int, modified_seq: int) -> tuple[Any, ...]:
    tasks = job.job.get("Tasks") or [{}]
    engine = (tasks[0].get("Engine") or {}).get("Type", "") if isinstance(tasks[0], dict) else ""
    return (
        job.id,
        job.name,
        job.namespace,
        str(job.state),
        job.job_cid,
        str(job.source.get("ref", "")),
        str(job.source.get("adapter", "")),
        str(job.job.get("Type", "")),
        str(engine),
        job.job_version,
        job.version,
        created_seq,
        job.created_on.isoformat(),
        job.modified_on.isoformat(),
        modified_seq,
        _labels_json(job),
    )


class JobsProjection:
    """Keeps `klippfisk_jobs` in step with the notification log and answers queries on it.

    `datastore` is the event recorder's own (its `transaction(commit=...)` yields a cursor),
    SQLite's or PostgreSQL's as `postgres` says; on PostgreSQL the tables live in `schema`
    (the events' own, so two ledgers in one database never share rows). `select_notifications` and
    `to_event` come from the application; `load_job(job_id, version)` rebuilds a job when the
    projection's copy is missing or behind. `writer`, when given, opens the write transactions
    instead of the datastore (the ledger's own SQLite writer, so its writes queue with the
    commands' rather than sleep in SQLite's busy handler).
    """

    def __init__(
        self,
        *,
        datastore: Any,
        postgres: bool,
        schema: str = "",
        select_notifications: Callable[[int, int], Sequence[Any]],
        to_event: Callable[[Any], Job.Event],
        load_job: Callable[[str, int], Job],
        writer: Callable[[], AbstractContextManager[Any]] | None = None,
        batch_size: int = 500,
        cache_size: int = 1000,
    ) -> None:
        self._datastore = datastore
        self._writer = writer
        self._placeholder = "%s" if postgres else "?"
        prefix = f'"{schema}".' if postgres and schema else ""
        self._tables = {
            "{jobs}": f"{prefix}klippfisk_jobs",
            "{positions}": f"{prefix}klippfisk_positions",
            # Ids compare byte by byte, so an id prefix is a range on the primary key.
            "{bytewise}": 'COLLATE "C"' if postgres else "",
        }
        # Take the position row's write lock before reading it (SQLite locks the whole file).
        self._lock_position = (
            "SELECT position FROM {positions} WHERE name = ? FOR UPDATE"
            if postgres
            else "UPDATE {positions} SET position = position WHERE name = ?"
        )
        self._postgres = postgres
        self._schema = schema or "public"
        self._select_notifications = select_notifications
        self._to_event = to_event
        self._load_job = load_job
        self._batch_size = batch_size
        self._cache_size = cache_size
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def _sql(self, statement: str) -> str:
        """`statement` with this store's table names and placeholders."""
        for alias, table in self._tables.items():
            statement = statement.replace(alias, table)
        return statement.replace("?", self._placeholder) if self._placeholder != "?" else statement

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        if commit and self._writer is not None:
            with self._writer() as cursor:
                yield cursor
            return
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def create_tables(self) -> None:
        """Create the tables, or bring a read model written by an older version up to date."""
        with self._cursor(commit=True) as cursor:
            for statement in _SCHEMA:
                cursor.execute(self._sql(statement))
            cursor.execute(
                self._sql(
                    "INSERT INTO {positions} (name, position) VALUES (?, 0)"
                    " ON CONFLICT (name) DO NOTHING"
                ),
                (_NAME,),
            )
            self._add_missing_columns(cursor)
            for statement in _INDEXES:
                cursor.execute(self._sql(statement))

    def _add_missing_columns(self, cursor: Any) -> None:
        """Add the columns an older read model lacks, and replay the notification log into
        it from the start (the next catch-up), since only the events hold their values.

        On PostgreSQL the table is locked first, so of two processes opening an old store at
        once only one alters it; SQLite's write transaction already excludes the other."""
        if not self._missing_columns(cursor):
            return
        if self._postgres:
            cursor.execute(self._sql("LOCK TABLE {jobs} IN ACCESS EXCLUSIVE MODE"))
        missing = self._missing_columns(cursor)
        for column, definition in _ADDED_COLUMNS:
            if column in missing:
                cursor.execute(self._sql(f"ALTER TABLE {{jobs}} ADD COLUMN {column} {definition}"))
        if missing:
            cursor.execute(
                self._sql("UPDATE {positions} SET position = 0 WHERE name = ?"), (_NAME,)
            )
            log.info("the jobs read model gained %s; rebuilding it from the log", missing)

    def _missing_columns(self, cursor: Any) -> list[str]:
        if self._postgres:
            cursor.execute(
                "SELECT column_name AS name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'klippfisk_jobs'",
                (self._schema,),
            )
        else:
            cursor.execute("SELECT name FROM pragma_table_info('klippfisk_jobs')")
        present = {str(row["name"]) for row in cursor.fetchall()}
        return [column for column, _ in _ADDED_COLUMNS if column not in present]

    def position(self) -> int:
        """The id of the last notification applied."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql("SELECT position FROM {positions} WHERE name = ?"), (_NAME,))
            row = cursor.fetchone()
        return int(row["position"]) if row else 0

    def catch_up(self) -> int:
        """Apply every notification recorded so far; returns how many were applied."""
        applied = 0
        while True:
            done = self._apply_batch()
            applied += done
            if done < self._batch_size:
                return applied

    def _apply_batch(self) -> int:
        """Apply one batch: rows are computed first, so the write lock is held only for the
        upsert and the position update, never while jobs are rebuilt from the store."""
        start = self.position()
        notifications = self._select_notifications(start + 1, self._batch_size)
        if not notifications:
            return 0
        try:
            rows = self._rows_after(notifications)
            with self._cursor(commit=True) as cursor:
                cursor.execute(self._sql(self._lock_position), (_NAME,))
                cursor.execute(
                    self._sql("SELECT position FROM {positions} WHERE name = ?"), (_NAME,)
                )
                if int(cursor.fetchone()["position"]) != start:
                    self._jobs.clear()  # another process moved on; read again from there
                    return self._batch_size
                cursor.executemany(self._sql(_UPSERT), rows)
                cursor.execute(
                    self._sql("UPDATE {positions} SET position = ? WHERE name = ?"),
                    (notifications[-1].id, _NAME),
                )
        except Exception:
            self._jobs.clear()  # the copies may now be ahead of the table
            raise
        return len(notifications)

    def _rows_after(self, notifications: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Each touched job's row once the notifications are applied to its copy (a job's
        row is made once per batch, from its last state, however many events it had)."""
        touched: dict[str, Job] = {}
        created: dict[str, int] = {}
        modified: dict[str, int] = {}
        for notification in notifications:
            job = self._advance(self._to_event(notification))
            created.setdefault(job.id, notification.id)
            modified[job.id] = notification.id
            touched[job.id] = job
        return [
            _row_values(job, created[job_id], modified[job_id]) for job_id, job in touched.items()
        ]

    def _advance(self, event: Job.Event) -> Job:
        """The projection's copy of the job, with `event` applied (rebuilt if out of step)."""
        job = self._jobs.pop(event.originator_id, None)
        if event.originator_version == Job.INITIAL_VERSION:
            job = event.mutate(None)  # type: ignore[arg-type]
        elif job is not None and job.version == event.originator_version - 1:
            event.mutate(job)
        else:
            job = self._load_job(event.originator_id, event.originator_version)
        assert job is not None
        self._jobs[job.id] = job
        if len(self._jobs) > self._cache_size:
            self._jobs.popitem(last=False)
        return job

    # --- queries ---------------------------------------------------------------------------

    def page(self, query: PageQuery) -> list[JobRow]:
        """Rows matching `query`, newest first unless asked otherwise, one page long: read
        along the index of the order (per namespace or overall), from the key given on."""
        where: list[str] = []
        params: list[Any] = []
        if query.states:
            where.append(f"state IN ({', '.join('?' * len(query.states))})")
            params += list(query.states)
        for column, value in (
            ("name", query.name),
            ("job_cid", query.job_cid),
            ("source_ref", query.source_ref),
            ("namespace", query.namespace),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        column = _ORDER_COLUMNS[query.order]
        if query.before is not None:
            where.append(f"{column} > ?" if query.oldest_first else f"{column} < ?")
            params.append(query.before)
        order = "ASC" if query.oldest_first else "DESC"
        statement = f"SELECT {', '.join(_COLUMNS)} FROM {{jobs}}"
        if where:
            statement += " WHERE " + " AND ".join(where)
        statement += f" ORDER BY {column} {order} LIMIT ?"
        params.append(query.limit)
        return self._rows(statement, params)

    def page_matching(
        self, query: PageQuery, labels: LabelTest | None = None, scan_limit: int | None = None
    ) -> tuple[list[JobRow], int | None]:
        """Up to `query.limit` rows whose labels pass `labels`, and the key to go on from
        (None: nothing further matches).

        Rows are read along the index a chunk at a time and tested here, so a selector that
        matches few jobs reads at most `scan_limit` rows (None: no bound); when the bound
        stops it, the page may be short and the key resumes right after the last row read."""
        wanted = query.limit
        found: list[JobRow] = []
        cursor, scanned = query.before, 0
        while scan_limit is None or scanned < scan_limit:
            ask = max(wanted + 1, _SCAN_CHUNK) if labels else wanted + 1
            if scan_limit is not None:
                ask = min(ask, scan_limit - scanned)
            chunk = self.page(replace(query, before=cursor, limit=ask))
            for row in chunk:
                scanned += 1
                cursor = row.key(query.order)
                if labels is None or labels(row.labels):
                    found.append(row)
                if len(found) > wanted:
                    return found[:wanted], found[wanted - 1].key(query.order)
            if len(chunk) < ask:
                return found, None
        return found, cursor

    def by_prefix(self, prefix: str, namespace: str | None = None, limit: int = 5) -> list[JobRow]:
        """Jobs whose id starts with `prefix` (at least a short id's worth of characters).

        A range on the primary key rather than LIKE, which neither SQLite (case-insensitive
        LIKE) nor PostgreSQL (non-C collations) could answer from the index."""
        if len(prefix) < len("j-") + 1:
            return []
        statement = f"SELECT {', '.join(_COLUMNS)} FROM {{jobs}} WHERE job_id >= ? AND job_id < ?"
        params: list[Any] = [prefix, prefix + "\U0010ffff"]
        if namespace is not None:
            statement += " AND namespace = ?"
            params.append(namespace)
        return self._rows(statement + " ORDER BY job_id LIMIT ?", [*params, limit])

    def namespaces_of(self, name: str, limit: int = 5) -> list[str]:
        """The namespaces that have a job called `name` (a name is only unique within one)."""
        statement = (
            "SELECT DISTINCT namespace FROM {jobs} WHERE name = ? ORDER BY namespace LIMIT ?"
        )
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql(statement), (name, limit))
            return [str(row["namespace"]) for row in cursor.fetchall()]

    def _rows(self, statement: str, params: Sequence[Any]) -> list[JobRow]:
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql(statement), tuple(params))
            rows = cursor.fetchall()
        return [
            JobRow(
                **{c: row[c] for c in _COLUMNS if c != "labels"}, labels=json.loads(row["labels"])
            )
            for row in rows
        ]
