"""No container outlives its execution, against a real Docker daemon (KLIPPFISK_TEST_DOCKER_HOST).

A container keeps running when whatever started it dies: a runner killed mid-job, or
`klippfisk job run` interrupted with Ctrl+C. Each case here leaves the daemon as a user would
find it, and asks the daemon (`GET /containers/json`, what `docker ps -a` shows) what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from klippfisk.engine import ExecutionState, JobState, Ledger
from klippfisk.engine.executors.local.docker_reaper import EXECUTION_LABEL, JOB_LABEL
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.ids import new_execution_id, new_job_id
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
from klippfisk.spec import compile_document

SHELL_JOB = (Path(__file__).parents[1] / "data" / "jobs" / "shell-job.yaml").read_text()
SLEEPER = "sleep 300"  # long enough to outlive any test that leaves it running

RUNNER_IN_CHILD = """
import sys
from klippfisk.engine import Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.ids import new_execution_id, new_job_id
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
settings = Settings()
Runner(Ledger.open(settings), default_registry(settings), settings).run_job(sys.argv[1])
"""


def sleeper_job(name: str) -> str:
    """A busybox job that sleeps until it is killed."""
    text = SHELL_JOB.format(
        name=name, count=1, shell="/bin/sh", script=SLEEPER, memory="64Mi", timeout=600
    )
    return text.replace("ubuntu:24.04", "busybox:1.36")


class Daemon:
    """The real daemon's containers of this test's jobs, as `docker ps -a` lists them."""

    def __init__(self, host: str) -> None:
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=host.removeprefix("unix://")),
            base_url="http://docker",
            timeout=30,
        )
        self.jobs: set[str] = set()

    def containers(self, job_id: str) -> list[dict]:
        """Every container (running or not) labelled with the job."""
        filters = f'{{"label": ["{JOB_LABEL}={job_id}"]}}'
        response = self.http.get("/containers/json", params={"all": "true", "filters": filters})
        response.raise_for_status()
        return response.json()

    def running(self, job_id: str) -> bool:
        return any(c["State"] == "running" for c in self.containers(job_id))

    def sleeper_of(self, job_id: str, execution_id: str) -> None:
        """A running container labelled as klippfisk labels one, made here directly."""
        labels = {JOB_LABEL: job_id, EXECUTION_LABEL: execution_id}
        body = {"Image": "busybox:1.36", "Cmd": ["sleep", "300"], "Labels": labels}
        created = self.http.post("/containers/create", json=body)
        created.raise_for_status()
        self.jobs.add(job_id)
        self.http.post(f"/containers/{created.json()['Id']}/start").raise_for_status()

    def remove_all(self) -> None:
        for job_id in self.jobs:
            for container in self.containers(job_id):
                self.http.delete(f"/containers/{container['Id']}", params={"force": "true"})


@pytest.fixture
def daemon(real_docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """The real daemon, named by DOCKER_HOST for this test and the processes it starts; the
    containers of the test's jobs are removed afterwards, whatever the test left."""
    monkeypatch.setenv("DOCKER_HOST", real_docker_host)
    found = Daemon(real_docker_host)
    yield found
    found.remove_all()
    found.http.close()


@pytest.fixture
def settings(isolated_data_dir: Path, daemon: Daemon) -> Settings:
    return Settings()


@pytest.fixture
def submit(ledger: Ledger, daemon: Daemon) -> Callable[[], str]:
    def submit_sleeper() -> str:
        job_id = ledger.submit(compile_document(sleeper_job(f"orphan-{uuid.uuid4()}"))).job_id
        daemon.jobs.add(job_id)
        return job_id

    return submit_sleeper


def eventually(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Whether `condition` holds within `seconds` (a real container has to start or stop)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def run_in_child(job_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", RUNNER_IN_CHILD, job_id], env=os.environ)


def kill_runner_mid_job(ledger: Ledger, daemon: Daemon, job_id: str) -> None:
    """Run the job in a runner of its own, SIGKILL that runner once the container runs."""
    runner = run_in_child(job_id)
    try:
        ledger.wait(job_id, states=[JobState.RUNNING], timeout=60)
        assert eventually(lambda: daemon.running(job_id)), "the container never started"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()


def test_recovery_removes_the_container_of_a_killed_runner_before_failing_it(
    ledger, settings, submit, daemon
):
    job_id = submit()
    kill_runner_mid_job(ledger, daemon, job_id)
    assert daemon.running(job_id), "the container died with its runner: nothing to recover"

    Runner(ledger, default_registry(settings), settings).recover()

    assert daemon.containers(job_id) == []
    [execution] = ledger.get(job_id).executions
    assert execution.state is ExecutionState.FAILED
    assert "cannot have run twice" in execution.error


def test_a_runner_sweep_removes_the_container_of_an_execution_that_is_over(
    ledger, settings, submit, daemon
):
    """A container left for an execution the ledger has ended (its runner died after the
    stop was recorded, before it removed the container) goes at the next sweep."""
    job_id = submit()
    kill_runner_mid_job(ledger, daemon, job_id)
    ledger.stop(job_id, reason="stopped while its runner was down", actor="test")
    [container] = daemon.containers(job_id)
    assert container["Labels"][EXECUTION_LABEL] == ledger.get(job_id).executions[0].id

    Runner(ledger, default_registry(settings), settings).recover()

    assert daemon.containers(job_id) == []
    assert ledger.get(job_id).state is JobState.STOPPED


def test_ctrl_c_on_job_run_removes_the_container_before_the_command_exits(
    tmp_path, settings, daemon
):
    name = f"orphan-{uuid.uuid4()}"
    request = tmp_path / "sleeper.yaml"
    request.write_text(sleeper_job(name))
    command = [sys.executable, "-m", "klippfisk", "job", "run", str(request)]
    cli = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        ledger = Ledger.open(settings)
        try:
            assert eventually(lambda: bool(ledger.list_jobs().items)), "no job was submitted"
            [job] = ledger.list_jobs().items
            daemon.jobs.add(job.id)
            assert eventually(lambda: daemon.running(job.id)), "the container never started"
            cli.send_signal(signal.SIGINT)
            _, stderr = cli.communicate(timeout=60)
        finally:
            ledger.close()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    assert cli.returncode == 130, stderr
    assert daemon.containers(job.id) == []  # asked at once: the command waited for it
    ledger = Ledger.open(settings)
    try:
        assert ledger.get(job.id).state is JobState.STOPPED
    finally:
        ledger.close()


def test_job_stop_kills_and_removes_the_container_of_a_running_job(
    ledger, settings, submit, daemon
):
    job_id = submit()
    runner = run_in_child(job_id)
    try:
        ledger.wait(job_id, states=[JobState.RUNNING], timeout=60)
        assert eventually(lambda: daemon.running(job_id)), "the container never started"
        command = [sys.executable, "-m", "klippfisk", "job", "stop", job_id]
        stopped = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert runner.wait(timeout=60) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    assert daemon.containers(job_id) == []
    assert ledger.get(job_id).state is JobState.STOPPED


def test_the_sweep_leaves_containers_of_executions_it_does_not_know_alone(ledger, settings, daemon):
    """Another ledger's runner may share the daemon: its running jobs are not ours to end."""
    job_id = new_job_id()
    daemon.sleeper_of(job_id, new_execution_id())

    Runner(ledger, default_registry(settings), settings).recover()

    assert daemon.running(job_id)
