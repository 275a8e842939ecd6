"""The Docker path's output and API version against a real daemon (`real_docker`: skipped
without one, failed on CI), and a version refusal from the shaped server, which can play a
daemon newer or older than any we have here.

Output: 20 MB of short lines with a 10 KiB cap must end within seconds (the daemon sends a
frame per line) and leave a bounded log on the daemon. Versions: the client speaks the
highest version both sides do, and a daemon outside our range is a clear error naming both,
never "no daemon" and never a silent run on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid

import httpx
import pytest

from klippfisk.engine.executors.local.docker_api import API_VERSIONS, DockerClient
from klippfisk.engine.settings import DockerSettings, Settings

CAP = 10 * 1024
NEWEST = f"{API_VERSIONS[1][0]}.{API_VERSIONS[1][1]}"


class LogWatch:
    """Samples the size of the daemon's log file (if it keeps one) of the containers whose
    command holds `mark` while a run goes on: the largest it grew to. (Other tests may run
    on the same daemon at once, with the same job id.)"""

    def __init__(self, api: httpx.Client, mark: str) -> None:
        self.api, self.mark = api, mark
        self.largest = 0
        self.seen: set[str] = set()
        self.done = threading.Event()

    def watch(self) -> None:
        params = {"all": "1", "filters": json.dumps({"label": ["klippfisk.job=j-test"]})}
        while not self.done.wait(0.02):
            for listed in self.api.get("/containers/json", params=params).json():
                if self.mark not in listed.get("Command", ""):
                    continue
                found = self.api.get(f"/containers/{listed['Id']}/json")
                path = found.json().get("LogPath") if found.status_code == 200 else ""
                self.seen.add(listed["Id"])
                with contextlib.suppress(OSError):  # none kept, or gone with its container
                    self.largest = max(self.largest, os.path.getsize(path))


def test_twenty_megabytes_of_short_lines_end_within_seconds_capped_and_bounded_on_the_daemon(
    run_real, docker_task, real_docker_api: httpx.Client
):
    # The sleep keeps the container (and its log file) there for the watcher after the flood.
    mark = uuid.uuid4().hex
    flood = f"yes | head -c 20000000; sleep 2; : {mark}"
    task = docker_task("busybox:1.36", "-c", flood, entrypoint=["sh"], timeout=120)
    watch = LogWatch(real_docker_api, mark)
    watcher = threading.Thread(target=watch.watch)
    watcher.start()
    try:
        began = time.monotonic()
        run = run_real(task, max_output_bytes=CAP)
        took = time.monotonic() - began
    finally:
        watch.done.set()
        watcher.join()

    assert run.outcome.error is None, run.outcome
    assert (run.results / "stdout").read_bytes() == b"y\n" * (CAP // 2)
    assert f"stdout output truncated at {CAP} bytes" in " ".join(run.outcome.notes)
    assert took < 10, f"the job took {took:.1f} s for a container of about 3 s"
    assert len(watch.seen) == 1, "the container was never seen running"
    assert watch.largest <= 2 * CAP, f"the daemon's log grew to {watch.largest} bytes"


def test_stdout_and_stderr_are_read_apart_while_the_container_runs(run_real, docker_task):
    task = docker_task("busybox:1.36", "-c", "echo out; echo err >&2; echo more", entrypoint=["sh"])

    run = run_real(task)

    assert (run.outcome.output.stdout, run.outcome.output.stderr) == ("out\nmore\n", "err\n")


def test_the_client_speaks_the_highest_version_both_sides_do(
    real_docker: Settings, real_docker_api: httpx.Client
):
    theirs = real_docker_api.get("/version").json()["ApiVersion"]
    expected = min((theirs, NEWEST), key=lambda v: tuple(int(p) for p in v.split(".")))
    client = DockerClient.locate(real_docker.executor.docker)
    assert client is not None
    try:
        assert client.ping()
        assert client.version == expected
    finally:
        client.close()


@pytest.mark.parametrize("found_as", ["DOCKER_HOST", "default socket"])
def test_a_daemon_newer_than_we_speak_is_an_error_naming_both_versions(
    run_task, docker_task, versioned_dockerd, found_as: str
):
    with versioned_dockerd("60-70") as daemon:
        docker = (
            DockerSettings(host=f"unix://{daemon.socket}")
            if found_as == "DOCKER_HOST"
            else DockerSettings(host=None, default_socket=daemon.socket)
        )
        run = run_task(
            docker_task("busybox:1.36", "echo", "ran"), executor_settings={"docker": docker}
        )

    message = run.outcome.error or ""
    assert "1.60 to 1.70" in message and f"1.41 to {NEWEST}" in message, run.outcome
    assert "does not answer" not in message
    assert run.outcome.output is None or "ran" not in run.outcome.output.stdout


def test_a_daemon_older_than_we_speak_is_an_error_naming_both_versions(
    run_task, docker_task, versioned_dockerd
):
    with versioned_dockerd("24-40") as daemon:
        docker = DockerSettings(host=None, default_socket=daemon.socket)
        run = run_task(
            docker_task("busybox:1.36", "echo", "ran"), executor_settings={"docker": docker}
        )

    message = run.outcome.error or ""
    assert "up to 1.40" in message and "1.41 or newer" in message, run.outcome


def test_a_daemon_that_refuses_old_versions_like_docker_29_runs_the_job(
    run_task, docker_task, versioned_dockerd
):
    with versioned_dockerd("44-52") as daemon:
        docker = DockerSettings(host=f"unix://{daemon.socket}")
        run = run_task(
            docker_task("busybox:1.36", "-c", "echo ran", entrypoint=["sh"]),
            executor_settings={"docker": docker},
        )

    assert (run.outcome.error, run.outcome.output.stdout) == (None, "ran\n"), run.outcome
