"""Docker tasks with no Docker daemon: the command runs on the host, sandboxed.

These run real processes in the namespace sandbox; they check what a job author relies on (output,
exit codes, inputs read-only, results written, no network) and what an operator relies
on (deadlines and stops kill every process, a fork bomb hits the pids limit).
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces")


def survivors(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text:
            found.append(text)
    return found


def test_ubuntu_echo_runs_as_a_host_process(run_task, docker_task):
    run = run_task(docker_task("ubuntu:24.04", "echo hello", entrypoint=["/bin/sh", "-c"]))

    assert run.outcome.error is None
    assert run.outcome.output.exit_code == 0
    assert run.outcome.output.stdout == "hello\n"
    assert "ran on host, image not used (ubuntu:24.04)" in run.outcome.notes[0]
    assert (run.results / "exitCode").read_text() == "0\n"


def test_non_zero_exit_completes_with_that_code(run_task, docker_task):
    run = run_task(docker_task("busybox", "sh", "-c", "echo oops >&2; exit 3"))

    assert run.outcome.error is None
    assert run.outcome.output.exit_code == 3
    assert run.outcome.output.stderr == "oops\n"


def test_environment_and_working_directory_reach_the_process(run_task, docker_task):
    task = docker_task("debian", "sh", "-c", 'echo "$FOO $BAR $(pwd)"', env={"FOO": "from-env"})
    task["Engine"]["Params"]["EnvironmentVariables"] = ["BAR=from-engine"]
    task["Engine"]["Params"]["WorkingDirectory"] = "/tmp"

    run = run_task(task)

    assert run.outcome.output.stdout == "from-env from-engine /tmp\n"


def test_inputs_are_read_only_and_result_paths_writable(run_task, docker_task, inline):
    script = (
        "cat /inputs/data.txt > /outputs/copy.txt; "
        "(echo x > /inputs/data.txt) 2>/dev/null && echo writable || echo read-only"
    )
    task = docker_task(
        "ubuntu",
        "sh",
        "-c",
        script,
        inputs=[inline("/inputs/data.txt", b"payload\n")],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )

    run = run_task(task)

    assert run.outcome.output.stdout == "read-only\n"
    assert (run.results / "outputs" / "copy.txt").read_bytes() == b"payload\n"


def test_no_network_unless_the_spec_allows_it(run_task, docker_task):
    run = run_task(docker_task("ubuntu", "cat", "/proc/net/dev"))

    interfaces = [line.split(":")[0].strip() for line in run.outcome.output.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]


def test_a_networked_task_is_refused_unless_the_operator_allows_it(run_task, docker_task):
    task = docker_task("ubuntu", "cat", "/proc/net/dev", network="Host")

    refused = run_task(task)
    allowed = run_task(task, executor_settings={"allow_networked_jobs": True})

    assert "ALLOW_NETWORKED_JOBS" in refused.outcome.error
    assert refused.hooks.calls == []
    assert allowed.outcome.output.exit_code == 0
    assert "network: host (the spec allows networking)" in allowed.hooks.calls[0][1]


def test_a_task_cannot_write_past_resources_disk(run_task, docker_task):
    script = "head -c 50000000 /dev/zero; head -c 50000000 /dev/zero > /outputs/big"
    task = docker_task(
        "ubuntu", "sh", "-c", script, results=[{"Name": "outputs", "Path": "/outputs"}]
    )
    task["Resources"]["Disk"] = "64Ki"

    run = run_task(task)

    assert (run.results / "stdout").stat().st_size == 64 * 1024
    assert (run.results / "outputs" / "big").stat().st_size == 64 * 1024
    assert "stdout output truncated at 65536 bytes" in " ".join(run.outcome.notes)


def test_http_network_is_refused_with_a_hint(run_task, docker_task):
    run = run_task(docker_task("ubuntu", "true", network="HTTP"))

    assert "Network type HTTP" in run.outcome.error
    assert run.hooks.calls == []


def test_timeout_kills_the_whole_process_group(run_task, docker_task):
    marker = f"marker-{uuid.uuid4()}"
    script = f"sleep 60 & sleep 60 # {marker}"

    run = run_task(docker_task("ubuntu", "sh", "-c", script, timeout=0.5))

    assert run.outcome.timed_out is True
    assert "timed out after 0.5s" in run.outcome.error
    assert survivors(marker) == []


def test_stop_kills_a_running_process(run_task, docker_task):
    cancel = threading.Event()
    marker = f"marker-{uuid.uuid4()}"
    threading.Timer(0.3, cancel.set).start()

    run = run_task(docker_task("ubuntu", "sh", "-c", f"sleep 60 # {marker}"), cancel=cancel)

    assert run.outcome.cancelled is True
    assert survivors(marker) == []


def test_pids_limit_refuses_forks_beyond_it(run_task, docker_task):
    script = "for i in $(seq 60); do sleep 1 & done; wait"

    run = run_task(
        docker_task("ubuntu", "sh", "-c", script, timeout=20),
        executor_settings={"pids_limit": 16},
    )

    assert run.outcome.output is not None
    assert re.search(r"fork|resource temporarily unavailable", run.outcome.output.stderr, re.I)


def test_fork_bomb_is_contained_and_killed_at_the_deadline(run_task, docker_task):
    marker = f"marker-{uuid.uuid4()}"
    bomb = f"bomb() {{ bomb | bomb & }}; bomb; sleep 30 # {marker}"

    run = run_task(
        docker_task("ubuntu", "bash", "-c", bomb, timeout=1.5),
        executor_settings={"pids_limit": 32},
    )

    assert run.outcome.timed_out is True
    assert survivors(marker) == []


def test_memory_limit_makes_a_big_allocation_fail(run_task, docker_task):
    grab = "bytearray(512 * 1024 * 1024); print('allocated')"

    run = run_task(docker_task("ubuntu", "python3", "-c", grab, memory="128Mi"))

    assert run.outcome.output is not None
    assert run.outcome.output.exit_code != 0
    assert "MemoryError" in run.outcome.output.stderr


def test_image_needing_docker_is_refused_with_a_hint(run_task, docker_task):
    run = run_task(docker_task("nginx:1.27", "nginx"))

    assert "needs a Docker daemon and none is reachable" in run.outcome.error
    assert "ubuntu" in run.outcome.error


def test_command_missing_on_the_host_is_refused(run_task, docker_task):
    run = run_task(docker_task("ubuntu", "/usr/bin/definitely-not-installed"))

    assert "is not on this host" in run.outcome.error


def test_background_processes_end_with_the_task(run_task, docker_task):
    marker = f"marker-{uuid.uuid4()}"

    run = run_task(docker_task("ubuntu", "sh", "-c", f"sleep 60 & echo done # {marker}"))

    assert run.outcome.output.stdout == "done\n"
    assert survivors(marker) == []


def test_a_read_write_host_directory_keeps_its_owner(run_task, docker_task, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    owner = shared.stat().st_uid
    source = {"Type": "localDirectory", "Params": {"SourcePath": str(shared), "ReadWrite": True}}
    task = docker_task("ubuntu", "ls", "/data", inputs=[{"Source": source, "Target": "/data"}])

    run = run_task(task, executor_settings={"allowed_local_paths": [tmp_path]})

    assert run.outcome.output.exit_code == 0, run.outcome
    assert shared.stat().st_uid == owner


def test_the_usual_device_nodes_work(run_task, docker_task):
    script = "echo gone > /dev/null && head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c"

    run = run_task(docker_task("ubuntu", "sh", "-c", script))

    assert run.outcome.output.stderr == ""
    assert run.outcome.output.stdout == "4\n4\n"
