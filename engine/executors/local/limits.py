"""The limits one task runs under: wall clock, memory, processes, disk, CPU.

The spec says what the task asked for; the settings fill in what it left out, so every
local execution has a finite deadline and a memory ceiling even when the job came from a
profile (Bacalhau's) that sets neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klippfisk.engine.executors.base import ExecutorError
from klippfisk.engine.settings import ExecutorSettings
from klippfisk.spec.quantities import parse_bytes, parse_cpu

__all__ = ["TaskLimits"]


@dataclass(frozen=True)
class TaskLimits:
    """Wall clock (seconds), memory (bytes), process count, disk (bytes: Resources.Disk, else
    the operator's cap; the largest file the task may write, and the size of each of its
    writable paths) and CPU (millicores, 0 = no cap) for one execution.

    The wall clock is ExecutionTimeout (else the default): one run's limit. TotalTimeout is
    not a stand-in for it, since it counts from submission, queueing included."""

    timeout_seconds: float
    memory_bytes: int
    pids: int
    output_bytes: int
    cpu_millicores: int = 0

    @classmethod
    def of(cls, task: dict[str, Any], settings: ExecutorSettings) -> TaskLimits:
        timeout = (task.get("Timeouts") or {}).get("ExecutionTimeout")
        resources = task.get("Resources") or {}
        memory_bytes = _quantity(resources, "Memory", parse_bytes, "a size")
        disk_bytes = _quantity(resources, "Disk", parse_bytes, "a size")
        cpu_millicores = _quantity(resources, "CPU", parse_cpu, "a CPU amount")
        return cls(
            timeout_seconds=float(timeout) if timeout else settings.default_timeout_seconds,
            memory_bytes=memory_bytes or settings.default_memory_bytes,
            pids=settings.pids_limit,
            output_bytes=disk_bytes or settings.max_output_bytes,
            cpu_millicores=cpu_millicores,
        )


def _quantity(resources: dict[str, Any], key: str, parse: Callable[[Any], int], what: str) -> int:
    """Resources.<key> parsed, 0 when the spec leaves it out."""
    value = resources.get(key)
    try:
        return parse(value) if value else 0
    except ValueError as exc:
        raise ExecutorError(f"Resources.{key} {value!r} is not {what}: {exc}") from exc
