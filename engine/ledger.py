"""The ledger: where compiled jobs are recorded, changed by commands, and read back.

`Ledger` is an eventsourcing Application over the Job aggregate and the library face other
packages use (`from klippfisk.engine import Ledger`). It is safe to share between threads:
commands on one job are serialised by a lock, and between processes the store's optimistic
concurrency does the same job (a stale write is refused, the command is retried once on fresh
state).
Jobs recently touched stay in memory, so a command costs one insert rather than a replay,
and writes from many threads that arrive together share one transaction (group commit, see
engine/group_commit.py); each command still returns only once its own events are stored.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    Mapper,
    MapperDeserialisationError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment, EnvType, get_topic, register_topic, resolve_topic

from klippfisk.engine.executors.registry import EXECUTOR_CHOICES
from klippfisk.engine.group_commit import GroupCommit
from klippfisk.engine.history import EVENT_TYPES, history_entries
from klippfisk.engine.ids import is_job_id, job_id_for_key, job_id_for_name, new_job_id, short_id
from klippfisk.engine.job import (
    TERMINAL_STATES,
    ExecutionState,
    Job,
    JobState,
    LedgerError,
    RunOutput,
    decode_event_state,
    encode_event_state,
    event_hash,
    former_topics,
)
from klippfisk.engine.projections import JobsProjection, LabelTest, Order, PageQuery
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.engine.sqlite_store import SQLitePointReader, SQLiteWriter
from klippfisk.spec.compiled import CompiledSpec

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

log = logging.getLogger(__name__)
T = TypeVar("T")
_LOCK_STRIPES = 64
_PAGE_TOKEN = re.compile(r"[0-9]{1,18}")
_ORDERS: dict[str, Order] = {"created_at": "created", "modified_at": "modified"}


class JobNotFound(LedgerError):
    """No job (or more than one) answers to the reference given."""

    @classmethod
    def for_id(cls, job_id: str) -> JobNotFound:
        """The refusal for a full id nothing is stored under, worded alike everywhere."""
        return cls(f"No job with id {job_id}. Use `klippfisk job list` to see jobs.")


class BadQuery(LedgerError):
    """A read was asked with arguments no ledger could answer (unknown state, page size, token)."""


class StoreUnavailable(LedgerError):
    """The configured store cannot be opened (bad settings, unreachable server, unwritable file)."""


class IdempotencyConflict(LedgerError):
    """An idempotency key already names a job with a different spec."""


class NoChanges(LedgerError):
    """A job was resubmitted under its name with an identical spec and without force."""


@dataclass(frozen=True)
class Source:
    """Which way a job came in, who sent it, and what they pointed at (file, URL, post)."""

    adapter: str
    actor: str = ""
    ref: str = ""


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    version: int
    created: bool
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _nanos(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000 if moment else 0


@dataclass(frozen=True)
class ExecutionView:
    """One execution as callers see it; `to_dict` is Bacalhau's Execution shape."""

    id: str
    job_id: str
    job_version: int
    executor: str
    node: str
    state: ExecutionState
    message: str
    created_at: datetime
    modified_at: datetime | None
    notes: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    error: str
    published_result: dict[str, Any] | None

    @property
    def state_name(self) -> str:
        return self.state.name.capitalize()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "JobID": self.job_id,
            "JobVersion": self.job_version,
            "NodeID": self.node,
            "ComputeState": {"StateType": int(self.state), "Message": self.message},
            "RunOutput": {
                "Stdout": self.stdout,
                "StdoutTruncated": self.stdout_truncated,
                "stderr": self.stderr,
                "StderrTruncated": self.stderr_truncated,
                "ExitCode": self.exit_code if self.exit_code is not None else 0,
                "ErrorMsg": self.error,
            },
            "PublishedResult": self.published_result,
            "CreateTime": _nanos(self.created_at),
            "ModifyTime": _nanos(self.modified_at),
            "Executor": self.executor,
            "Notes": list(self.notes),
        }


@dataclass(frozen=True)
class JobView:
    """A job as callers see it, copied out of the aggregate so it can be read anywhere."""

    id: str
    name: str
    namespace: str
    state: JobState
    message: str
    version: int
    revision: int
    job: dict[str, Any]
    job_cid: str
    task_cids: dict[str, str]
    source: Source
    report: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    executions: list[ExecutionView]
    executor: str = ""  # the executor the submitter asked for; "" lets the runner choose
    queued_by: str = ""  # who holds the latest claim (Queued event), "" before any

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def type(self) -> str:
        return str(self.job.get("Type", ""))

    @property
    def engine(self) -> str:
        tasks = self.job.get("Tasks") or [{}]
        return str((tasks[0].get("Engine") or {}).get("Type", ""))

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """Bacalhau's Job shape: the canonical spec plus the server-owned fields."""
        return {
            **self.job,
            "ID": self.id,
            "Name": self.name,
            "Namespace": self.namespace,
            "State": {"StateType": str(self.state), "Message": self.message},
            "Version": self.version,
            "Revision": self.revision,
            "CreateTime": _nanos(self.created_at),
            "ModifyTime": _nanos(self.modified_at),
        }

    @classmethod
    def of(cls, job: Job) -> JobView:
        """A copy, so that a caller changing the view cannot change the job in memory."""
        executions = [
            ExecutionView(job_id=job.id, **_execution_fields(e)) for e in job.executions.values()
        ]
        return cls(
            id=job.id,
            name=job.name,
            namespace=job.namespace,
            state=job.state,
            message=job.message,
            version=job.job_version,
            revision=job.version,
            job=copy.deepcopy(job.job),
            job_cid=job.job_cid,
            task_cids=dict(job.task_cids),
            source=Source(**job.source),
            report=copy.deepcopy(job.report),
            created_at=job.created_on,
            modified_at=job.modified_on,
            executions=executions,
            executor=job.executor,
            queued_by=job.queued_by,
        )


def _execution_fields(execution: Any) -> dict[str, Any]:
    fields = asdict(execution)
    fields["state"] = execution.state
    fields["notes"] = list(execution.notes)
    return fields


@dataclass(frozen=True)
class Page:
    """One page of jobs; pass `next_token` back for the next (None: this was the last)."""

    items: list[JobView]
    next_token: str | None


@dataclass(frozen=True)
class BrokenChain:
    job_id: str
    seq_num: int
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: every job's events re-hashed and their links checked."""

    jobs_checked: int
    events_checked: int
    broken: list[BrokenChain]

    @property
    def ok(self) -> bool:
        return not self.broken

    @property
    def broken_jobs(self) -> list[str]:
        return sorted({b.job_id for b in self.broken})


class JobEventMapper(Mapper[str]):
    """Stored events to domain events and back, for events that hold plain JSON.

    The library's mapper runs every value through a transcoder with a Python hook per
    object; ours encodes and decodes in one C call (engine.job's `encode_event_state`), in
    the same stored form, and takes the body already encoded for the hash when it has it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for topic, cls in former_topics().items():
            register_topic(topic, cls)

    def to_stored_event(self, domain_event: Any, body_json: str | None = None) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        version = state.pop("originator_version")
        data = encode_event_state(state, body_json)
        return StoredEvent(originator_id, version, get_topic(type(domain_event)), data)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        try:
            state = decode_event_state(stored_event.state)
        except (ValueError, TypeError, KeyError) as exc:
            raise MapperDeserialisationError(
                f"Failed to deserialise the stored event {stored_event.originator_id} "
                f"version {stored_event.originator_version} ({stored_event.topic}): {exc}"
            ) from exc
        state["originator_id"] = str(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)  # as the library does: no __init__ checks
        return event


def _store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store (no other source is read)."""
    ledger = settings.ledger
    common = {"ORIGINATOR_ID_TYPE": "text"}
    if ledger.store == "sqlite":
        path = ledger.path or settings.data_dir / "ledger.db"
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot create the ledger's directory {Path(path).parent}: {exc.strerror}. "
                "Set KLIPPFISK_LEDGER__PATH to a writable file."
            ) from exc
        return {
            **common,
            "PERSISTENCE_MODULE": "klippfisk.engine.sqlite_store:SQLiteStoreFactory",
            "SQLITE_DBNAME": str(path),
            "SQLITE_SYNCHRONOUS": ledger.sqlite_synchronous,
            "SQLITE_LOCK_TIMEOUT": str(ledger.lock_timeout_seconds),
        }
    if ledger.store == "postgres":
        pg = ledger.postgres
        return {
            **common,
            "PERSISTENCE_MODULE": "klippfisk.engine.postgres_store:PostgresStoreFactory",
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password.get_secret_value(),
            "POSTGRES_CONNECT_TIMEOUT": str(pg.connect_timeout),
            "POSTGRES_SCHEMA": pg.db_schema,
            "POSTGRES_LOCK_TIMEOUT": str(ledger.lock_timeout_seconds),
        }
    raise StoreUnavailable(
        f"Unknown ledger store {ledger.store!r}. Set KLIPPFISK_LEDGER__STORE to sqlite or postgres."
    )


class Ledger(Application[str]):
    """The job ledger. Open it with `Ledger.open()`; close it (or use `with`) when done."""

    name = "klippfisk"  # PostgreSQL tables are klippfisk_events, klippfisk_jobs, ...

    def __init__(self, env: EnvType | None = None, *, ledger: LedgerSettings | None = None) -> None:
        self._ledger_settings = ledger or LedgerSettings()
        try:
            self._construct(env)
        except BaseException:
            # A ledger that failed half-way (say, another process created the tables at the
            # same moment, which `open` answers by trying again) must not keep connections.
            self.close()
            raise

    def _construct(self, env: EnvType | None) -> None:
        """Everything `__init__` sets up, apart so that a failure half-way is cleaned up."""
        super().__init__(env)
        self._cache: OrderedDict[str, Job] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._locks = [threading.RLock() for _ in range(_LOCK_STRIPES)]
        self._changed = threading.Condition()
        self._projection_lock = threading.Lock()
        self._batches = threading.local()
        self._projector: threading.Thread | None = None
        self._stopping = threading.Event()
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        sqlite = isinstance(datastore, SQLiteDatastore)
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        self._writer = SQLiteWriter(datastore.pool, table) if sqlite else None
        self._reader = SQLitePointReader(datastore.pool, table) if sqlite else None
        postgres = not sqlite  # `_store_env` configures no other store
        self._pg_writer = None
        if postgres:  # imported here: the SQLite default never loads the PostgreSQL driver
            from klippfisk.engine.postgres_store import PostgresWriter

            channel = self.recorder.channel_name  # type: ignore[attr-defined]
            self._pg_writer = PostgresWriter(datastore, table, channel)
        self._insert = (self._writer or self._pg_writer or self.recorder).insert_events
        window = self._ledger_settings.group_commit_window_ms / 1000
        self.group_commit = (
            GroupCommit(self._insert, window_seconds=window)
            if self._ledger_settings.group_commit
            else None
        )
        self.projection = JobsProjection(
            datastore=datastore,
            writer=self._writer.transaction if self._writer else None,
            postgres=postgres,
            schema=getattr(datastore, "schema", ""),
            select_notifications=self.recorder.select_notifications,
            to_event=self.mapper.to_domain_event,  # type: ignore[arg-type]
            load_job=lambda job_id, version: self.repository.get(job_id, version=version),
        )
        self.projection.create_tables()

    @classmethod
    def open(cls, settings: Settings | None = None) -> Ledger:
        """Open (creating if need be) the store the settings name: SQLite unless told otherwise."""
        settings = settings or Settings()
        env = _store_env(settings)
        try:
            try:
                return cls(env, ledger=settings.ledger)
            except IntegrityError:  # another process created the tables at the same moment
                return cls(env, ledger=settings.ledger)
        except (PersistenceError, InfrastructureFactoryError) as exc:
            where = (
                f"PostgreSQL at {settings.ledger.postgres.host}:{settings.ledger.postgres.port}"
                if settings.ledger.store == "postgres"
                else f"the SQLite file {env.get('SQLITE_DBNAME')}"
            )
            raise StoreUnavailable(
                f"Cannot open the ledger in {where}: {exc}. Check the KLIPPFISK_LEDGER__* and "
                "POSTGRES_* settings and that the store is reachable and writable."
            ) from exc

    def construct_mapper(self) -> Mapper[str]:
        self._job_mapper = JobEventMapper(transcoder=self.construct_transcoder())
        return self._job_mapper

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only the settings object configures the store, never stray environment variables."""
        return Environment(name, dict(env or {}))

    def close(self) -> None:
        """Release every connection; also safe on a ledger whose construction failed."""
        self.stop_projecting()
        for own in ("_writer", "_reader", "_pg_writer"):
            connection = getattr(self, own, None)
            if connection is not None:
                connection.close()
        if getattr(self, "factory", None) is not None:
            super().close()

    # --- commands --------------------------------------------------------------------------

    def submit(
        self,
        compiled: CompiledSpec,
        *,
        source: Source | None = None,
        idempotency_key: str | None = None,
        force: bool = False,
        executor: str | None = None,
    ) -> SubmitResult:
        """Record a compiled job.

        `executor` (local or bacalhau) is recorded with the job, so whichever runner takes
        it, in this process or a worker elsewhere, runs it there; None leaves the choice to
        the runner's own default.

        With an idempotency key the job id derives from the key: a repeat with the same spec
        returns the job already there, a different spec is a conflict. Without one, a named
        job's id derives from its name, so a changed spec becomes Version+1 of that job and an
        identical one is refused as "no changes" unless `force`.
        """
        source = source or Source(adapter="library")
        if executor is not None and executor not in EXECUTOR_CHOICES:
            raise LedgerError(
                f"Unknown executor {executor!r}. Use one of: {', '.join(EXECUTOR_CHOICES)}, "
                "or leave it out to let the runner choose."
            )
        spec = compiled.job
        namespace = str(spec.get("Namespace") or "default")
        name = spec.get("Name")
        if idempotency_key:
            job_id = job_id_for_key(namespace, idempotency_key)
        elif isinstance(name, str) and name:
            job_id = job_id_for_name(namespace, name)
        else:
            job_id = new_job_id()
        warnings = [w.to_dict() for w in compiled.report.warnings]
        fields = {
            "job": spec,
            "job_cid": compiled.job_cid,
            "task_cids": dict(compiled.task_cids),
            "source": {"adapter": source.adapter, "actor": source.actor, "ref": source.ref},
            "report": compiled.report.to_dict(),
            "executor": executor or "",
        }

        def decide(existing: Job | None) -> tuple[Job | None, SubmitResult]:
            if existing is None:
                job = Job.submit(job_id, actor=source.actor, **fields)
                return job, SubmitResult(job_id, 1, True, warnings)
            if idempotency_key:
                if existing.job_cid != compiled.job_cid:
                    raise IdempotencyConflict(
                        f"The idempotency key {idempotency_key!r} already names job "
                        f"{short_id(job_id)} with a different spec. Use a new key to submit "
                        "a different job."
                    )
                return None, SubmitResult(job_id, existing.job_version, False, warnings)
            if existing.job_cid == compiled.job_cid and not force:
                raise NoChanges(
                    f"No changes detected for job {existing.name!r} ({short_id(job_id)}): "
                    "the spec is identical to its current version. Pass force to run it again."
                )
            existing.resubmit(actor=source.actor, **fields)
            return existing, SubmitResult(job_id, existing.job_version, False, warnings)

        return self._change(job_id, decide, may_create=True)

    def queue(self, job_id: str, *, reason: str = "Job queued", actor: str = "runner") -> None:
        self._command(job_id, lambda job: job.queue(reason=reason, actor=actor))

    def reclaim(
        self,
        job_id: str,
        *,
        dead_owner: str,
        actor: str = "runner",
        reason: str = "Job re-claimed from a runner that died",
    ) -> None:
        """Queue again, for `actor`, a job the runner `dead_owner` queued and died holding.

        Refused (IllegalTransition, nothing written) unless the job is still Queued, its last
        claim is `dead_owner`'s and it has no execution: then nothing of it ran and resuming
        cannot run it twice. Of two successors racing, exactly one wins; the other's write is
        stale, and on fresh state its claim is refused."""
        self._command(
            job_id, lambda job: job.reclaim(dead_owner=dead_owner, actor=actor, reason=reason)
        )

    def create_execution(
        self, job_id: str, *, executor: str = "local", node: str = "local", actor: str = "runner"
    ) -> str:
        """Record a new execution (state New) and return its id."""
        return self._command(
            job_id, lambda job: job.create_execution(executor=executor, node=node, actor=actor)
        )

    def start_execution(
        self,
        job_id: str,
        execution_id: str,
        *,
        notes: Sequence[str] = (),
        node: str = "",
        actor: str = "runner",
    ) -> None:
        self._command(
            job_id,
            lambda job: job.start_execution(
                execution_id, node=node, notes=list(notes), actor=actor
            ),
        )

    def complete_execution(
        self,
        job_id: str,
        execution_id: str,
        *,
        exit_code: int,
        stdout: str = "",
        stderr: str = "",
        stdout_truncated: bool = False,
        stderr_truncated: bool = False,
        published_result: dict[str, Any] | None = None,
        actor: str = "runner",
    ) -> None:
        """An execution ended with an exit code (any code: non-zero still completes)."""
        output = RunOutput(
            exit_code, stdout, stderr, stdout_truncated, stderr_truncated, published_result
        )
        self._command(job_id, lambda job: job.complete_execution(execution_id, output, actor=actor))

    def fail_execution(
        self,
        job_id: str,
        execution_id: str,
        *,
        error: str,
        retryable: bool = False,
        actor: str = "runner",
    ) -> None:
        self._command(
            job_id,
            lambda job: job.fail_execution(
                execution_id, error=error, retryable=retryable, actor=actor
            ),
        )

    def cancel_execution(
        self, job_id: str, execution_id: str, *, reason: str, actor: str = "runner"
    ) -> None:
        self._command(
            job_id, lambda job: job.cancel_execution(execution_id, reason=reason, actor=actor)
        )

    def stop(self, job_id: str, *, reason: str = "Stopped by user", actor: str = "user") -> None:
        self._command(self.resolve(job_id), lambda job: job.stop(reason=reason, actor=actor))

    def time_out(
        self, job_id: str, *, kind: str, limit_seconds: float, actor: str = "runner"
    ) -> None:
        self._command(
            job_id, lambda job: job.time_out(kind=kind, limit_seconds=limit_seconds, actor=actor)
        )

    # --- queries ---------------------------------------------------------------------------

    def get(self, ref: str, namespace: str | None = None) -> JobView:
        """A job by full id, unique short-id prefix, or name (the newest job of that name).

        With `namespace`, only jobs of that namespace answer (a name is unique only within
        one). A full id costs one indexed read, no read-model lookup."""
        return JobView.of(self._job(ref, namespace))

    def _job(self, ref: str, namespace: str | None) -> Job:
        ref = ref.strip()
        job = self._fresh(ref if is_job_id(ref) else self.resolve(ref, namespace))
        if namespace is not None and job.namespace != namespace:
            raise JobNotFound(
                f"No job with id {ref} in namespace {namespace!r}. Use `klippfisk job list` "
                "to see jobs, or ask in the job's own namespace."
            )
        return job

    def versions(self, ref: str, namespace: str | None = None) -> list[JobView]:
        """Every version of the job, oldest first: each as it stood when the next one replaced
        it (its executions included), the last as it is now."""
        job_id = self._job(ref, namespace).id
        views: list[JobView] = []
        job: Job | None = None
        for event in self.events.get(job_id):
            if isinstance(event, Job.Resubmitted) and job is not None:
                views.append(JobView.of(job))
            job = event.mutate(job)  # type: ignore[arg-type]
        assert job is not None
        return [*views, JobView.of(job)]

    def position(self) -> int:
        """The head of the notification log: the id of the newest event any process stored.

        One indexed read; two equal readings mean nothing changed in between, so callers can
        keep what they derived from the ledger until it moves."""
        if self._reader is not None:
            return self._reader.head()
        return int(self.recorder.max_notification_id() or 0)

    def history(
        self,
        ref: str,
        *,
        event_type: str = "all",
        execution_id: str | None = None,
        since: int = 0,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """The job's history in Bacalhau's JobHistory shape, oldest first; `since` is the
        last SeqNum already seen."""
        if event_type not in EVENT_TYPES:
            raise LedgerError(
                f"Unknown event type {event_type!r}. Use one of: {', '.join(EVENT_TYPES)}."
            )
        job_id = self.resolve(ref, namespace)
        events: Iterable[Job.Event] = self.events.get(job_id)  # type: ignore[assignment]
        return history_entries(
            events, event_type=event_type, execution_id=execution_id, since=since
        )

    def executions(self, ref: str, namespace: str | None = None) -> list[ExecutionView]:
        return self.get(ref, namespace).executions

    def list_jobs(
        self,
        state: str | Sequence[str] | None = None,
        name: str | None = None,
        job_cid: str | None = None,
        source_ref: str | None = None,
        namespace: str | None = None,
        limit: int = 20,
        next_token: str | None = None,
        *,
        order_by: str = "created_at",
        oldest_first: bool = False,
        labels: LabelTest | None = None,
        scan_limit: int | None = None,
    ) -> Page:
        """Jobs newest first (or `oldest_first`), by creation or by latest change (`order_by`
        created_at or modified_at), filtered, one page at a time, each page read from an
        index. Pass `next_token` back with the same order and filters for the next page.

        `labels` tests a job's labels; it is applied while reading the index, and with a
        `scan_limit` at most that many jobs are read for one page: a page cut short there
        still carries a next_token, from which the next call reads on."""
        order = _ORDERS.get(order_by)
        if order is None:
            raise BadQuery(f"Cannot order jobs by {order_by!r}. Use created_at or modified_at.")
        if scan_limit is not None and scan_limit < 1:
            raise BadQuery("The scan limit must be at least 1.")
        states = [state] if isinstance(state, str) else list(state or [])
        known = set(JobState)
        unknown = [s for s in states if s not in known]
        if unknown:
            raise BadQuery(f"Unknown job state {unknown[0]!r}. Use one of: {', '.join(JobState)}.")
        if limit < 1:
            raise BadQuery("The page size must be at least 1.")
        before = None
        if next_token:
            # Tokens are notification ids: ASCII digits that fit a 64-bit integer column.
            if not _PAGE_TOKEN.fullmatch(next_token):
                raise BadQuery(
                    f"The page token {next_token!r} is not one this ledger gave out. Pass "
                    "back the next_token of a previous page, or leave it out to start over."
                )
            before = int(next_token)
        self.catch_up()
        query = PageQuery(
            states=[str(s) for s in states],
            name=name,
            job_cid=job_cid,
            source_ref=source_ref,
            namespace=namespace,
            before=before,
            oldest_first=oldest_first,
            order=order,
            limit=limit,
        )
        rows, key = self.projection.page_matching(query, labels, scan_limit)
        token = None if key is None else str(key)
        return Page(items=[JobView.of(self._fresh(r.job_id)) for r in rows], next_token=token)

    def pending(self, limit: int = 100) -> list[JobView]:
        """Jobs waiting for a runner (Pending or Queued), oldest first."""
        return self._by_state((JobState.PENDING, JobState.QUEUED), limit)

    def running(self, limit: int = 100) -> list[JobView]:
        """Jobs marked Running, oldest first: after a crash, their executions were orphaned."""
        return self._by_state((JobState.RUNNING,), limit)

    def _by_state(self, states: Sequence[JobState], limit: int) -> list[JobView]:
        self.catch_up()
        rows = self.projection.page(
            PageQuery(states=[str(s) for s in states], oldest_first=True, limit=limit)
        )
        views = [JobView.of(self._fresh(r.job_id)) for r in rows]
        return [v for v in views if v.state in states]

    def last_modified(self, ref: str) -> int:
        """The job's event count: cheap to poll, changes whenever anything happens to it
        (a full id costs one indexed read; it equals `JobView.revision`)."""
        ref = ref.strip()
        if self._reader is not None and is_job_id(ref):
            version = self._reader.version_of(ref)
            if version == 0:
                raise JobNotFound.for_id(ref)
            return version
        job_id = self.resolve(ref)
        stored = self.recorder.select_events(job_id, desc=True, limit=1)
        return stored[0].originator_version if stored else 0

    def wait(self, ref: str, states: Iterable[str] | None = None, timeout: float = 30.0) -> JobView:
        """Block until the job reaches one of `states` (default: any terminal state) or time
        runs out, and return the job as it is then. Changes made in this process wake the
        waiter at once; changes from other processes are polled for with a growing pause."""
        wanted = {str(s) for s in (states or TERMINAL_STATES)}
        job_id = self.resolve(ref)
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.02
        while True:
            view = self.get(job_id)
            remaining = deadline - time.monotonic()
            if str(view.state) in wanted or remaining <= 0:
                return view
            with self._changed:
                self._changed.wait(min(pause, remaining))
            pause = min(pause * 2, 0.5)

    def resolve(self, ref: str, namespace: str | None = None) -> str:
        """The full job id `ref` stands for; JobNotFound explains what matched instead.

        Names are looked up within `namespace`; without one, a name used in several
        namespaces is refused as ambiguous rather than guessed."""
        ref = ref.strip()
        if is_job_id(ref):
            if namespace is not None:
                return self._job(ref, namespace).id
            if not self._is_stored(ref):
                raise JobNotFound.for_id(ref)
            return ref
        self.catch_up()
        if ref.startswith("j-") and len(ref) > 2:
            matches = self.projection.by_prefix(ref, namespace)
            if len(matches) == 1:
                return matches[0].job_id
            if matches:
                ids = ", ".join(m.job_id[:14] for m in matches)
                raise JobNotFound(
                    f"The id prefix {ref} matches several jobs ({ids}). Type more of the id."
                )
        where = f" in namespace {namespace!r}" if namespace is not None else ""
        if namespace is None:
            spaces = self.projection.namespaces_of(ref)
            if len(spaces) > 1:
                raise JobNotFound(
                    f"The name {ref!r} is used in several namespaces ({', '.join(spaces)}). "
                    "Give the namespace too, or use the job's id."
                )
            namespace = spaces[0] if spaces else None
        named = self.projection.page(PageQuery(name=ref, namespace=namespace, limit=1))
        if named:
            return named[0].job_id
        raise JobNotFound(
            f"No job matches {ref!r} by id, short id or name{where}. "
            "Use `klippfisk job list` to see jobs and their ids."
        )

    def verify(self, ref: str | None = None) -> VerifyReport:
        """Recompute every event's hash and each link to its predecessor.

        Catches edited, reordered or removed events (a removed last event leaves no trace:
        nothing after it points at it).
        """
        heads: dict[str, tuple[int, str]] = {}
        broken: dict[str, BrokenChain] = {}
        events_checked = 0
        only = self.resolve(ref) if ref else None
        for notification in self._notifications():
            job_id = str(notification.originator_id)
            if only and job_id != only:
                continue
            events_checked += 1
            version, prev = heads.get(job_id, (0, ""))
            heads[job_id] = (notification.originator_version, "")
            if job_id in broken:
                continue
            problem = self._check_event(notification, version, prev)
            if problem:
                broken[job_id] = BrokenChain(job_id, notification.originator_version, problem)
            else:
                heads[job_id] = (notification.originator_version, self._hash_of(notification))
        return VerifyReport(len(heads), events_checked, list(broken.values()))

    def _check_event(self, notification: Any, version: int, prev: str) -> str:
        try:
            event = self.mapper.to_domain_event(notification)
        except Exception as exc:  # a stored event that no longer decodes is itself the finding
            return f"the stored event cannot be read ({type(exc).__name__})"
        if event.originator_version != version + 1:
            return f"event {version + 1} is missing"
        assert isinstance(event, Job.Event)
        if event.prev_hash != prev:
            return "the link to the previous event does not match"
        expected = event_hash(
            event.originator_id,
            event.originator_version,
            type(event).__name__,
            event.timestamp,
            event.body(),
            event.prev_hash,
        )
        if expected != event.hash:
            return "the event's content does not match its hash"
        return ""

    def _hash_of(self, notification: Any) -> str:
        return self.mapper.to_domain_event(notification).hash  # type: ignore[attr-defined]

    def _notifications(self, batch: int = 1000) -> Iterable[Any]:
        start = 1
        while True:
            page = self.recorder.select_notifications(start, batch)
            yield from page
            if len(page) < batch:
                return
            start = page[-1].id + 1

    # --- read models -------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Bring the read models up to date with every event stored so far."""
        with self._projection_lock:
            try:
                return self.projection.catch_up()
            except MapperDeserialisationError as exc:
                raise LedgerError(
                    f"The read models cannot apply a stored event ({exc}). The store may have "
                    "been altered: run `klippfisk ledger verify` to find the job."
                ) from exc

    def start_projecting(self, interval: float | None = None) -> None:
        """Keep the read models current from a background thread (long-running processes)."""
        if self._projector is not None:
            return
        pause = interval or self._ledger_settings.projection_interval_seconds
        self._stopping.clear()

        def loop() -> None:
            while not self._stopping.wait(pause):
                try:
                    self.catch_up()
                except PersistenceError:
                    log.exception("the read models could not catch up; retrying")

        self._projector = threading.Thread(target=loop, name="klippfisk-projector", daemon=True)
        self._projector.start()

    def stop_projecting(self) -> None:
        if getattr(self, "_projector", None) is None:  # also when __init__ did not finish
            return
        self._stopping.set()
        self._projector.join()
        self._projector = None

    # --- the command cycle -------------------------------------------------------------------

    def _command(self, job_id: str, command: Callable[[Job], T]) -> T:
        def decide(job: Job | None) -> tuple[Job | None, T]:
            if job is None:
                raise JobNotFound.for_id(job_id)
            return job, command(job)

        return self._change(job_id, decide, may_create=False)

    def _change(
        self,
        job_id: str,
        decide: Callable[[Job | None], tuple[Job | None, T]],
        *,
        may_create: bool,
    ) -> T:
        """Run one command under the job's lock; on a stale write, retry once on fresh state."""
        unit: dict[str, Job] | None = getattr(self._batches, "unit", None)
        if unit is not None:
            return self._change_in_batch(unit, job_id, decide)
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            for attempt in (1, 2):
                current = self._cached(job_id) if attempt == 1 else None
                from_cache = current is not None
                # A job that may be new is first assumed new: if it exists after all, the
                # insert of its first event conflicts and the second attempt loads it.
                if current is None and not (may_create and attempt == 1):
                    current = self._load(job_id)
                try:
                    job, result = decide(current)
                except LedgerError:
                    self._evict(job_id)
                    if from_cache:  # the refusal may come from a stale copy: decide afresh
                        continue
                    raise
                except Exception:
                    self._evict(job_id)
                    raise
                if job is None:
                    return result
                try:
                    self._store(job)
                except IntegrityError:
                    self._evict(job_id)
                    if attempt == 2:
                        raise LedgerError(
                            f"Job {short_id(job_id)} kept changing under this command. "
                            "Try again in a moment."
                        ) from None
                    log.debug("stale write to %s; retrying on fresh state", job_id)
                    continue
                except Exception:
                    self._evict(job_id)
                    raise
                self._remember(job)
                with self._changed:
                    self._changed.notify_all()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _change_in_batch(
        self,
        unit: dict[str, Job],
        job_id: str,
        decide: Callable[[Job | None], tuple[Job | None, T]],
    ) -> T:
        """Decide now, write when the batch ends. The batch's copy of a job is taken out of
        the shared cache, so no other thread can write its unsaved events."""
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            current = unit.get(job_id)
            if current is None:
                with self._cache_lock:
                    current = self._cache.pop(job_id, None)
                if current is None and self._is_stored(job_id):
                    current = self._load(job_id)
            job, result = decide(current)
            if job is not None:
                unit[job_id] = job
            elif current is not None and job_id not in unit:
                self._remember(current)
            return result

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commands into one write: inside the block each command is checked and
        answers at once, and every event is stored in one transaction when the block ends.

        All or nothing: if the block raises, or another writer changed one of its jobs
        meanwhile (LedgerError), nothing of it is stored. Batches are per thread and do not
        nest (an inner block joins the outer one).
        """
        if getattr(self._batches, "unit", None) is not None:
            yield
            return
        unit: dict[str, Job] = {}
        self._batches.unit = unit
        try:
            yield
            self._batches.unit = None
            try:
                self._store(*unit.values())
            except IntegrityError:
                raise LedgerError(
                    f"Another writer changed one of the {len(unit)} jobs in this batch, so none "
                    "of it was stored. Run the batch again."
                ) from None
        except BaseException:
            self._batches.unit = None
            for job_id in unit:
                self._evict(job_id)
            raise
        for job in unit.values():
            self._remember(job)
        with self._changed:
            self._changed.notify_all()

    def _store(self, *jobs: Job) -> None:
        """Write the jobs' new events in one transaction: `Application.save` minus the
        generic collection machinery (snapshots, process tracking) this ledger never uses,
        which cost more than the insert itself. With group commit on, the transaction may be
        shared with other threads' writes; this returns once it has committed either way."""
        stored: list[StoredEvent] = []
        for job in jobs:
            bodies = job.take_encoded_bodies()
            stored += [
                self._job_mapper.to_stored_event(event, bodies.get(event.originator_version))
                for event in job.collect_events()
            ]
        if stored and self.group_commit is not None:
            self.group_commit.write(stored)
        elif stored:
            self._insert(stored)

    def _cached(self, job_id: str) -> Job | None:
        with self._cache_lock:
            job = self._cache.get(job_id)
            if job is not None:
                self._cache.move_to_end(job_id)
            return job

    def _remember(self, job: Job) -> None:
        if self._ledger_settings.cache_size == 0:
            return
        with self._cache_lock:
            self._cache[job.id] = job
            self._cache.move_to_end(job.id)
            while len(self._cache) > self._ledger_settings.cache_size:
                self._cache.popitem(last=False)

    def _evict(self, job_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(job_id, None)

    def _load(self, job_id: str) -> Job | None:
        try:
            return self.repository.get(job_id)  # type: ignore[return-value]
        except AggregateNotFoundError:
            return None

    def _is_stored(self, job_id: str) -> bool:
        """Whether the job has events, without reading them: a new job costs one probe."""
        if self._writer is not None:
            return self._writer.has_events(job_id)
        return bool(self.recorder.select_events(job_id, limit=1))

    def _fresh(self, job_id: str) -> Job:
        """The job with every stored event applied (other processes may have added some)."""
        with self._locks[hash(job_id) % _LOCK_STRIPES]:
            job = self._cached(job_id)
            if job is None:
                job = self._load(job_id)
                if job is None:
                    raise JobNotFound.for_id(job_id)
            else:
                for event in self.events.get(job_id, gt=job.version):
                    event.mutate(job)  # type: ignore[arg-type]
            self._remember(job)
            return job
