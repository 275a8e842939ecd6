"""The `noop` engine: completes at once with exit code 0 and no output, as Bacalhau's does.

Useful for exercising the whole path (ledger, runner, results) without running anything.
"""

from __future__ import annotations

import threading

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.results import summarise

__all__ = ["NoopEngine"]


class NoopEngine:
    """Runs `noop` tasks."""

    def run(
        self, workspace: Workspace, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        hooks.started("local", [])
        return summarise(workspace.results, exit_code=0)
