"""docker tasks through a Docker daemon's Engine API.

No daemon can run on this machine, so these run against `docker_daemon.py`: a separate
process serving the Engine API's documented shapes over a unix socket (see its docstring
for what it emulates). What the executor asked of the daemon is read from its journal.
"""

from __future__ import annotations

import threading

import pytest

from klippfisk.engine.executors.local.docker_api import DockerError, demultiplex
from klippfisk.engine.settings import DockerSettings


@pytest.fixture
def run_docker(run_task, dockerd):
    """Run a task with the test daemon as DOCKER_HOST; returns the run and its container's
    create request."""

    def run(task, executor_settings=None, **kwargs):
        before = len(dockerd.requests("POST", "/containers/create"))
        executor_settings = {"docker": dockerd.settings, **(executor_settings or {})}
        result = run_task(task, executor_settings=executor_settings, **kwargs)
        created = dockerd.requests("POST", "/containers/create")[before:]
        return result, (created[0] if created else None)

    return run


def test_a_task_runs_in_a_container_with_stdout_and_stderr_apart(run_docker, docker_task, dockerd):
    task = docker_task("busybox:1.36", "-c", "echo out; echo err >&2; exit 3", entrypoint=["sh"])

    run, created = run_docker(task)

    assert (run.outcome.error, run.outcome.output.exit_code) == (None, 3)
    assert (run.outcome.output.stdout, run.outcome.output.stderr) == ("out\n", "err\n")
    assert (run.results / "stdout").read_text() == "out\n"
    assert "docker container" in run.hooks.calls[0][1][0]
    assert created["body"]["Entrypoint"] == ["sh"]
    assert created["body"]["Cmd"] == ["-c", "echo out; echo err >&2; exit 3"]


def test_the_container_gets_no_network_and_the_task_limits(run_docker, docker_task, settings):
    task = docker_task("busybox:1.36", "true", memory="64Mi")
    task["Resources"]["CPU"] = "500m"

    _, created = run_docker(task)

    host = created["body"]["HostConfig"]
    assert created["body"]["NetworkDisabled"] is True
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == 64 * 2**20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == settings.executor.pids_limit


def test_a_networked_spec_gets_the_bridge_when_the_operator_allows_it(run_docker, docker_task):
    task = docker_task("busybox:1.36", "true", network="Full")

    _, created = run_docker(task, executor_settings={"allow_networked_jobs": True})

    assert created["body"]["HostConfig"]["NetworkMode"] == "bridge"
    assert created["body"]["NetworkDisabled"] is False


@pytest.mark.parametrize("network", ["Full", "Host"])
def test_a_networked_spec_is_refused_by_default_and_no_container_made(
    run_docker, docker_task, network
):
    run, created = run_docker(docker_task("busybox:1.36", "true", network=network))

    assert created is None
    assert run.hooks.calls == []
    assert f"asks for Network {network}" in run.outcome.error
    assert "KLIPPFISK_EXECUTOR__ALLOW_NETWORKED_JOBS=true" in run.outcome.error


def test_container_logs_are_copied_only_up_to_resources_disk(run_docker, docker_task):
    task = docker_task("busybox:1.36", "-c", "head -c 3000000 /dev/zero", entrypoint=["sh"])
    task["Resources"]["Disk"] = "10Ki"

    run, _ = run_docker(task)

    assert run.outcome.output.exit_code == 0
    assert (run.results / "stdout").stat().st_size == 10 * 1024
    assert "stdout output truncated at 10240 bytes" in " ".join(run.outcome.notes)


def test_inputs_are_mounted_read_only_and_result_paths_writable(run_docker, docker_task, inline):
    task = docker_task(
        "busybox:1.36",
        "-c",
        "cat /inputs/greeting.txt > /outputs/copy.txt",
        entrypoint=["sh"],
        inputs=[inline("/inputs/greeting.txt", b"hej\n")],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )

    run, created = run_docker(task)

    assert run.outcome.output.exit_code == 0
    assert (run.results / "outputs" / "copy.txt").read_text() == "hej\n"
    mounts = {m["Target"]: m["ReadOnly"] for m in created["body"]["HostConfig"]["Mounts"]}
    assert mounts == {"/inputs/greeting.txt": True, "/outputs": False}


def test_the_image_default_command_runs_when_the_spec_gives_none(run_docker, docker_task):
    _, created = run_docker(docker_task("python:3.12-slim"))

    assert "Entrypoint" not in created["body"] and "Cmd" not in created["body"]


def test_a_missing_image_is_an_error_that_says_to_pull_it(run_docker, docker_task, dockerd):
    run, _ = run_docker(docker_task("ghcr.io/example/absent:1", "true"), {"pull": "never"})

    assert "docker pull ghcr.io/example/absent:1" in run.outcome.error
    assert "KLIPPFISK_EXECUTOR__PULL=never" in run.outcome.error
    assert dockerd.requests("POST", "/images/create") == []


def test_the_container_is_removed_afterwards(run_docker, docker_task, dockerd):
    run_docker(docker_task("busybox:1.36", "true"))

    started = dockerd.requests("POST", "/start")[-1]
    removed = dockerd.requests("DELETE")[-1]
    assert removed["path"] == started["path"].removesuffix("/start")
    assert removed["query"]["force"] == "true"


def test_the_wall_clock_is_enforced_by_killing_the_container(run_docker, docker_task, dockerd):
    run, _ = run_docker(docker_task("busybox:1.36", "60", entrypoint=["sleep"], timeout=0.5))

    assert run.outcome.timed_out is True
    assert "timed out after 0.5s; the container was killed" in run.outcome.error
    assert dockerd.requests("POST", "/kill")


def test_a_stop_while_running_kills_the_container(run_docker, docker_task):
    cancel = threading.Event()
    task = docker_task("busybox:1.36", "60", entrypoint=["sleep"])
    stopper = threading.Timer(0.3, cancel.set)
    stopper.start()

    run, _ = run_docker(task, cancel=cancel)

    assert run.outcome.cancelled is True
    assert run.outcome.error == "stopped while running"


def test_going_over_the_memory_limit_fails_in_bacalhaus_words(run_docker, docker_task):
    task = docker_task(
        "python:3.12-slim",
        "-c",
        "import time; x = b'x' * (256 << 20); time.sleep(5)",
        entrypoint=["python3"],
        memory="64Mi",
    )

    run, _ = run_docker(task)

    assert run.outcome.error.startswith("memory limit exceeded")
    assert "64 MiB" in run.outcome.error


def test_a_silent_docker_host_is_an_error_not_a_quiet_fallback(run_task, docker_task, tmp_path):
    silent = DockerSettings(host=f"unix://{tmp_path}/nobody.sock")

    run = run_task(docker_task("busybox:1.36", "true"), executor_settings={"docker": silent})

    assert "does not answer" in run.outcome.error
    assert "unset DOCKER_HOST" in run.outcome.error


def test_a_tcp_docker_host_is_refused_with_the_fix(run_task, docker_task):
    tcp = DockerSettings(host="tcp://127.0.0.1:2375")

    run = run_task(docker_task("busybox:1.36", "true"), executor_settings={"docker": tcp})

    assert "not a unix socket" in run.outcome.error


def test_without_a_daemon_docker_tasks_run_on_the_host(run_task, docker_task):
    run = run_task(docker_task("busybox:1.36", "-c", "echo hi", entrypoint=["sh"]))

    assert run.outcome.output.stdout == "hi\n"
    assert "ran on host, image not used" in run.hooks.calls[0][1][0]


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_log_frames_split_across_chunks_are_put_back_together():
    stream = frame(1, b"hello ") + frame(2, b"oops") + frame(1, b"world")
    chunks = [stream[i : i + 3] for i in range(0, len(stream), 3)]

    assert list(demultiplex(iter(chunks))) == [(1, b"hello "), (2, b"oops"), (1, b"world")]


def test_a_log_stream_cut_inside_a_frame_is_an_error():
    with pytest.raises(DockerError, match="ended inside a frame"):
        list(demultiplex(iter([frame(1, b"hello")[:-2]])))
