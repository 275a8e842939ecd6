"""`docker` tasks on a real Docker daemon, through its Engine API.

Used whenever a daemon answers (DOCKER_HOST, else /var/run/docker.sock); otherwise docker
tasks fall back to the host-process sandbox. The container gets the task's command, env and
working directory; inputs bind-mounted read-only and result paths writable at their targets
by the image's user (container_user); no network unless the spec allows it, and a full
network refused where the daemon has no bridge rather than silently none; memory (without
swap), CPU and process limits. The image is pulled as the pull setting says (docker_pull).
The wall clock is ours to enforce (Docker has none): the watchdog kills the
container at the deadline. Output is read while the container runs (attached before it
starts) into the results directory, each stream capped at the task's output limit; the
daemon keeps no log copy (LOG_CONFIG says why). The container is removed whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from klippfisk.engine.executors.base import ExecutionHooks, ExecutionOutcome
from klippfisk.engine.executors.local.container_user import give_to_user, resolve_user
from klippfisk.engine.executors.local.docker_api import DockerClient, DockerError
from klippfisk.engine.executors.local.docker_pull import PullPolicy, create_with_image
from klippfisk.engine.executors.local.docker_reaper import EXECUTION_LABEL, JOB_LABEL
from klippfisk.engine.executors.local.output_cap import CappedFile, truncation_notes
from klippfisk.engine.executors.local.workspace import Workspace
from klippfisk.engine.results import summarise
from klippfisk.engine.settings import DockerSettings

__all__ = ["DockerEngine", "container_config"]

log = logging.getLogger(__name__)

NODE = "local"
NETWORK_MODES = {"none": "none", "host": "host", "full": "bridge"}


def container_config(workspace: Workspace) -> dict[str, Any]:
    """The ContainerCreate body for one task: what runs, what it sees, what it may use."""
    params = workspace.engine_params
    limits = workspace.limits
    network = NETWORK_MODES[workspace.network]
    config: dict[str, Any] = {
        "Image": str(params.get("Image", "")),
        "Env": [f"{key}={value}" for key, value in workspace.env.items()],
        "Labels": {
            JOB_LABEL: workspace.request.job_id,  # how recovery and sweeps find it
            EXECUTION_LABEL: workspace.request.execution_id,
        },
        "Tty": False,
        "OpenStdin": False,
        "NetworkDisabled": network == "none",
        "HostConfig": {
            "NetworkMode": network,
            "Memory": limits.memory_bytes,
            "MemorySwap": limits.memory_bytes,  # the same figure: no swap on top
            "NanoCpus": limits.cpu_millicores * 1_000_000,
            "PidsLimit": limits.pids,
            "Mounts": [
                {
                    "Type": "bind",
                    "Source": str(mount.source),
                    "Target": mount.target,
                    "ReadOnly": mount.read_only,
                }
                for mount in workspace.mounts
            ],
            "SecurityOpt": ["no-new-privileges"],
            "AutoRemove": False,  # inspected after it stops (OOMKilled); we remove it then
            "LogConfig": LOG_CONFIG,
        },
    }
    entrypoint = [str(a) for a in params.get("Entrypoint") or []]
    parameters = [str(a) for a in params.get("Parameters") or []]
    if entrypoint:
        config["Entrypoint"] = entrypoint
    if entrypoint or parameters:
        config["Cmd"] = parameters
    if params.get("WorkingDirectory"):
        config["WorkingDir"] = str(params["WorkingDirectory"])
    return config


# The daemon keeps no copy of the output: it comes to us through attach, and the container
# is removed when it ends, so a copy would never be read. A json-file copy, even capped
# (max-size), costs the daemon a JSON line per output line and holds the container's writes
# back meanwhile: 20 MB of `y` took 32 s under json-file and 0.4 s without (dockerd 20.10);
# uncapped, it also grew a 719 MB file.
LOG_CONFIG = {"Type": "none", "Config": {}}


class DockerEngine:
    """Runs `docker` tasks in containers of a reachable Docker daemon."""

    def __init__(self, settings: DockerSettings, pull: PullPolicy = "missing") -> None:
        self.settings = settings
        self.pull = pull
        self._client: DockerClient | None = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        """Whether a daemon answers now. DOCKER_HOST set but silent is an error, not a
        fallback: the user asked for that daemon. The default socket may just be stale."""
        client = self._locate()
        if client is None:
            return False
        if client.ping():
            return True
        if self.settings.host:
            raise DockerError(
                f"The Docker daemon at DOCKER_HOST={self.settings.host} does not answer; start "
                "it, or unset DOCKER_HOST to run host-compatible images in the local sandbox."
            )
        return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def run(
        self, workspace: Workspace, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        client = self._locate()
        if client is None:
            raise DockerError("No Docker daemon was found; start Docker or set DOCKER_HOST.")
        config = container_config(workspace)
        _require_network(client, workspace.network)
        name = f"klippfisk-{workspace.request.execution_id}"
        container, pulled = create_with_image(client, name, config, self.pull, hooks.progress)
        try:
            return self._run(client, container, config, workspace, hooks, cancel, pulled)
        finally:
            try:
                client.remove(container)
            except DockerError as exc:
                log.warning("container %s was not removed: %s", container, exc)

    def _run(
        self,
        client: DockerClient,
        container: str,
        config: dict[str, Any],
        workspace: Workspace,
        hooks: ExecutionHooks,
        cancel: threading.Event,
        pulled: list[str],
    ) -> ExecutionOutcome:
        notes = [
            f"docker container {container[:12]} (image {config['Image']}, network "
            f"{config['HostConfig']['NetworkMode']}) on {client.socket_path}",
            *pulled,
        ]
        _open_result_paths(client, container, workspace)
        results = workspace.results
        cap = workspace.limits.output_bytes
        with (
            contextlib.closing(client.attach(container)) as attached,
            contextlib.closing(CappedFile(results.stdout, cap)) as out,
            contextlib.closing(CappedFile(results.stderr, cap)) as err,
        ):
            client.start(container)
            kill = _quiet_kill(client, container)
            with workspace.watchdog(cancel, kill) as dog:
                hooks.started(NODE, notes)  # armed first: whoever sees it Running sees a deadline
                attached.copy(out, err)  # until the container ends, or the watchdog kills it
                code = client.wait(container)
        notes += truncation_notes({"stdout": out, "stderr": err})
        cut = dog.cut_short(results, notes, killed="the container was killed")
        if cut is not None:
            return cut
        if client.inspect(container).oom_killed:
            limit = f"{workspace.limits.memory_bytes / 2**20:g} MiB"
            error = (
                f"memory limit exceeded: the container was killed at its limit of {limit}; "
                "ask for more with Resources.Memory"
            )
            return summarise(results, error=error, notes=notes)
        return summarise(results, exit_code=code, notes=notes)

    def _locate(self) -> DockerClient | None:
        """The daemon's client, made once one is found (a daemon may start after us)."""
        with self._lock:
            if self._client is None:
                self._client = DockerClient.locate(self.settings)
            return self._client


def _require_network(client: DockerClient, network: str) -> None:
    """Refuse a task allowed the full network when the daemon has no bridge (started with
    --bridge=none): Docker would start it with no network at all, without a word."""
    if NETWORK_MODES[network] == "bridge" and not client.has_network("bridge"):
        raise DockerError(
            f"The Docker daemon at {client.socket_path} has no bridge network, so this job's "
            f"Network {network.capitalize()} cannot be given; use Network None (or Host), or "
            "(operators) start dockerd with its default bridge."
        )


def _open_result_paths(client: DockerClient, container: str, workspace: Workspace) -> None:
    """Make the result paths writable by the user the container runs as (the image's USER
    may not be root); see container_user for how that user is resolved."""
    owner = resolve_user(client.user(container), lambda path: client.read_file(container, path))
    if owner is not None:
        give_to_user([m.source for m in workspace.mounts if not m.read_only], owner)


def _quiet_kill(client: DockerClient, container: str) -> Callable[[], None]:
    """A kill for the watchdog's shared thread, which must never die of a daemon's error."""

    def kill() -> None:
        with contextlib.suppress(DockerError):
            client.kill(container)

    return kill
