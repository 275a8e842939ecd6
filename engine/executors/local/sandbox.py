"""A throw-away Linux sandbox for host processes, with nothing to install.

The work is done by `sandbox_init.py`, started with this interpreter in isolated mode: it
puts the task in its cgroups (memory, processes and CPU for the whole task, and one kill
for all of it), gives it its own mount, PID, IPC, UTS and (unless the spec allows
networking) network namespace, a fresh read-only root holding only the host's /usr and
/etc, a new /proc, a few /dev nodes, inputs read-only, its writable paths (result paths,
/tmp) as tmpfs mounts capped at the task's disk size and inode count, rlimits on processes,
address space, CPU time and file size (so stdout and stderr cannot fill the disk), and
(when we are root) an unprivileged uid of the task's own. Without root, an unprivileged user
namespace stands in. The task is PID 1 of its namespace, so when it ends, or is killed at
its deadline, every process it made goes with it; and the sandbox dies with the runner.
After the task, what it left in its result paths is copied to the host as plain files and
directories (never links or special files), within the same caps. No bubblewrap, no Docker,
no util-linux tools.
"""

from __future__ import annotations

import functools
import marshal
import math
import os
import py_compile
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.inputs import Mount

__all__ = ["MAX_INODES", "SETUP_FAILED", "Sandbox", "pick_task_uid"]

SETUP_FAILED = 125  # sandbox_init's exit status when it cannot build the sandbox
INIT = Path(__file__).with_name("sandbox_init.py")
UID_BASE = 100_000
UID_SPAN = 50_000
# Files and directories a task may make in each writable path (and copy out of its results).
MAX_INODES = 10_000


def pick_task_uid() -> int | None:
    """A uid of its own for one task when we are root (so limits count only it), else None."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + random.randrange(UID_SPAN)


@dataclass(frozen=True)
class Sandbox:
    """How to start `argv` sandboxed: the root mount point, what to show (`results`: the
    result paths, each a host directory their contents are copied to afterwards), which
    limits, the cgroups to join, and where to report what the copy skipped."""

    root: Path
    mounts: Sequence[Mount]
    results: Sequence[Mount]
    limits: TaskLimits
    report: Path
    cgroup_procs: Sequence[str] = ()
    network: bool = False
    workdir: str = "/"
    uid: int | None = None

    def command(self, argv: Sequence[str]) -> list[str]:
        """The host command line that runs `argv` inside the sandbox."""
        self.root.mkdir(parents=True, exist_ok=True)
        spec = {
            "root": str(self.root),
            "mounts": [[str(m.source), m.target, m.read_only] for m in self.mounts],
            "results": [[str(m.source), m.target] for m in self.results],
            "report": str(self.report),
            "cgroup_procs": list(self.cgroup_procs),
            "network": self.network,
            "userns": os.geteuid() != 0,
            "runner_pid": os.getpid(),
            "uid": self.uid,
            "workdir": self.workdir,
            "nproc": self.limits.pids,
            "as_bytes": self.limits.memory_bytes,
            "cpu_seconds": math.ceil(self.limits.timeout_seconds) + 1,
            "fsize_bytes": self.limits.output_bytes,
            "disk_bytes": self.limits.output_bytes,
            "disk_inodes": MAX_INODES,
        }
        return [sys.executable, "-I", "-S", _init_program(), marshal.dumps(spec).hex(), *argv]


@functools.cache
def _init_program() -> str:
    """`sandbox_init` as bytecode, compiled once per process: a script given as source is
    compiled again on every run, about 2 ms of each task's start. The source where the
    bytecode cannot be written (a read-only install)."""
    try:
        return py_compile.compile(str(INIT), doraise=True)
    except (OSError, py_compile.PyCompileError):
        return str(INIT)
