"""The Job aggregate: one compiled job's life as a chain of events, and the rules it obeys.

Each public command checks the rules first and only then triggers events; an event's
`apply` only sets state, so replaying stored events can never be refused and rebuilds the
same job. Every event carries why it happened (`reason`), who made it happen (`actor`), the
Bacalhau history topic it belongs to, and a hash over its content and its predecessor's hash,
so an edit to any stored event breaks the chain that `Ledger.verify` recomputes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)

from klippfisk.engine.ids import new_execution_id, short_id
from klippfisk.engine.run_output import RunOutput
from klippfisk.engine.states import (
    ACTIVE_EXECUTION_STATES,
    TERMINAL_STATES,
    ExecutionState,
    JobState,
)

__all__ = [
    "ACTIVE_EXECUTION_STATES",
    "ENVELOPE",
    "EXECUTION_RULES",
    "JOB_RULES",
    "TERMINAL_STATES",
    "Execution",
    "ExecutionState",
    "IllegalTransition",
    "Job",
    "JobState",
    "LedgerError",
    "RunOutput",
    "Topic",
    "chain_hash",
    "encode_body",
    "event_hash",
]


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose; its message is meant for users."""


_LIVE_STATES = frozenset({JobState.PENDING, JobState.QUEUED, JobState.RUNNING})


class Topic(StrEnum):
    """Bacalhau's job-history topics."""

    SUBMISSION = "Submission"
    STATE_UPDATE = "State Update"
    SCHEDULING = "Scheduling"
    QUEUEING = "Queueing"
    EXECUTION = "Execution"
    EXEC_TIMEOUT = "Exec Timeout"
    JOB_TIMEOUT = "Job Timeout"


# The transition table: which job states each command may start from. The guards read it,
# and the property tests check every stored history against it.
JOB_RULES: dict[str, frozenset[JobState]] = {
    "resubmit": frozenset(JobState),
    "queue": frozenset({JobState.PENDING}),
    "reclaim": frozenset({JobState.QUEUED}),
    "create_execution": _LIVE_STATES,
    "start_execution": _LIVE_STATES,
    "complete_execution": frozenset({JobState.RUNNING}),
    "fail_execution": _LIVE_STATES,
    "cancel_execution": _LIVE_STATES,
    "stop": _LIVE_STATES,
    "time_out": _LIVE_STATES,
}
# Which execution states each execution command may start from.
EXECUTION_RULES: dict[str, frozenset[ExecutionState]] = {
    "start_execution": frozenset({ExecutionState.NEW}),
    "complete_execution": frozenset({ExecutionState.RUNNING}),
    "fail_execution": ACTIVE_EXECUTION_STATES,
    "cancel_execution": ACTIVE_EXECUTION_STATES,
}
_TIMEOUT_KINDS = {
    "execution": Topic.EXEC_TIMEOUT,
    "queue": Topic.JOB_TIMEOUT,
    "total": Topic.JOB_TIMEOUT,
}
_FIXES = {
    JobState.COMPLETED: "submit the job again (with force) to run it once more",
    JobState.FAILED: "submit the job again (with force) to retry it",
    JobState.STOPPED: "submit the job again (with force) to restart it",
}


class IllegalTransition(LedgerError):
    """A command the job's current state does not allow; nothing was written."""

    def __init__(self, job_id: str, command: str, state: str, detail: str = "") -> None:
        self.job_id, self.command, self.state = job_id, command, state
        verb = command.replace("_", " ")
        what = detail or f"job {short_id(job_id)} is {state}"
        fix = _FIXES.get(
            state, "check the job with `klippfisk job describe` and retry the right command"
        )
        super().__init__(f"Cannot {verb}: {what}. To go on, {fix}.")


# An event's body as JSON with sorted keys: what its hash covers and what is stored (the
# encoder's own method, not a function around it: every event written is encoded by it).
encode_body: Callable[[dict[str, Any]], str] = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False
).encode


def chain_hash(job_id: str, version: int, kind: str, when: str, body_json: str, prev: str) -> str:
    """SHA-256 over one event's identity, content (already encoded) and its predecessor's hash.

    The text hashed is the compact, sorted JSON array [id, version, kind, time, body, prev]
    (how every stored hash was made); it is assembled from the body's encoding rather than
    encoding the whole array again, so writing an event encodes its body exactly once.
    """
    quote = encode_basestring  # what the encoder does to a string, without its dispatch
    text = f"[{quote(job_id)},{version},{quote(kind)},{quote(when)},{body_json},{quote(prev)}]"
    return hashlib.sha256(text.encode()).hexdigest()


def event_hash(
    job_id: str, version: int, kind: str, timestamp: datetime, body: dict[str, Any], prev: str
) -> str:
    """SHA-256 over one event's identity, content and its predecessor's hash.

    JSON with sorted keys is stable across the store's round trip (events hold plain JSON
    data only), so `verify` can recompute it from what it reads back.
    """
    return chain_hash(job_id, version, kind, timestamp.isoformat(), encode_body(body), prev)


@dataclass
class Execution:
    """One attempt at running the job, as the events have told it so far."""

    id: str
    executor: str
    node: str
    job_version: int
    created_at: datetime
    state: ExecutionState = ExecutionState.NEW
    modified_at: datetime | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)
    output: RunOutput | None = None  # set once it completed
    error: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_EXECUTION_STATES


# Fields every event carries besides its own; excluded when hashing an event's body.
ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "hash", "prev_hash"}
)


class Job(BaseAggregate[str]):
    """A job, its versions and executions. Build one with `Job.submit`, never directly."""

    if TYPE_CHECKING:  # set by the events; not dataclass fields (the metaclass would make them so)
        job: dict[str, Any]
        job_cid: str
        task_cids: dict[str, str]
        source: dict[str, Any]
        report: dict[str, Any]
        state: JobState
        job_version: int
        message: str
        executions: dict[str, Execution]
        head_hash: str
        queued_by: str
        executor: str

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        originator_id: str
        originator_version: int
        timestamp: datetime
        reason: str
        actor: str
        topic: str
        prev_hash: str
        hash: str

        def body(self) -> dict[str, Any]:
            """The event's own fields: what its hash covers besides the envelope."""
            return {k: v for k, v in vars(self).items() if k not in ENVELOPE}

        def apply(self, aggregate: Job) -> None:
            aggregate.head_hash = self.hash
            aggregate.message = self.reason
            self.evolve(aggregate)

        def evolve(self, job: Job) -> None:
            """Set the state this event implies; overridden by each event."""

    class Submitted(Event, CanInitAggregate[str]):
        originator_topic: str
        job: dict[str, Any]
        job_cid: str
        task_cids: dict[str, str]
        source: dict[str, Any]
        report: dict[str, Any]
        executor: str = ""  # absent from events stored before it existed: read as ""

        def evolve(self, job: Job) -> None:
            job.job, job.job_cid, job.task_cids = self.job, self.job_cid, self.task_cids
            job.source, job.report = self.source, self.report
            job.state, job.job_version, job.executions = JobState.PENDING, 1, {}
            job.queued_by, job.executor = "", self.executor

    class Resubmitted(Event):
        job: dict[str, Any]
        job_cid: str
        task_cids: dict[str, str]
        source: dict[str, Any]
        report: dict[str, Any]
        job_version: int
        executor: str = ""  # absent from events stored before it existed: read as ""

        def evolve(self, job: Job) -> None:
            job.job, job.job_cid, job.task_cids = self.job, self.job_cid, self.task_cids
            job.source, job.report = self.source, self.report
            job.state, job.job_version = JobState.PENDING, self.job_version
            job.queued_by, job.executor = "", self.executor

    class Queued(Event):
        """The job was claimed: by a runner queueing it, or re-claimed from a dead one."""

        def evolve(self, job: Job) -> None:
            job.state, job.queued_by = JobState.QUEUED, self.actor

    class ExecutionCreated(Event):
        execution_id: str
        executor: str
        node: str

        def evolve(self, job: Job) -> None:
            job.executions[self.execution_id] = Execution(
                id=self.execution_id,
                executor=self.executor,
                node=self.node,
                job_version=job.job_version,
                created_at=self.timestamp,
                modified_at=self.timestamp,
                message=self.reason,
            )

    class ExecutionStarted(Event):
        execution_id: str
        node: str
        notes: list[str]

        def evolve(self, job: Job) -> None:
            execution = job._touch(self)
            execution.state, execution.notes = ExecutionState.RUNNING, list(self.notes)
            execution.node = self.node or execution.node
            job.state = JobState.RUNNING

    class ExecutionCompleted(Event):
        execution_id: str
        exit_code: int
        stdout: str
        stderr: str
        stdout_truncated: bool
        stderr_truncated: bool
        published_result: dict[str, Any] | None
        # What the executor learnt only at the end (results left out, output cut); absent
        # from events stored before it existed: read as none.
        notes: tuple[str, ...] = ()

        @property
        def output(self) -> RunOutput:
            """The run's output, stored as these flat fields (as every ledger has them)."""
            return RunOutput(
                self.exit_code,
                self.stdout,
                self.stderr,
                self.stdout_truncated,
                self.stderr_truncated,
                self.published_result,
            )

        def evolve(self, job: Job) -> None:
            execution = job._touch(self)
            execution.state, execution.output = ExecutionState.COMPLETED, self.output
            execution.notes = [*execution.notes, *self.notes]
            if job.completed_partitions >= job.partitions:
                job.state = JobState.COMPLETED

    class ExecutionFailed(Event):
        execution_id: str
        error: str
        retryable: bool

        def evolve(self, job: Job) -> None:
            execution = job._touch(self)
            execution.state, execution.error = ExecutionState.FAILED, self.error
            if not self.retryable:
                job.state = JobState.FAILED

    class ExecutionCancelled(Event):
        execution_id: str

        def evolve(self, job: Job) -> None:
            job._touch(self).state = ExecutionState.CANCELLED

    class StopRequested(Event):
        def evolve(self, job: Job) -> None:
            job.state = JobState.STOPPED

    class TimedOut(Event):
        kind: str
        limit_seconds: float

        def evolve(self, job: Job) -> None:
            job.state = JobState.FAILED

    # --- reading -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.job.get("Name") or self.id)

    @property
    def namespace(self) -> str:
        return str(self.job.get("Namespace") or "default")

    @property
    def partitions(self) -> int:
        """How many completed executions finish the job (Bacalhau's Count, at least 1)."""
        count = self.job.get("Count")
        return count if isinstance(count, int) and count > 0 else 1

    @property
    def completed_partitions(self) -> int:
        return sum(
            1
            for e in self.executions.values()
            if e.state is ExecutionState.COMPLETED and e.job_version == self.job_version
        )

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def active_executions(self) -> list[Execution]:
        return [e for e in self.executions.values() if e.active]

    def current_executions(self) -> list[Execution]:
        """The executions of the job's current version (earlier versions' stay in history)."""
        return [e for e in self.executions.values() if e.job_version == self.job_version]

    def _touch(self, event: Job.Event) -> Execution:
        execution = self.executions[event.execution_id]  # type: ignore[attr-defined]
        execution.modified_at, execution.message = event.timestamp, event.reason
        return execution

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        job_id: str,
        *,
        job: dict[str, Any],
        job_cid: str,
        task_cids: dict[str, str],
        source: dict[str, Any],
        report: dict[str, Any],
        actor: str,
        reason: str = "Job submitted",
        executor: str = "",
    ) -> Job:
        """Start a job's history: it is Pending until something queues or runs it.

        `executor` is the one the submitter asked for ("" lets the runner choose); it is
        recorded so that whichever runner later takes the job honours it."""
        body = {
            "job": job,
            "job_cid": job_cid,
            "task_cids": task_cids,
            "source": source,
            "report": report,
            "executor": executor,
            "reason": reason,
            "actor": actor,
            "topic": str(Topic.SUBMISSION),
        }
        now = datetime.now(UTC)
        body_json = encode_body(body)
        version = cls.INITIAL_VERSION
        digest = chain_hash(job_id, version, "Submitted", now.isoformat(), body_json, "")
        job = cls._create(
            cls.Submitted, id=job_id, timestamp=now, prev_hash="", hash=digest, **body
        )
        job._keep_body(version, body_json)
        return job

    def resubmit(
        self,
        *,
        job: dict[str, Any],
        job_cid: str,
        task_cids: dict[str, str],
        source: dict[str, Any],
        report: dict[str, Any],
        actor: str,
        executor: str = "",
    ) -> None:
        """A new version of the same job (same name): earlier executions are cancelled.
        The version carries its own executor request, as a fresh submission would."""
        version = self.job_version + 1
        self._cancel_active(f"Job updated to version {version}", actor)
        self._record(
            Job.Resubmitted,
            reason=f"Job updated to version {version}",
            actor=actor,
            topic=Topic.SUBMISSION,
            job=job,
            job_cid=job_cid,
            task_cids=task_cids,
            source=source,
            report=report,
            job_version=version,
            executor=executor,
        )

    def queue(self, *, reason: str, actor: str) -> None:
        self._require("queue")
        self._record(Job.Queued, reason=reason, actor=actor, topic=Topic.QUEUEING)

    def reclaim(self, *, dead_owner: str, actor: str, reason: str) -> None:
        """Take over a job a dead runner queued but never gave an execution.

        Only then is it safe: nothing of it ran, so running it now cannot run it twice. Two
        successors racing both pass this check on the same state, but only one Queued event
        can take the next version; the loser retries on fresh state and is refused here,
        because the last claim is then the winner's, not the dead runner's.
        """
        self._require("reclaim")
        if self.queued_by != dead_owner:
            detail = (
                f"job {short_id(self.id)} is {self.state} by {self.queued_by or 'nobody'}, "
                f"not by {dead_owner}"
            )
            raise IllegalTransition(self.id, "reclaim", self.state, detail)
        started = self.current_executions()
        if started:
            detail = (
                f"job {short_id(self.id)} is {self.state} but already has execution "
                f"{started[0].id[:10]}, so it may have run"
            )
            raise IllegalTransition(self.id, "reclaim", self.state, detail)
        self._record(Job.Queued, reason=reason, actor=actor, topic=Topic.QUEUEING)

    def create_execution(self, *, executor: str, node: str, actor: str) -> str:
        self._require("create_execution")
        execution_id = new_execution_id()
        self._record(
            Job.ExecutionCreated,
            reason=f"Execution created on {node} by the {executor} executor",
            actor=actor,
            topic=Topic.SCHEDULING,
            execution_id=execution_id,
            executor=executor,
            node=node,
        )
        return execution_id

    def start_execution(
        self, execution_id: str, *, node: str, notes: list[str], actor: str
    ) -> None:
        self._require_execution("start_execution", execution_id)
        self._record(
            Job.ExecutionStarted,
            reason="Execution started" + "".join(f"; {n}" for n in notes),
            actor=actor,
            topic=Topic.EXECUTION,
            execution_id=execution_id,
            node=node,
            notes=list(notes),
        )

    def complete_execution(
        self, execution_id: str, output: RunOutput, *, actor: str, notes: Sequence[str] = ()
    ) -> None:
        self._require_execution("complete_execution", execution_id)
        if self.completed_partitions + 1 >= self.partitions:
            self._cancel_active("Job completed by another execution", actor, keep=execution_id)
        self._record(
            Job.ExecutionCompleted,
            reason=f"Execution completed with exit code {output.exit_code}",
            actor=actor,
            topic=Topic.EXECUTION,
            execution_id=execution_id,
            **vars(output),
            notes=list(notes),
        )

    def fail_execution(self, execution_id: str, *, error: str, retryable: bool, actor: str) -> None:
        self._require_execution("fail_execution", execution_id)
        if not retryable:
            self._cancel_active("Job failed in another execution", actor, keep=execution_id)
        self._record(
            Job.ExecutionFailed,
            reason=f"Execution failed: {error}",
            actor=actor,
            topic=Topic.EXECUTION,
            execution_id=execution_id,
            error=error,
            retryable=retryable,
        )

    def cancel_execution(self, execution_id: str, *, reason: str, actor: str) -> None:
        self._require_execution("cancel_execution", execution_id)
        self._record(
            Job.ExecutionCancelled,
            reason=reason,
            actor=actor,
            topic=Topic.EXECUTION,
            execution_id=execution_id,
        )

    def stop(self, *, reason: str, actor: str) -> None:
        """Stop the job; running executions are cancelled in the same breath."""
        self._require("stop")
        self._cancel_active(f"Job stopped: {reason}", actor)
        self._record(Job.StopRequested, reason=reason, actor=actor, topic=Topic.STATE_UPDATE)

    def time_out(self, *, kind: str, limit_seconds: float, actor: str) -> None:
        """A deadline passed: the job fails and its executions are cancelled."""
        self._require("time_out")
        if kind not in _TIMEOUT_KINDS:
            raise LedgerError(
                f"Unknown timeout kind {kind!r}. Use one of: {', '.join(_TIMEOUT_KINDS)}."
            )
        reason = f"{kind.capitalize()} timeout: exceeded {limit_seconds:g} seconds"
        self._cancel_active(reason, actor)
        self._record(
            Job.TimedOut,
            reason=reason,
            actor=actor,
            topic=_TIMEOUT_KINDS[kind],
            kind=kind,
            limit_seconds=float(limit_seconds),
        )

    # --- helpers ---------------------------------------------------------------------------

    def _require(self, command: str) -> None:
        if self.state not in JOB_RULES[command]:
            raise IllegalTransition(self.id, command, self.state)

    def _require_execution(self, command: str, execution_id: str) -> None:
        self._require(command)
        execution = self.executions.get(execution_id)
        if execution is None:
            detail = f"job {short_id(self.id)} has no execution {execution_id}"
            raise IllegalTransition(self.id, command, self.state, detail)
        if execution.state not in EXECUTION_RULES[command]:
            detail = f"execution {execution_id[:10]} is {execution.state.name.capitalize()}"
            raise IllegalTransition(self.id, command, self.state, detail)

    def _cancel_active(self, reason: str, actor: str, keep: str = "") -> None:
        """Cancel every active execution but `keep`; the calling command has checked its rule."""
        for execution in self.active_executions():
            if execution.id != keep:
                self._record(
                    Job.ExecutionCancelled,
                    reason=reason,
                    actor=actor,
                    topic=Topic.EXECUTION,
                    execution_id=execution.id,
                )

    def _record(self, event_class: type[Job.Event], *, topic: Topic, **fields: Any) -> None:
        """Trigger one event, stamping the time and the hash chain before it exists."""
        body = {**fields, "topic": str(topic)}
        body_json = encode_body(body)
        now = datetime.now(UTC)
        version = self.version + 1
        prev = self.head_hash
        kind = event_class.__name__
        digest = chain_hash(self.id, version, kind, now.isoformat(), body_json, prev)
        self.trigger_event(event_class, timestamp=now, prev_hash=prev, hash=digest, **body)
        self._keep_body(version, body_json)

    def _keep_body(self, version: int, body_json: str) -> None:
        # Kept only while the event is pending: aggregates compare equal by their __dict__,
        # and a job read back from the store has no such entry.
        self.__dict__.setdefault("_encoded_bodies", {})[version] = body_json

    def take_encoded_bodies(self) -> dict[int, str]:
        """The JSON bodies the pending events were hashed from, by version, handed over once
        with the events so that storing them does not encode them a second time."""
        return self.__dict__.pop("_encoded_bodies", {})
