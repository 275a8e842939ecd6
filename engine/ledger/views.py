"""What the ledger hands out: frozen views of jobs and executions, copied out of the
aggregate so they can be read anywhere, and the small results of its commands and lists.

Each view gives its Bacalhau wire shape as the wire's own model (`to_wire`, what the HTTP
server answers with) and as the plain data that model dumps to (`to_dict`, what the CLI prints).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from klippfisk.engine.ids import short_id
from klippfisk.engine.job import Execution, Job
from klippfisk.engine.run_output import RunOutput
from klippfisk.engine.states import (
    ACTIVE_EXECUTION_STATES,
    TERMINAL_STATES,
    ExecutionState,
    JobState,
)
from klippfisk.engine.wire import (
    DESIRED_RUNNING,
    DESIRED_STOPPED,
    WireExecution,
    WireExecutionState,
    WireJob,
    WireJobState,
    WireRunOutput,
    to_nanos,
)

__all__ = ["ExecutionView", "JobView", "Page", "Source", "SubmitResult"]


# The ways in that only the operator has: jobs recorded before `Source.operator` existed
# came from the operator when they came this way.
OPERATOR_ADAPTERS = frozenset({"cli", "library"})


@dataclass(frozen=True)
class Source:
    """Which way a job came in, who sent it, what they pointed at (file, URL, post), and
    whether it is the operator's own: the CLI, the library, an HTTP key marked operator.
    Anyone else's job (the bot's, any other key's) gets the strongest box the runner has,
    never the host-process fallback unless the operator allows it (HOST_FALLBACK_FOR)."""

    adapter: str
    actor: str = ""
    ref: str = ""
    operator: bool = False

    @classmethod
    def stored(cls, fields: dict[str, Any]) -> Source:
        """The source as its Submitted event holds it; an event from before `operator` was
        recorded says it by the way the job came in."""
        adapter = str(fields.get("adapter", ""))
        operator = fields.get("operator", adapter in OPERATOR_ADAPTERS)
        actor, ref = str(fields.get("actor", "")), str(fields.get("ref", ""))
        return cls(adapter, actor, ref, operator is True)

    @property
    def stranger(self) -> str:
        """Who sent the job, in words, when it is not the operator's own ("" when it is)."""
        if self.operator:
            return ""
        return f"{self.actor} via {self.adapter}" if self.actor else f"someone via {self.adapter}"


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    version: int
    created: bool
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ExecutionView:
    """One execution as callers see it; `output` is what it produced once it completed."""

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
    output: RunOutput | None
    error: str

    @property
    def state_name(self) -> str:
        return self.state.label

    # What callers read most of the output, None / empty until the execution completed.
    @property
    def exit_code(self) -> int | None:
        return self.output.exit_code if self.output else None

    @property
    def stdout(self) -> str:
        return self.output.stdout if self.output else ""

    @property
    def stderr(self) -> str:
        return self.output.stderr if self.output else ""

    @property
    def published_result(self) -> dict[str, Any] | None:
        return self.output.published_result if self.output else None

    def to_wire(self, namespace: str = "") -> WireExecution:
        """Bacalhau's Execution; what the ledger does not track holds Bacalhau's zeros."""
        active = self.state in ACTIVE_EXECUTION_STATES
        return WireExecution(
            ID=self.id,
            Namespace=namespace,
            Name=self.id,
            NodeID=self.node,
            JobID=self.job_id,
            JobVersion=self.job_version,
            AllocatedResources={"Tasks": {}},
            DesiredState=WireExecutionState(
                StateType=DESIRED_RUNNING if active else DESIRED_STOPPED
            ),
            ComputeState=WireExecutionState(StateType=int(self.state), Message=self.message),
            PublishedResult=self.published_result,
            RunOutput=WireRunOutput.of(self.output, self.error),
            CreateTime=_nanos(self.created_at),
            ModifyTime=_nanos(self.modified_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire's fields the ledger tracks, as plain data, with the executor and notes."""
        tracked = self.to_wire().model_dump(mode="json", by_alias=True, include=_TRACKED)
        return {**tracked, "Executor": self.executor, "Notes": list(self.notes)}


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

    def to_wire(self) -> WireJob:
        """Bacalhau's Job: the canonical spec plus the server-owned fields, its maps and
        lists never null (the Go client expects them empty)."""
        job = self.job
        return WireJob(
            ID=self.id,
            Name=self.name,
            Namespace=self.namespace,
            Type=job.get("Type", "batch"),
            Priority=job.get("Priority", 0),
            Count=job.get("Count", 1),
            Constraints=job.get("Constraints") or [],
            Meta=job.get("Meta") or {},
            Labels=job.get("Labels") or {},
            Tasks=job.get("Tasks") or [],
            State=WireJobState(StateType=self.state, Message=self.message),
            Version=self.version,
            Revision=self.revision,
            CreateTime=_nanos(self.created_at),
            ModifyTime=_nanos(self.modified_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """Bacalhau's Job shape as plain data."""
        return self.to_wire().model_dump(mode="json")

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
            source=Source.stored(job.source),
            report=copy.deepcopy(job.report),
            created_at=job.created_on,
            modified_at=job.modified_on,
            executions=executions,
            executor=job.executor,
            queued_by=job.queued_by,
        )


def _execution_fields(execution: Execution) -> dict[str, Any]:
    """The execution's fields, what is mutable copied so that the view shares none of it."""
    values = {f.name: getattr(execution, f.name) for f in fields(execution)}
    values["notes"] = list(execution.notes)
    output = execution.output
    if output is not None and output.published_result is not None:
        values["output"] = replace(output, published_result=copy.deepcopy(output.published_result))
    return values


@dataclass(frozen=True)
class Page:
    """One page of jobs; pass `next_token` back for the next (None: this was the last)."""

    items: list[JobView]
    next_token: str | None


# The wire fields of an execution the ledger itself tracks: what `ExecutionView.to_dict` keeps.
_TRACKED = frozenset(
    {
        "ID",
        "JobID",
        "JobVersion",
        "NodeID",
        "ComputeState",
        "RunOutput",
        "PublishedResult",
        "CreateTime",
        "ModifyTime",
    }
)


def _nanos(moment: datetime | None) -> int:
    return to_nanos(moment) if moment else 0
