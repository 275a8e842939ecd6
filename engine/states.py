"""Bacalhau's job and execution states: the one definition the domain and the wire share.

The job aggregate moves through the job states and the states its executions are in; the
wire (engine/wire.py) writes and reads the same values, as Bacalhau's API does: job states
as strings, execution states as their v1.5+ numbers. The engine itself only ever puts an
execution in NEW, RUNNING, COMPLETED, FAILED or CANCELLED; the other execution states are
Bacalhau's, named here so that what a cluster reports can be read by name.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "ACTIVE_EXECUTION_STATES",
    "TERMINAL_STATES",
    "ExecutionState",
    "JobState",
]


class JobState(StrEnum):
    """Bacalhau's job states; the last three are terminal."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.STOPPED})


class ExecutionState(IntEnum):
    """Bacalhau's compute states, numbered as from v1.5 on (as its v1.5.2 OpenAPI lists
    them): Running and Publishing were inserted after BidAccepted, pushing Completed to 9."""

    UNDEFINED = 0
    NEW = 1
    ASK_FOR_BID = 2
    ASK_FOR_BID_ACCEPTED = 3
    ASK_FOR_BID_REJECTED = 4
    BID_ACCEPTED = 5
    RUNNING = 6
    PUBLISHING = 7
    BID_REJECTED = 8
    COMPLETED = 9
    FAILED = 10
    CANCELLED = 11

    @property
    def label(self) -> str:
        """Bacalhau's name for the state: `AskForBidAccepted`, `Completed`."""
        return "".join(word.capitalize() for word in self.name.split("_"))


ACTIVE_EXECUTION_STATES = frozenset({ExecutionState.NEW, ExecutionState.RUNNING})
