"""Bacalhau API v1 on the wire: the shapes and typing rules both of our HTTP sides speak.

Bacalhau's own OpenAPI declares every enum as an integer, but its Go server and CLI do not:
job state, network and history type travel as strings, execution states as integers (whose
numbering changed in v1.5), times as RFC 3339 with a zone, Create/ModifyTime as int64
nanoseconds, errors as `{Status, Message, RequestID, Code, Component, Hint}` and lists as
`{"Items": [...], "NextToken": ""}`. The models below are the one definition of those shapes:
the server builds its bodies from them (the ledger's views and history, adapters/http) and
the remote executor (engine/executors/bacalhau.py) reads with them, so a change to the wire
is one edit here. States and the run output are the domain's own types (engine/states.py,
engine/run_output.py); the models carry them as Bacalhau writes them.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
)

from klippfisk.engine import run_output as domain  # its RunOutput; here also a field name
from klippfisk.engine.states import ExecutionState, JobState

__all__ = [
    "DESIRED_RUNNING",
    "DESIRED_STOPPED",
    "EXECUTION_STATES",
    "EXECUTION_STATES_PRE_V15",
    "JOBS_PATH",
    "UNDEFINED",
    "APIError",
    "BuildVersion",
    "GetJobResponse",
    "ListResponse",
    "PagingToken",
    "PutJobResponse",
    "StopJobResponse",
    "StateChangeExecution",
    "StateChangeJob",
    "WireError",
    "WireEvent",
    "WireExecution",
    "WireExecutionState",
    "WireHistory",
    "WireJob",
    "WireJobState",
    "WireRunOutput",
    "error_body",
    "execution_state_name",
    "execution_state_number",
    "from_nanos",
    "list_body",
    "parse_rfc3339",
    "rfc3339",
    "to_nanos",
    "uses_pre_v15_execution_states",
]

# Where API v1 keeps jobs: PUT/POST submit, GET lists, /{id}/... reads one.
JOBS_PATH = "/api/v1/orchestrator/jobs"

# The job state Bacalhau writes for "none yet" (a job's state before its submission).
UNDEFINED = "Undefined"
# An execution's DesiredState (Bacalhau's ExecutionDesiredStateType): Pending 0, Running 1,
# Stopped 2. The engine does not track it: an execution is wanted running while it is active.
DESIRED_RUNNING, DESIRED_STOPPED = 1, 2

# Execution (compute) states by number, from Bacalhau v1.5 on (the numbering we speak).
EXECUTION_STATES: dict[int, str] = {int(state): state.label for state in ExecutionState}
# The same before v1.5 (v1.0 to v1.4): 7 meant Completed.
EXECUTION_STATES_PRE_V15: dict[int, str] = {
    0: "Undefined",
    1: "New",
    2: "AskForBid",
    3: "AskForBidAccepted",
    4: "AskForBidRejected",
    5: "BidAccepted",
    6: "BidRejected",
    7: "Completed",
    8: "Failed",
    9: "Cancelled",
}
_EXECUTION_NUMBERS = {name: number for number, name in EXECUTION_STATES.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class WireError(ValueError):
    """A value on the wire breaks Bacalhau's rules (bad time, bad token, wrong type)."""


def uses_pre_v15_execution_states(git_version: str) -> bool:
    """True when a server's version (`v1.4.2`, `1.3.0-rc1`) predates the v1.5 renumbering.

    Unparseable or empty versions count as current: every cluster still maintained is >= v1.5.
    """
    core = git_version.strip().lstrip("vV").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return False
    return (major, minor) < (1, 5)


def execution_state_name(number: int, *, pre_v15: bool = False) -> str:
    """The name of an execution state number in the given numbering; unknown numbers say so."""
    table = EXECUTION_STATES_PRE_V15 if pre_v15 else EXECUTION_STATES
    return table.get(number, f"Unknown({number})")


def execution_state_number(name: str) -> int:
    """The v1.5+ number of an execution state name (the numbering our server speaks)."""
    try:
        return _EXECUTION_NUMBERS[name]
    except KeyError:
        raise WireError(f"unknown execution state {name!r}") from None


def rfc3339(moment: datetime | int) -> str:
    """A time (aware datetime or int64 ns since the epoch) as Go writes it: RFC 3339, UTC `Z`."""
    if isinstance(moment, int):
        seconds, nanos = divmod(moment, 1_000_000_000)
        base = datetime.fromtimestamp(seconds, UTC)
        fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
        return base.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    if moment.tzinfo is None:
        raise WireError("a time without a zone cannot go on the wire; attach one (UTC)")
    return rfc3339(to_nanos(moment))


def parse_rfc3339(text: str) -> datetime:
    """Read an RFC 3339 time with its zone (Go's nanoseconds are cut to microseconds)."""
    if not isinstance(text, str) or "T" not in text:
        raise WireError(f"{text!r} is not an RFC 3339 time; expected e.g. 2024-01-02T03:04:05Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WireError(
            f"{text!r} is not an RFC 3339 time; expected e.g. 2024-01-02T03:04:05Z"
        ) from None
    if moment.tzinfo is None:
        raise WireError(f"{text!r} has no zone; RFC 3339 times end in Z or +hh:mm")
    return moment


def to_nanos(moment: datetime) -> int:
    """An aware datetime as int64 nanoseconds since the epoch (Create/ModifyTime)."""
    if moment.tzinfo is None:
        raise WireError("a time without a zone has no epoch offset; attach one (UTC)")
    return (moment - _EPOCH) // _MICROSECOND * 1_000  # exact: both sides are whole microseconds


def from_nanos(nanos: int) -> datetime:
    """int64 nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(nanos / 1_000_000_000, UTC)


def error_body(
    status: int,
    message: str,
    *,
    code: str,
    request_id: str = "",
    component: str = "APIServer",
    hint: str = "",
) -> dict[str, Any]:
    """The error object Bacalhau's Go client decodes (`apimodels.APIError`)."""
    error = APIError(
        Status=status,
        Message=message,
        RequestID=request_id,
        Code=code,
        Component=component,
        Hint=hint,
    )
    return error.model_dump()


def list_body(items: list[Any], next_token: str = "") -> dict[str, Any]:
    """A list response: Bacalhau always sends NextToken, empty when there is no more."""
    return {"Items": items, "NextToken": next_token}


class PagingToken(BaseModel):
    """Bacalhau's paging token: base64url (no padding) of `sort_by:Y|N:limit:offset`."""

    sort_by: str = ""
    reverse: bool = False
    limit: int = 0
    offset: int = 0

    def encode(self) -> str:
        raw = f"{self.sort_by}:{'Y' if self.reverse else 'N'}:{self.limit}:{self.offset}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PagingToken:
        """Read a token a client sent back; anything else is a clear WireError."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            sort_by, reverse, limit, offset = raw.split(":")
            return cls(
                sort_by=sort_by, reverse=reverse == "Y", limit=int(limit), offset=int(offset)
            )
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise WireError(
                f"invalid paging token {token!r}; pass back the NextToken of the previous page"
            ) from None


def _check_rfc3339(text: str) -> str:
    parse_rfc3339(text)
    return text


Rfc3339 = Annotated[str, AfterValidator(_check_rfc3339)]
Nanos = Annotated[StrictInt, Field(ge=0)]
JobStateName = JobState | Literal["Undefined"]


class _Wire(BaseModel):
    """Go's decoder ignores fields it does not know, so do we."""

    model_config = ConfigDict(extra="ignore")


class APIError(_Wire):
    Status: StrictInt
    Message: str
    RequestID: str = ""
    Code: str = ""
    Component: str = ""
    Hint: str = ""


class WireJobState(_Wire):
    StateType: JobStateName
    Message: str = ""


class WireExecutionState(_Wire):
    StateType: StrictInt
    Message: str = ""


class WireJob(_Wire):
    """A job as the Go server writes it: state a string, times int64 ns."""

    ID: str
    Name: str
    Namespace: str
    Type: str
    Priority: StrictInt = 0
    Count: StrictInt = 0
    Constraints: list[dict[str, Any]] | None = None
    Meta: dict[str, str] | None = None
    Labels: dict[str, str] | None = None
    Tasks: list[dict[str, Any]]
    State: WireJobState
    Version: StrictInt
    Revision: StrictInt
    CreateTime: Nanos
    ModifyTime: Nanos


class StateChangeJob(_Wire):
    Previous: JobStateName | None = None
    New: JobStateName | None = None


class StateChangeExecution(_Wire):
    Previous: StrictInt | None = None
    New: StrictInt | None = None


class WireEvent(_Wire):
    Message: str = ""
    Topic: str = ""
    Timestamp: Rfc3339
    Details: dict[str, str] | None = None


class WireHistory(_Wire):
    """One JobHistory entry: Type is "JobLevel" or "ExecutionLevel", Time RFC 3339. Only
    the state change of its level is set (the other is None, left out on the wire)."""

    SeqNum: StrictInt
    Type: Literal["JobLevel", "ExecutionLevel"]
    JobID: str
    JobVersion: StrictInt = 0
    ExecutionID: str = ""
    Time: Rfc3339
    Event: WireEvent | None = None
    JobState: StateChangeJob | None = None
    ExecutionState: StateChangeExecution | None = None


class WireRunOutput(_Wire):
    """RunCommandResult; note Go writes stderr in lower case."""

    Stdout: str = ""
    StdoutTruncated: StrictBool = False
    Stderr: str = Field(
        "", validation_alias=AliasChoices("stderr", "Stderr"), serialization_alias="stderr"
    )
    StderrTruncated: StrictBool = False
    ExitCode: StrictInt = 0
    ErrorMsg: str = ""

    @classmethod
    def of(cls, output: domain.RunOutput | None, error: str = "") -> WireRunOutput:
        """What Bacalhau writes for an execution: zeros until it has run, and its error."""
        if output is None:
            return cls(ErrorMsg=error)
        return cls(
            Stdout=output.stdout,
            StdoutTruncated=output.stdout_truncated,
            Stderr=output.stderr,
            StderrTruncated=output.stderr_truncated,
            ExitCode=output.exit_code,
            ErrorMsg=error,
        )


class WireExecution(_Wire):
    """An execution: desired and compute states are integers."""

    ID: str
    Namespace: str = ""
    EvalID: str = ""
    Name: str = ""
    NodeID: str = ""
    JobID: str
    JobVersion: StrictInt = 0
    AllocatedResources: dict[str, Any] | None = None
    DesiredState: WireExecutionState
    ComputeState: WireExecutionState
    PublishedResult: dict[str, Any] | None = None
    RunOutput: WireRunOutput | None = None
    PreviousExecution: str = ""
    NextExecution: str = ""
    FollowupEvalID: str = ""
    Revision: StrictInt = 0
    CreateTime: Nanos
    ModifyTime: Nanos

    def run_output(self) -> domain.RunOutput:
        """The execution's result as ours: its RunCommandResult (zeros if it sent none) and
        its PublishedResult when that names a publisher."""
        output = self.RunOutput or WireRunOutput()
        published = self.PublishedResult
        return domain.RunOutput(
            exit_code=output.ExitCode,
            stdout=output.Stdout,
            stderr=output.Stderr,
            stdout_truncated=output.StdoutTruncated,
            stderr_truncated=output.StderrTruncated,
            published_result=published if published and published.get("Type") else None,
        )


ItemT = TypeVar("ItemT")


class ListResponse(_Wire, Generic[ItemT]):
    Items: list[ItemT]
    NextToken: str


class PutJobResponse(_Wire):
    JobID: str
    EvaluationID: str
    Warnings: list[str] | None = None


class StopJobResponse(_Wire):
    EvaluationID: str


class GetJobResponse(_Wire):
    Job: WireJob
    History: ListResponse[WireHistory] | None = None
    Executions: ListResponse[WireExecution] | None = None


class BuildVersion(_Wire):
    Major: str = ""
    Minor: str = ""
    GitVersion: str
    GitCommit: str = ""
    BuildDate: Rfc3339
    GOOS: str = ""
    GOARCH: str = ""
