"""`docker` tasks without a Docker daemon: the image's command run as a sandboxed host process.

Many jobs only use an image for its shell or interpreter (`ubuntu` + `/bin/sh -c echo`). For
images whose tools every Linux host has, running the command on the host inside the
sandbox gives the same answer without Docker. The image itself is not used, and the
execution's notes say so; any other image is refused with a sentence naming the fix.

Each execution is a cgroup the kernel knows (`cgroups.TaskCgroup`): the task's memory,
processes and CPU are limited together, and its end (finished, timed out, stopped) is the
end of every process in it, whatever session it made. The notes say which limits hold for
the whole task and which only per process, where cgroups cannot be had: never silently less.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from klippfisk.engine.executors.base import (
    HOST_FALLBACK_NOTE,
    ExecutionHooks,
    ExecutionOutcome,
    ExecutorError,
)
from klippfisk.engine.executors.local.cgroups import TaskCgroup, cgroup_name
from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.executors.local.output_cap import truncation_note
from klippfisk.engine.executors.local.sandbox import SETUP_FAILED, Sandbox, pick_task_uid
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.inputs import Mount
from klippfisk.engine.results import summarise

__all__ = ["HOST_IMAGES", "HostProcessEngine", "containment_note", "image_name", "task_argv"]

log = logging.getLogger(__name__)

NODE = "local"
# Images whose tools the host has, and the command each runs when the spec gives none.
HOST_IMAGES: dict[str, list[str]] = {
    "ubuntu": ["bash"],
    "debian": ["bash"],
    "bash": ["bash"],
    "busybox": ["sh"],
    "alpine": ["/bin/sh"],
    "python": ["python3"],
    "node": ["node"],
}
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPORT = "results-report"  # in the work dir: what the sandbox did not copy out of the results


def image_name(image: str) -> str:
    """`docker.io/library/ubuntu:24.04@sha256:...` -> `ubuntu`."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0].lower()


def task_argv(params: dict[str, Any]) -> list[str]:
    """Entrypoint + Parameters, or the image's default command when both are empty."""
    argv = [str(a) for a in [*(params.get("Entrypoint") or []), *(params.get("Parameters") or [])]]
    return argv or list(HOST_IMAGES.get(image_name(str(params.get("Image", ""))), []))


class HostProcessEngine:
    """Runs `docker` tasks of host-compatible images as sandboxed host processes."""

    def run(
        self, workspace: Workspace, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        params = workspace.engine_params
        image = str(params.get("Image", ""))
        if image_name(image) not in HOST_IMAGES:
            raise ExecutorError(
                f"Image {image!r} needs a Docker daemon and none is reachable. Without one, "
                f"the local executor runs only images whose tools the host has "
                f"({', '.join(sorted(HOST_IMAGES))}); start Docker or use one of those images."
            )
        argv = task_argv(params)
        _check_command(argv[0])
        limits, request = workspace.limits, workspace.request
        cgroup = TaskCgroup.create(
            cgroup_name(request.job_id, request.execution_id),
            memory_bytes=limits.memory_bytes,
            pids=limits.pids,
            cpu_millicores=limits.cpu_millicores,
        )
        try:
            return self._execute(
                _sandbox(workspace, cgroup), cgroup, argv, workspace, hooks, cancel
            )
        finally:
            cgroup.remove()

    def _execute(
        self,
        sandbox: Sandbox,
        cgroup: TaskCgroup,
        argv: list[str],
        workspace: Workspace,
        hooks: ExecutionHooks,
        cancel: threading.Event,
    ) -> ExecutionOutcome:
        image = str(workspace.engine_params.get("Image", ""))
        notes = [
            f"{HOST_FALLBACK_NOTE} ({image}); sandboxed (namespaces, rlimits)",
            containment_note(cgroup, workspace.limits),
        ]
        if sandbox.network:
            notes.append("network: host (the spec allows networking)")
        results = workspace.results
        with results.stdout.open("wb") as out, results.stderr.open("wb") as err:
            proc = subprocess.Popen(
                sandbox.command(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_environment(workspace),
                cwd=workspace.work_dir,
                process_group=0,
            )
            with workspace.watchdog(cancel, lambda: _kill(proc, cgroup)) as dog:
                hooks.started(NODE, notes)  # armed first: whoever sees it Running sees a deadline
                code = proc.wait()
            _wait_until_gone(proc.pid)
        cut = dog.cut_short(results, notes, killed="every process of the task was killed")
        if cut is not None:
            return cut
        if code == SETUP_FAILED:
            detail = results.head(results.stderr)[0].strip().splitlines()[-1:]
            raise ExecutorError(
                f"The host-process sandbox could not be set up ({'; '.join(detail)}); run as "
                "root, or enable unprivileged user namespaces (sysctl "
                "kernel.unprivileged_userns_clone=1), or run the job where Docker is available."
            )
        notes += _truncated(workspace) + _copy_report(workspace)
        if cgroup.oom_killed:
            return summarise(results, error=_over_memory(cgroup, workspace.limits), notes=notes)
        return summarise(results, exit_code=code if code >= 0 else 128 - code, notes=notes)


def _sandbox(workspace: Workspace, cgroup: TaskCgroup) -> Sandbox:
    """The sandbox for this execution: its inputs bound, its result paths as capped tmpfs
    mounts copied out afterwards, in `cgroup`."""
    results = [m for m in workspace.mounts if _is_result(m, workspace)]
    return Sandbox(
        root=workspace.work_dir / "root",
        mounts=[m for m in workspace.mounts if not _is_result(m, workspace)],
        results=results,
        limits=workspace.limits,
        report=workspace.work_dir / REPORT,
        cgroup_procs=cgroup.procs_files,
        network=workspace.network != "none",
        workdir=str(workspace.engine_params.get("WorkingDirectory") or "/"),
        uid=pick_task_uid(),
    )


def _is_result(mount: Mount, workspace: Workspace) -> bool:
    """A result path (a read-write host directory the spec named as input is not one)."""
    return not mount.read_only and mount.source.is_relative_to(workspace.results.path)


def containment_note(cgroup: TaskCgroup, limits: TaskLimits) -> str:
    """Which limits the kernel keeps for the whole task, which only per process, and which
    not at all (CPU has no per-process stand-in)."""
    asked = {"memory": _size(limits.memory_bytes), "pids": str(limits.pids)}
    if limits.cpu_millicores:
        asked["cpu"] = f"{limits.cpu_millicores}m"
    whole = [f"{name} {value}" for name, value in asked.items() if name in cgroup.enforced]
    whole += ["kill"] if "kill" in cgroup.enforced else []
    parts = ["cgroup: " + (", ".join(whole) or "none (it takes root and a writable cgroupfs)")]
    per_process = [f"{n} {v}" for n, v in asked.items() if n not in cgroup.enforced and n != "cpu"]
    if per_process:
        parts.append(f"per process only (rlimits): {', '.join(per_process)}")
    if "cpu" in asked and "cpu" not in cgroup.enforced:
        parts.append(f"not enforced: cpu {asked['cpu']}")
    return "; ".join(parts)


def _size(n: int) -> str:
    """Bytes in the largest binary unit that divides them: 268435456 -> 256Mi."""
    for unit, shift in (("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def _over_memory(cgroup: TaskCgroup, limits: TaskLimits) -> str:
    peak = cgroup.memory_peak
    at = f" (it peaked at {_size(peak)})" if peak else ""
    return (
        f"killed: over its memory limit of {_size(limits.memory_bytes)}{at}; the kernel "
        "ended a process of the task. Ask for more with Resources.Memory, or use less."
    )


def _copy_report(workspace: Workspace) -> list[str]:
    """The sandbox's note on what it did not copy out of the result paths, if anything."""
    report = workspace.work_dir / REPORT
    return [report.read_text()] if report.exists() else []


def _truncated(workspace: Workspace) -> list[str]:
    """Notes for the streams the kernel's file-size limit (RLIMIT_FSIZE) cut off."""
    cap = workspace.limits.output_bytes
    results = workspace.results
    return [
        truncation_note(path.name, cap)
        for path in (results.stdout, results.stderr)
        if path.exists() and path.stat().st_size >= cap
    ]


def _kill(proc: subprocess.Popen[bytes], cgroup: TaskCgroup) -> None:
    """Kill every process of the task's cgroup, and the sandbox's process group (all there
    is where no cgroup could be made: the PID namespace then takes the rest with it)."""
    cgroup.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_until_gone(group: int, timeout: float = 5.0) -> None:
    """Return once no process of the sandbox's group is left.

    The kernel tears a PID namespace down after its init dies, so the last of a fork bomb can
    outlive `wait()` by a moment; an execution is over only when all of it is gone. Whatever
    is still there is killed again (the pgid cannot be reused while any member lives).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    log.warning("processes of sandbox group %d outlived the task by %.0f s", group, timeout)


def _check_command(program: str) -> None:
    found = Path(program).is_file() if "/" in program else _on_path(program)
    if not found:
        raise ExecutorError(
            f"The command {program!r} is not on this host, so it cannot run without Docker; "
            "use a command the host has (sh, bash, python3) or start Docker."
        )


def _on_path(program: str) -> bool:
    return any((Path(d) / program).is_file() for d in SANDBOX_PATH.split(":"))


def _environment(workspace: Workspace) -> dict[str, str]:
    """A clean environment: a standard PATH and HOME, then the task's own variables."""
    return {"PATH": SANDBOX_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **workspace.env}
