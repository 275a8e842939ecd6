"""Bacalhau API v1 on the wire: the shapes and typing rules both of our HTTP sides speak.

Bacalhau's own OpenAPI declares every enum as an integer, but its Go server and CLI do not:
job state, network and history type travel as strings, execution states as integers (whose
numbering changed in v1.5), times as RFC 3339 with a zone, Create/ModifyTime as int64
nanoseconds, errors as `{Status, Message, RequestID, Code, Component, Hint}` and lists as
`{"Items": [...], "NextToken": ""}`. The server (adapters/http) builds its bodies with these
helpers and the remote executor (engine/executors/bacalhau.py) parses with these models, so
each side can be tested against the other and both against the rules written down once here.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
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

__all__ = [
    "EXECUTION_STATES",
    "EXECUTION_STATES_PRE_V15",
    "JOBS_PATH",
    "JOB_STATES",
    "TERMINAL_JOB_STATES",
    "APIError",
    "BuildVersion",
    "GetJobResponse",
    "ListResponse",
    "PagingToken",
    "PutJobResponse",
    "StopJobResponse",
    "WireError",
    "WireExecution",
    "WireHistory",
    "WireJob",
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

JOB_STATES: tuple[str, ...] = ("Pending", "Queued", "Running", "Completed", "Failed", "Stopped")
TERMINAL_JOB_STATES: frozenset[str] = frozenset({"Completed", "Failed", "Stopped"})

# Execution (compute) states by number, from Bacalhau v1.5 on: Running and Publishing were
# inserted after BidAccepted, pushing Completed from 7 to 9.
EXECUTION_STATES: dict[int, str] = {
    0: "Undefined",
    1: "New",
    2: "AskForBid",
    3: "AskForBidAccepted",
    4: "AskForBidRejected",
    5: "BidAccepted",
    6: "Running",
    7: "Publishing",
    8: "BidRejected",
    9: "Completed",
    10: "Failed",
    11: "Cancelled",
}
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
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


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
    return {
        "Status": status,
        "Message": message,
        "RequestID": request_id,
        "Code": code,
        "Component": component,
        "Hint": hint,
    }


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
JobStateName = Literal[
    "Undefined", "Pending", "Queued", "Running", "Completed", "Failed", "Stopped"
]


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


class JobState(_Wire):
    StateType: JobStateName
    Message: str = ""


class ExecutionState(_Wire):
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
    State: JobState
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
    """One JobHistory entry: Type is "JobLevel" or "ExecutionLevel", Time RFC 3339."""

    SeqNum: StrictInt
    Type: Literal["JobLevel", "ExecutionLevel"]
    JobID: str
    JobVersion: StrictInt = 0
    ExecutionID: str = ""
    Event: WireEvent | None = None
    Time: Rfc3339
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
    DesiredState: ExecutionState
    ComputeState: ExecutionState
    PublishedResult: dict[str, Any] | None = None
    RunOutput: WireRunOutput | None = None
    PreviousExecution: str = ""
    NextExecution: str = ""
    FollowupEvalID: str = ""
    Revision: StrictInt = 0
    CreateTime: Nanos
    ModifyTime: Nanos


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
