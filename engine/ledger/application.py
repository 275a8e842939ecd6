"""The ledger application: where compiled jobs are recorded, changed by commands, and read.

`Ledger` is an eventsourcing Application over the Job aggregate and the library face other
packages use (`from klippfisk.engine import Ledger`). Its commands and queries are thin:
what a command does to a job is the aggregate's (klippfisk.engine.job), how it is stored is
the write path's (write_path.py), what a submission means is submission.py's, and the
reading rules are queries.py's and audit.py's. It is safe to share between threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    Mapper,
    PersistenceError,
)
from eventsourcing.utils import Environment, EnvType

from klippfisk.engine.history import EVENT_TYPES, history_entries
from klippfisk.engine.ids import is_job_id
from klippfisk.engine.job import TERMINAL_STATES, Job, JobState, LedgerError, RunOutput
from klippfisk.engine.ledger.audit import VerifyReport, notifications, verify_chains
from klippfisk.engine.ledger.errors import JobNotFound, StoreUnavailable
from klippfisk.engine.ledger.queries import page_query, resolve_name
from klippfisk.engine.ledger.read_models import ReadModelUpkeep
from klippfisk.engine.ledger.submission import plan_submission
from klippfisk.engine.ledger.views import ExecutionView, JobView, Page, Source, SubmitResult
from klippfisk.engine.ledger.write_path import WritePath
from klippfisk.engine.persistence import (
    GroupCommit,
    JobEventMapper,
    JobsProjection,
    LabelTest,
    PageQuery,
    StoreLinks,
    store_env,
)
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.compiled import CompiledSpec

__all__ = ["Ledger"]


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
        settings = self._ledger_settings
        self._links = links = StoreLinks(self.recorder)
        window = settings.group_commit_window_ms / 1000
        self.group_commit = (
            GroupCommit(links.insert_events, window_seconds=window)
            if settings.group_commit
            else None
        )
        self._writes = WritePath(
            repository=self.repository,
            events=self.events,
            to_stored_event=self._job_mapper.to_stored_event,
            write=self.group_commit.write if self.group_commit else links.insert_events,
            has_events=links.has_events,
            cache_size=settings.cache_size,
        )
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        self.projection = JobsProjection(
            datastore=datastore,
            writer=links.writer.transaction if links.writer else None,
            postgres=links.postgres,
            schema=getattr(datastore, "schema", ""),
            select_notifications=self.recorder.select_notifications,
            to_event=self.mapper.to_domain_event,  # type: ignore[arg-type]
            load_job=lambda job_id, version: self.repository.get(job_id, version=version),
        )
        self.projection.create_tables()
        self._read_models = ReadModelUpkeep(self.projection, settings.projection_interval_seconds)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Ledger:
        """Open (creating if need be) the store the settings name: SQLite unless told otherwise."""
        settings = settings or Settings()
        env = store_env(settings)
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
        links = getattr(self, "_links", None)
        if links is not None:
            links.close()
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
        job_id, decide = plan_submission(
            compiled,
            source=source or Source(adapter="library", operator=True),
            idempotency_key=idempotency_key,
            force=force,
            executor=executor,
        )
        return self._writes.change(job_id, decide, may_create=True)

    def queue(self, job_id: str, *, reason: str = "Job queued", actor: str = "runner") -> None:
        self._writes.command(job_id, lambda job: job.queue(reason=reason, actor=actor))

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
        self._writes.command(
            job_id, lambda job: job.reclaim(dead_owner=dead_owner, actor=actor, reason=reason)
        )

    def create_execution(
        self, job_id: str, *, executor: str = "local", node: str = "local", actor: str = "runner"
    ) -> str:
        """Record a new execution (state New) and return its id."""
        return self._writes.command(
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
        self._writes.command(
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
        notes: Sequence[str] = (),
    ) -> None:
        """An execution ended with an exit code (any code: non-zero still completes);
        `notes` adds what the executor learnt only at the end to those it started with."""
        output = RunOutput(
            exit_code, stdout, stderr, stdout_truncated, stderr_truncated, published_result
        )
        self._writes.command(
            job_id,
            lambda job: job.complete_execution(execution_id, output, actor=actor, notes=notes),
        )

    def fail_execution(
        self,
        job_id: str,
        execution_id: str,
        *,
        error: str,
        retryable: bool = False,
        actor: str = "runner",
    ) -> None:
        self._writes.command(
            job_id,
            lambda job: job.fail_execution(
                execution_id, error=error, retryable=retryable, actor=actor
            ),
        )

    def cancel_execution(
        self, job_id: str, execution_id: str, *, reason: str, actor: str = "runner"
    ) -> None:
        self._writes.command(
            job_id, lambda job: job.cancel_execution(execution_id, reason=reason, actor=actor)
        )

    def stop(self, job_id: str, *, reason: str = "Stopped by user", actor: str = "user") -> None:
        self._writes.command(self.resolve(job_id), lambda job: job.stop(reason=reason, actor=actor))

    def time_out(
        self, job_id: str, *, kind: str, limit_seconds: float, actor: str = "runner"
    ) -> None:
        self._writes.command(
            job_id, lambda job: job.time_out(kind=kind, limit_seconds=limit_seconds, actor=actor)
        )

    def batch(self) -> AbstractContextManager[None]:
        """Group commands into one write: inside the block each command is checked and
        answers at once, and every event is stored in one transaction when the block ends.

        All or nothing: if the block raises, or another writer changed one of its jobs
        meanwhile (LedgerError), nothing of it is stored. Batches are per thread and do not
        nest (an inner block joins the outer one).
        """
        return self._writes.batch()

    # --- queries ---------------------------------------------------------------------------

    def get(self, ref: str, namespace: str | None = None) -> JobView:
        """A job by full id, unique short-id prefix, or name (the newest job of that name).

        With `namespace`, only jobs of that namespace answer (a name is unique only within
        one). A full id costs one indexed read, no read-model lookup."""
        return JobView.of(self._job(ref, namespace))

    def _job(self, ref: str, namespace: str | None) -> Job:
        ref = ref.strip()
        job = self._writes.fresh(ref if is_job_id(ref) else self.resolve(ref, namespace))
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
        return self._links.head()

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
        query = page_query(
            state=state,
            name=name,
            job_cid=job_cid,
            source_ref=source_ref,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            oldest_first=oldest_first,
            scan_limit=scan_limit,
        )
        self.catch_up()
        rows, key = self.projection.page_matching(query, labels, scan_limit)
        token = None if key is None else str(key)
        fresh = self._writes.fresh
        return Page(items=[JobView.of(fresh(r.job_id)) for r in rows], next_token=token)

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
        views = [JobView.of(self._writes.fresh(r.job_id)) for r in rows]
        return [v for v in views if v.state in states]

    def last_modified(self, ref: str) -> int:
        """The job's event count: cheap to poll, changes whenever anything happens to it
        (a full id costs one indexed read; it equals `JobView.revision`)."""
        ref = ref.strip()
        job_id = ref if is_job_id(ref) else self.resolve(ref)
        version = self._links.latest_version(job_id)
        if version == 0:
            raise JobNotFound.for_id(job_id)
        return version

    def wait(self, ref: str, states: Iterable[str] | None = None, timeout: float = 30.0) -> JobView:
        """Block until the job reaches one of `states` (default: any terminal state) or time
        runs out, and return the job as it is then. Changes made in this process wake the
        waiter at once; changes from other processes are polled for with a growing pause."""
        wanted = {str(s) for s in (states or TERMINAL_STATES)}
        job_id = self.resolve(ref)
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.02
        changed = self._writes.changed
        while True:
            view = self.get(job_id)
            remaining = deadline - time.monotonic()
            if str(view.state) in wanted or remaining <= 0:
                return view
            with changed:
                changed.wait(min(pause, remaining))
            pause = min(pause * 2, 0.5)

    def resolve(self, ref: str, namespace: str | None = None) -> str:
        """The full job id `ref` stands for; JobNotFound explains what matched instead.

        Names are looked up within `namespace`; without one, a name used in several
        namespaces is refused as ambiguous rather than guessed."""
        ref = ref.strip()
        if is_job_id(ref):
            if namespace is not None:
                return self._job(ref, namespace).id
            if not self._links.has_events(ref):
                raise JobNotFound.for_id(ref)
            return ref
        self.catch_up()
        return resolve_name(self.projection, ref, namespace)

    def verify(self, ref: str | None = None) -> VerifyReport:
        """Recompute every event's hash and each link to its predecessor.

        Catches edited, reordered or removed events (a removed last event leaves no trace:
        nothing after it points at it).
        """
        only = self.resolve(ref) if ref else None
        stored = notifications(self.recorder.select_notifications)
        return verify_chains(stored, self.mapper.to_domain_event, only)

    # --- read models -----------------------------------------------------------------------

    def catch_up(self) -> int:
        """Bring the read models up to date with every event stored so far."""
        return self._read_models.catch_up()

    def start_projecting(self, interval: float | None = None) -> None:
        """Keep the read models current from a background thread (long-running processes)."""
        self._read_models.start(interval)

    def stop_projecting(self) -> None:
        read_models = getattr(self, "_read_models", None)  # None when __init__ did not finish
        if read_models is not None:
            read_models.stop()
