"""Fixtures for driving the embedded executor directly, with no ledger in the way.

`run_task` builds an ExecutionRequest for one task dict (Bacalhau v1 shape, as the
compiler emits it), runs it through a real LocalExecutor and returns the outcome with the
hook calls and the results directory, so tests read like "this task, this outcome".
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from klippfisk.engine.executors.base import ExecutionOutcome, ExecutionRequest
from klippfisk.engine.executors.local import LocalExecutor
from klippfisk.engine.settings import DockerSettings, ExecutorSettings, Settings

WASM_DIR = Path(__file__).parents[2] / "data" / "wasm"
DOCKERD = Path(__file__).with_name("docker_daemon.py")
# The images the test daemon "has", with their default command, as `docker inspect` shows.
IMAGES = {"busybox:1.36": {"Cmd": ["sh"]}, "python:3.12-slim": {"Cmd": ["python3"]}}


@dataclass
class Hooks:
    """Records what the executor reported while it worked."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    started_event: threading.Event = field(default_factory=threading.Event)
    progress_messages: list[str] = field(default_factory=list)

    def started(self, node: str, notes: list[str]) -> None:
        self.calls.append((node, list(notes)))
        self.started_event.set()

    def progress(self, message: str) -> None:
        self.progress_messages.append(message)


@dataclass
class Run:
    outcome: ExecutionOutcome
    hooks: Hooks
    results: Path


@pytest.fixture
def settings(isolated_data_dir: Path, wasm_cache_dir: Path) -> Settings:
    """No Docker daemon (whatever this machine has): docker tasks take the host path."""
    no_docker = DockerSettings(host=None, default_socket=isolated_data_dir / "no-docker.sock")
    return Settings(
        data_dir=isolated_data_dir,
        executor=ExecutorSettings(cache_dir=wasm_cache_dir, docker=no_docker),
    )


@pytest.fixture
def real_docker(settings: Settings, real_docker_host: str) -> Settings:
    """`settings` with docker tasks sent to the real daemon (see `real_docker_host`)."""
    docker = DockerSettings(host=real_docker_host)
    return settings.model_copy(
        update={"executor": settings.executor.model_copy(update={"docker": docker})}
    )


@pytest.fixture
def real_docker_api(real_docker_host: str) -> Iterator[httpx.Client]:
    """The real daemon's API, unversioned, for what a test itself asks of it."""
    transport = httpx.HTTPTransport(uds=real_docker_host.removeprefix("unix://"))
    with httpx.Client(transport=transport, base_url="http://docker") as api:
        yield api


@pytest.fixture
def run_real(
    run_task, real_docker: Settings, real_docker_api: httpx.Client
) -> Iterator[Callable[..., Run]]:
    """Run a task on the real daemon; afterwards no container of its execution may remain."""
    runs: list[Run] = []

    def run(task: dict[str, Any], **executor_settings: Any) -> Run:
        result = run_task(
            task, executor_settings={"docker": real_docker.executor.docker, **executor_settings}
        )
        runs.append(result)
        return result

    yield run
    for result in runs:
        label = f"klippfisk.execution={result.results.name}"
        left = real_docker_api.get(
            "/containers/json", params={"all": "1", "filters": json.dumps({"label": [label]})}
        ).json()
        assert left == [], f"containers left behind: {left}"


@dataclass
class FakeDockerd:
    """A running Docker-API-shaped server (tests/unit/executors/docker_daemon.py)."""

    socket: Path
    journal: Path

    @property
    def settings(self) -> DockerSettings:
        return DockerSettings(host=f"unix://{self.socket}")

    def requests(self, method: str | None = None, path: str = "") -> list[dict[str, Any]]:
        """What the daemon was asked, in order (optionally one method, paths ending so)."""
        lines = self.journal.read_text().splitlines() if self.journal.exists() else []
        entries = [json.loads(line) for line in lines]
        return [
            e
            for e in entries
            if (method is None or e["method"] == method) and e["path"].endswith(path)
        ]


@pytest.fixture(scope="session")
def dockerd() -> Iterator[FakeDockerd]:
    """The Docker-API-shaped server, one process for the session."""
    with shaped_dockerd() as daemon:
        yield daemon


@pytest.fixture
def versioned_dockerd() -> Callable[[str], contextlib.AbstractContextManager[FakeDockerd]]:
    """Starts a shaped server of its own that takes only the API versions named ("44-52"
    for 1.44 to 1.52), as a daemon newer or older than any at hand would."""
    return shaped_dockerd


@contextlib.contextmanager
def shaped_dockerd(*args: str) -> Iterator[FakeDockerd]:
    """A Docker-API-shaped server (`args` after its images: the API versions it takes), on
    a short socket path (unix socket paths are limited to about 100 bytes)."""
    home = Path(tempfile.mkdtemp(prefix="kdock-", dir="/tmp"))
    daemon = FakeDockerd(home / "docker.sock", home / "journal.jsonl")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(DOCKERD),
            str(daemon.socket),
            str(daemon.journal),
            json.dumps(IMAGES),
            *args,
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while not daemon.socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Docker-API-shaped test server did not start")
            time.sleep(0.02)
        yield daemon
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def run_task(settings: Settings) -> Callable[..., Run]:
    """Run one task dict; `settings_update` tweaks the executor section for this run."""

    def run(
        task: dict[str, Any],
        *,
        cancel: threading.Event | None = None,
        executor_settings: dict[str, Any] | None = None,
    ) -> Run:
        local = settings
        if executor_settings:
            local = settings.model_copy(
                update={"executor": settings.executor.model_copy(update=executor_settings)}
            )
        execution_id = f"e-{uuid.uuid4()}"
        results = local.data_dir / "results" / "j-test" / execution_id
        request = ExecutionRequest(
            job_id="j-test",
            execution_id=execution_id,
            job={"Tasks": [task]},
            task=task,
            task_cid="",
            results_dir=results,
        )
        hooks = Hooks()
        outcome = LocalExecutor(local).run(request, hooks, cancel or threading.Event())
        return Run(outcome, hooks, results)

    return run


def data_url(data: bytes, media: str = "application/octet-stream") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def wasm_task() -> Callable[..., dict[str, Any]]:
    """A wasm task around module bytes (or a committed module's name), inlined as input."""

    def build(
        module: bytes | str,
        *params: str,
        env: dict[str, str] | None = None,
        inputs: list[dict[str, Any]] | None = None,
        results: list[dict[str, str]] | None = None,
        memory: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        data = (WASM_DIR / f"{module}.wasm").read_bytes() if isinstance(module, str) else module
        task: dict[str, Any] = {
            "Name": "main",
            "Engine": {
                "Type": "wasm",
                "Params": {
                    "EntryModule": "/module.wasm",
                    "Entrypoint": "_start",
                    "Parameters": list(params),
                    "EnvironmentVariables": env or {},
                },
            },
            "InputSources": [
                {
                    "Source": {"Type": "inline", "Params": {"URL": data_url(data)}},
                    "Target": "/module.wasm",
                },
                *(inputs or []),
            ],
            "ResultPaths": results or [],
            "Resources": {"Memory": memory} if memory else {},
            "Timeouts": {"ExecutionTimeout": timeout} if timeout else {},
        }
        return task

    return build


@pytest.fixture
def docker_task() -> Callable[..., dict[str, Any]]:
    """A docker task (run on the host sandbox when no daemon is reachable)."""

    def build(
        image: str,
        *argv: str,
        entrypoint: list[str] | None = None,
        inputs: list[dict[str, Any]] | None = None,
        results: list[dict[str, str]] | None = None,
        memory: str | None = None,
        timeout: float | None = None,
        network: str = "None",
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "Name": "main",
            "Engine": {
                "Type": "docker",
                "Params": {
                    "Image": image,
                    "Entrypoint": entrypoint or [],
                    "Parameters": list(argv),
                },
            },
            "Env": env or {},
            "InputSources": inputs or [],
            "ResultPaths": results or [],
            "Network": {"Type": network},
            "Resources": {"Memory": memory} if memory else {},
            "Timeouts": {"ExecutionTimeout": timeout} if timeout else {},
        }

    return build


def inline_input(target: str, data: bytes) -> dict[str, Any]:
    return {"Source": {"Type": "inline", "Params": {"URL": data_url(data)}}, "Target": target}


@pytest.fixture
def inline() -> Callable[[str, bytes], dict[str, Any]]:
    return inline_input
