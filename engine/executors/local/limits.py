"""The limits one task runs under: wall clock, memory, processes.

The spec says what the task asked for; the settings fill in what it left out, so every
local execution has a finite deadline and a memory ceiling even when the job came from a
profile (Bacalhau's) that sets neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.executors.base import ExecutorError
from engine.settings import ExecutorSettings
from spec.quantities import parse_bytes, parse_cpu

__all__ = ["TaskLimits"]


@dataclass(frozen=True)
class TaskLimits:
    """Wall clock (seconds), memory (bytes), process count and CPU (millicores, 0 = no cap)
    for one execution."""

    timeout_seconds: float
    memory_bytes: int
    pids: int
    cpu_millicores: int = 0

    @classmethod
    def of(cls, task: dict[str, Any], settings: ExecutorSettings) -> TaskLimits:
        timeouts = task.get("Timeouts") or {}
        timeout = timeouts.get("ExecutionTimeout") or timeouts.get("TotalTimeout")
        resources = task.get("Resources") or {}
        memory, cpu = resources.get("Memory"), resources.get("CPU")
        try:
            memory_bytes = parse_bytes(memory) if memory else 0
        except ValueError as exc:
            raise ExecutorError(f"Resources.Memory {memory!r} is not a size: {exc}") from exc
        try:
            cpu_millicores = parse_cpu(cpu) if cpu else 0
        except ValueError as exc:
            raise ExecutorError(f"Resources.CPU {cpu!r} is not a CPU amount: {exc}") from exc
        return cls(
            timeout_seconds=float(timeout) if timeout else settings.default_timeout_seconds,
            memory_bytes=memory_bytes or settings.default_memory_bytes,
            pids=settings.pids_limit,
            cpu_millicores=cpu_millicores,
        )
