"""`docker` tasks without a Docker daemon: the image's command run as a sandboxed host process.

Many jobs only use an image for its shell or interpreter (`ubuntu` + `/bin/sh -c echo`). For
images whose tools every Linux host has, running the command on the host inside the
sandbox gives the same answer without Docker. The image itself is not used, and the
execution's notes say so; any other image is refused with a sentence naming the fix.
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

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome, ExecutorError
from klippfisk.engine.executors.local.output_cap import truncation_note
from klippfisk.engine.executors.local.sandbox import SETUP_FAILED, Sandbox, pick_task_uid
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.results import summarise

__all__ = ["HOST_IMAGES", "HostProcessEngine", "image_name", "task_argv"]

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
        network = workspace.network != "none"
        uid = pick_task_uid()
        sandbox = Sandbox(
            root=workspace.work_dir / "root",
            mounts=workspace.mounts,
            limits=workspace.limits,
            network=network,
            workdir=str(params.get("WorkingDirectory") or "/"),
            uid=uid,
        )
        command = sandbox.command(argv)
        _hand_over_writable(workspace, uid)
        notes = [f"ran on host, image not used ({image}); sandboxed (namespaces, rlimits)"]
        if network:
            notes.append("network: host (the spec allows networking)")
        return self._execute(command, _environment(workspace), workspace, hooks, cancel, notes)

    def _execute(
        self,
        command: list[str],
        env: dict[str, str],
        workspace: Workspace,
        hooks: ExecutionHooks,
        cancel: threading.Event,
        notes: list[str],
    ) -> ExecutionOutcome:
        results = workspace.results
        with results.stdout.open("wb") as out, results.stderr.open("wb") as err:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=workspace.work_dir,
                process_group=0,
            )
            with workspace.watchdog(cancel, lambda: _kill(proc)) as dog:
                hooks.started(NODE, notes)  # armed first: whoever sees it Running sees a deadline
                code = proc.wait()
            _wait_until_gone(proc.pid)
        cut = dog.cut_short(results, notes, killed="the process group was killed")
        if cut is not None:
            return cut
        if code == SETUP_FAILED:
            detail = results.head(results.stderr)[0].strip().splitlines()[-1:]
            raise ExecutorError(
                f"The host-process sandbox could not be set up ({'; '.join(detail)}); run as "
                "root, or enable unprivileged user namespaces (sysctl "
                "kernel.unprivileged_userns_clone=1), or run the job where Docker is available."
            )
        notes += _truncated(workspace)
        return summarise(results, exit_code=code if code >= 0 else 128 - code, notes=notes)


def _truncated(workspace: Workspace) -> list[str]:
    """Notes for the streams the kernel's file-size limit (RLIMIT_FSIZE) cut off."""
    cap = workspace.limits.output_bytes
    results = workspace.results
    return [
        truncation_note(path.name, cap)
        for path in (results.stdout, results.stderr)
        if path.exists() and path.stat().st_size >= cap
    ]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the sandbox's process group; its PID namespace takes every descendant with it."""
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


def _hand_over_writable(workspace: Workspace, uid: int | None) -> None:
    """Give the task's own uid its result directories (never a host directory of the user's:
    a read-write localDirectory input keeps its owner, and the task writes only if allowed)."""
    if uid is None:
        return
    for mount in workspace.mounts:
        if not mount.read_only and mount.source.is_relative_to(workspace.results.path):
            os.chown(mount.source, uid, uid)


def _environment(workspace: Workspace) -> dict[str, str]:
    """A clean environment: a standard PATH and HOME, then the task's own variables."""
    return {"PATH": SANDBOX_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **workspace.env}
