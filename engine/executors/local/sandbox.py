"""A throw-away Linux sandbox for host processes, with nothing to install.

The work is done by `sandbox_init.py`, started with this interpreter in isolated mode: it
gives the task its own mount, PID and (unless the spec allows networking) network
namespace, a fresh read-only root holding only the host's /usr and /etc, a new /proc, a few
/dev nodes, a private /tmp, inputs read-only and result paths writable at their targets,
rlimits on processes, address space, CPU time and file size (so output cannot fill the
disk), and (when we are root) an unprivileged uid
of the task's own, so the process limit counts only its processes. Without root, an
unprivileged user namespace stands in. The task is PID 1 of its namespace, so when it ends,
or is killed at its deadline, every process it made goes with it; and the sandbox dies with
the runner. No bubblewrap, no Docker, no util-linux tools.
"""

from __future__ import annotations

import marshal
import math
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.inputs import Mount

__all__ = ["SETUP_FAILED", "Sandbox", "pick_task_uid"]

SETUP_FAILED = 125  # sandbox_init's exit status when it cannot build the sandbox
INIT = Path(__file__).with_name("sandbox_init.py")
UID_BASE = 100_000
UID_SPAN = 50_000


def pick_task_uid() -> int | None:
    """A uid of its own for one task when we are root (so limits count only it), else None."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + random.randrange(UID_SPAN)


@dataclass(frozen=True)
class Sandbox:
    """How to start `argv` sandboxed: the root mount point, what to show, which limits."""

    root: Path
    mounts: Sequence[Mount]
    limits: TaskLimits
    network: bool = False
    workdir: str = "/"
    uid: int | None = None

    def command(self, argv: Sequence[str]) -> list[str]:
        """The host command line that runs `argv` inside the sandbox."""
        self.root.mkdir(parents=True, exist_ok=True)
        spec = {
            "root": str(self.root),
            "mounts": [[str(m.source), m.target, m.read_only] for m in self.mounts],
            "network": self.network,
            "userns": os.geteuid() != 0,
            "uid": self.uid,
            "workdir": self.workdir,
            "nproc": self.limits.pids,
            "as_bytes": self.limits.memory_bytes,
            "cpu_seconds": math.ceil(self.limits.timeout_seconds) + 1,
            "fsize_bytes": self.limits.output_bytes,
            "tmp_bytes": self.limits.memory_bytes,
        }
        return [sys.executable, "-I", "-S", str(INIT), marshal.dumps(spec).hex(), *argv]
