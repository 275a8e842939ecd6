"""One task's control groups: the kernel's unit for its memory, processes and CPU, and the
handle that ends every process of it at once.

A process limit per process (rlimits) is no limit per task: twelve processes of 200 MiB each
pass a 256 MiB RLIMIT_AS, and a process that calls `setsid()` leaves the process group a kill
is sent to. A cgroup holds every descendant whatever it does, so the task's memory (tmpfs
pages included), process count and CPU are capped together, and `kill()` ends all of it.

Where the machine has cgroup v2 (a unified hierarchy, `cgroup.kill`), one directory does
everything; on cgroup v1 (or hybrid) one directory per controller (memory, pids, cpu) holds
the limits, and the task is ended through the unified hierarchy's `cgroup.kill` when there is
one, else by killing each process it holds, again until none is left. The task's directories
sit below the runner's own cgroup in each hierarchy (so an operator's limits on the runner
also bound its tasks), in a `klippfisk` directory, named `<job id>.<execution id>`
(`cgroup_name`): a runner sweeping after a crash finds them, and the execution each belongs
to, by that name. Without root, or where cgroups cannot be written, `create` still returns a
cgroup, holding nothing; `enforced` says which limits the kernel keeps, and the
engine says the rest in the execution's notes: never silently less.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CGROUP_ROOT", "TaskCgroup", "cgroup_execution", "cgroup_name", "task_cgroup_names"]

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "klippfisk"
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
EMPTY_WAIT_SECONDS = 10.0


def cgroup_name(job_id: str, execution_id: str) -> str:
    """The name of an execution's cgroups: the job's id tells a sweep where to look it up."""
    return f"{job_id}.{execution_id}"


def cgroup_execution(name: str) -> tuple[str, str] | None:
    """(job id, execution id) of a cgroup named by `cgroup_name`; None for any other name."""
    job_id, dot, execution_id = name.partition(".")
    return (job_id, execution_id) if dot and job_id and execution_id else None


@dataclass(frozen=True)
class _Layout:
    """Where this machine's hierarchies are: v2 (`unified`) and the v1 controllers' roots,
    each the runner's own cgroup in that hierarchy."""

    unified: Path | None
    v1: dict[str, Path]
    v2_controllers: frozenset[str] = frozenset()

    @classmethod
    def read(cls, root: Path = CGROUP_ROOT) -> _Layout:
        own = _own_cgroups()
        if (root / "cgroup.controllers").is_file():  # a pure v2 machine
            unified = root / own.get("", "/").lstrip("/")
            controllers = frozenset((root / "cgroup.controllers").read_text().split())
            return cls(unified=unified, v1={}, v2_controllers=controllers)
        v1 = {
            name: root / name / own[name].lstrip("/")
            for name in V1_CONTROLLERS
            if name in own and (root / name).is_dir()
        }
        hybrid = root / "unified"
        unified = (
            hybrid / own.get("", "/").lstrip("/") if (hybrid / "cgroup.procs").exists() else None
        )
        return cls(unified=unified, v1=v1)


def _own_cgroups() -> dict[str, str]:
    """{controller: path} of this process, from /proc/self/cgroup ("" for the v2 line)."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller.removeprefix("name=")] = path
    return paths


@dataclass
class TaskCgroup:
    """The cgroup directories of one task, and what the kernel enforces through them."""

    name: str
    dirs: dict[str, Path] = field(default_factory=dict)  # "unified" or a v1 controller -> dir
    enforced: list[str] = field(default_factory=list)  # "memory", "pids", "cpu", "kill"

    @classmethod
    def create(
        cls, name: str, *, memory_bytes: int, pids: int, cpu_millicores: int = 0
    ) -> TaskCgroup:
        """Make the task's cgroups and set its limits; whatever cannot be made is left out
        (and not in `enforced`)."""
        group = cls(name)
        for key, base in _bases():
            group._make(key, base)
        layout_v2 = _Layout.read().v2_controllers if group.dirs else frozenset()
        group._limit(memory_bytes, pids, cpu_millicores, layout_v2)
        return group

    @classmethod
    def existing(cls, name: str) -> TaskCgroup:
        """The cgroups a task named `name` left, to end it (a sweep after a crash)."""
        dirs = {key: base / GROUP / name for key, base in _bases()}
        return cls(name, {key: path for key, path in dirs.items() if path.is_dir()})

    def _make(self, key: str, base: Path) -> None:
        path = base / GROUP / self.name
        for _ in range(3):  # another task's `remove` may take the shared parent meanwhile
            try:
                path.mkdir(parents=True, exist_ok=True)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.info("cannot create the %s cgroup %s: %s", key, path, exc.strerror)
                return
            self.dirs[key] = path
            return

    def _limit(self, memory: int, pids: int, millicores: int, v2: frozenset[str]) -> None:
        unified = self.dirs.get("unified")
        if unified is not None and v2:
            self._enable_v2(unified.parent, v2)
        writes = {
            "memory": [("memory", "memory.limit_in_bytes", memory)]
            + [("memory", "memory.memsw.limit_in_bytes", memory)]
            + [("unified", "memory.max", memory), ("unified", "memory.swap.max", 0)],
            "pids": [("pids", "pids.max", pids), ("unified", "pids.max", pids)],
        }
        if millicores:
            quota = max(1000, millicores * CPU_PERIOD_US // 1000)
            self._write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US)  # the quota's unit
            writes["cpu"] = [
                ("cpu", "cpu.cfs_quota_us", quota),
                ("unified", "cpu.max", f"{quota} {CPU_PERIOD_US}"),
            ]
        for limit, targets in writes.items():
            written = [self._write(key, knob, value) for key, knob, value in targets]  # all
            if any(written):
                self.enforced.append(limit)
        if self.dirs:  # cgroup.kill, or every process listed and killed (see `kill`)
            self.enforced.append("kill")

    @staticmethod
    def _enable_v2(parent: Path, controllers: frozenset[str]) -> None:
        wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in controllers)
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text(wanted)

    def _write(self, key: str, knob: str, value: object) -> bool:
        path = self.dirs.get(key)
        if path is None or not (path / knob).exists():
            return False
        try:
            (path / knob).write_text(str(value))
        except OSError as exc:
            log.info("cannot set %s to %s: %s", path / knob, value, exc.strerror)
            return False
        return True

    @property
    def procs_files(self) -> list[str]:
        """The files the task's first process writes its pid into, before anything else,
        so that every process it makes is born inside."""
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> set[int]:
        """Every process in the task's cgroups now."""
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process of the task, whatever its session or process group."""
        unified = self.dirs.get("unified")
        if unified is not None and (unified / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (unified / "cgroup.kill").write_text("1")
                return
        for pid in self.pids():  # v1: new processes can appear while we go; `remove` loops
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, wait_seconds: float = EMPTY_WAIT_SECONDS) -> bool:
        """Kill what is left, wait until the cgroups are empty, delete them; False (and a
        warning) if a process would not go."""
        deadline = time.monotonic() + wait_seconds
        while self.pids():
            if time.monotonic() > deadline:
                log.warning("cgroup %s still has processes %s", self.name, sorted(self.pids()))
                return False
            self.kill()
            time.sleep(0.01)
        for key, path in list(self.dirs.items()):
            if _rmdir(path):
                del self.dirs[key]
                with contextlib.suppress(OSError):  # the shared parent, once no task uses it
                    path.parent.rmdir()
        return not self.dirs

    @property
    def memory_peak(self) -> int | None:
        """The most memory the task used at once (bytes), where the kernel says."""
        for key, knob in (("memory", "memory.max_usage_in_bytes"), ("unified", "memory.peak")):
            path = self.dirs.get(key)
            with contextlib.suppress(OSError, ValueError):
                if path is not None:
                    return int((path / knob).read_text())
        return None

    @property
    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the task for going over its memory."""
        for key, knob, marker in (
            ("memory", "memory.oom_control", "oom_kill "),
            ("unified", "memory.events", "oom_kill "),
        ):
            path = self.dirs.get(key)
            with contextlib.suppress(OSError):
                if path is not None:
                    for line in (path / knob).read_text().splitlines():
                        if line.startswith(marker) and int(line.split()[1]) > 0:
                            return True
        return False


def _rmdir(path: Path) -> bool:
    for _ in range(100):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                log.warning("cannot remove cgroup %s: %s", path, exc.strerror)
                return False
            time.sleep(0.01)
    return False


def _bases() -> list[tuple[str, Path]]:
    """("unified" or a v1 controller, the runner's own cgroup there), writable or not."""
    try:
        layout = _Layout.read()
    except OSError as exc:
        log.info("cgroups unavailable (%s); task limits are per process only", exc)
        return []
    unified = [("unified", layout.unified)] if layout.unified is not None else []
    return unified + list(layout.v1.items())


def task_cgroup_names() -> Iterator[str]:
    """The names (execution ids) of every task cgroup below this runner's cgroups, for the
    sweep that ends tasks whose executions are over."""
    seen: set[str] = set()
    for _, base in _bases():
        with contextlib.suppress(OSError):
            for entry in (base / GROUP).iterdir():
                if entry.is_dir() and entry.name not in seen:
                    seen.add(entry.name)
                    yield entry.name
