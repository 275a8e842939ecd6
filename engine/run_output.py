"""What a run that reached its end produced: one type from the executor to the view.

An executor reports it, the ExecutionCompleted event carries it (its fields stored flat, as
they always were), the Execution holds it, the views expose it and the wire writes it as
Bacalhau's RunCommandResult beside the execution's PublishedResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RunOutput"]


@dataclass(frozen=True)
class RunOutput:
    """Bacalhau's RunCommandResult (the exit code and the heads of stdout and stderr, with
    whether each was cut), and where the results were published (None: nowhere)."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    published_result: dict[str, Any] | None = None
