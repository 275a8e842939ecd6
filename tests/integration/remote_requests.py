"""The execution request both remote-executor test files send: one place, one shape.

A job a user could have written (three partitions, a label, a timeout), so the tests also
pin what the executor changes on the way out (one partition, its own label) and keeps.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from klippfisk.engine.executors.base import ExecutionRequest

__all__ = ["request_for"]


def request_for(tmp_path: Path, *command: str, engine: str = "docker") -> ExecutionRequest:
    """An execution of `command` (entrypoint, then parameters) in a busybox task."""
    task = {
        "Name": "main",
        "Engine": {
            "Type": engine,
            "Params": {
                "Image": "busybox:1.36",
                "Entrypoint": [command[0]],
                "Parameters": list(command[1:]),
            },
        },
        "Timeouts": {"ExecutionTimeout": 60},
    }
    job = {
        "Name": "hello",
        "Type": "batch",
        "Count": 3,
        "Labels": {"team": "fish"},
        "Tasks": [task],
    }
    return ExecutionRequest(
        job_id="j-local",
        execution_id=f"e-{uuid.uuid4()}",
        job=job,
        task=task,
        task_cid="bagaaieratask",
        results_dir=tmp_path,
    )
