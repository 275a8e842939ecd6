"""Faults, end to end through the runner and the real ledger.

Each test makes a job misbehave (or kills the runner itself) and checks what the user then
sees in the ledger: the job's end state, the execution's end state and error, and the
history entries that explain it. Deadlines are kept on a clock the test moves by hand, so a
timeout is reached at once rather than waited for.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wasmtime

from klippfisk.engine import ExecutionState, JobState, JobView, Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner, runner_identity
from klippfisk.engine.settings import Settings
from klippfisk.spec import compile_document
from tests.eventually import eventually
from tests.unit.executors.stalling_server import stalling_server

TRAP = wasmtime.wat2wasm('(module (func (export "_start") unreachable))')

SHELL_JOB = (Path(__file__).parents[1] / "data" / "jobs" / "shell-job.yaml").read_text()

WASM_JOB = """
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /m.wasm
    InputSources:
      - Target: /m.wasm
        Source:
          Type: inline
          Params:
            URL: data:application/wasm;base64,{module}
"""


@pytest.fixture
def ledger(isolated_data_dir: Path) -> Iterator[Ledger]:
    opened = Ledger.open(Settings())
    yield opened
    opened.close()


@pytest.fixture
def runner(ledger: Ledger) -> Runner:
    settings = Settings()
    return Runner(ledger, default_registry(settings), settings)


def docker_job(ledger: Ledger, script: str, timeout: int = 60, memory: str = "256Mi") -> str:
    text = SHELL_JOB.format(
        name=f"job-{uuid.uuid4()}",
        count=1,
        shell="bash",
        script=script,
        memory=memory,
        timeout=timeout,
    )
    return ledger.submit(compile_document(text)).job_id


def timeout_events(ledger: Ledger, job_id: str) -> list[dict]:
    events = [entry["Event"] for entry in ledger.history(job_id)]
    return [event for event in events if event["Topic"] == "Exec Timeout"]


def processes(marker: str) -> int:
    """How many processes have `marker` in their command line."""
    found = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found += marker.encode() in cmdline.read_bytes()
        except OSError:
            continue
    return found


def alive(marker: str) -> bool:
    return processes(marker) > 0


def run_in_background(runner: Runner, job_id: str) -> Callable[..., JobView]:
    """Start `runner.run_job` on a thread; the returned call waits for the job as it ends."""
    result: list[JobView] = []
    worker = threading.Thread(target=lambda: result.append(runner.run_job(job_id)), daemon=True)
    worker.start()

    def ended(timeout: float = 30) -> JobView:
        worker.join(timeout)
        if worker.is_alive():  # stopped, so that no run outlives the test's ledger
            runner.ledger.stop(job_id, reason="the test gave up on it", actor="test")
            worker.join(30)
            pytest.fail(f"the run did not end within {timeout:g} s")
        return result[0]

    return ended


def test_a_job_over_its_timeout_is_killed_timed_out_and_failed(ledger, on_clock, clock):
    marker = f"marker-{uuid.uuid4()}"
    job_id = docker_job(ledger, f"sleep 60 # {marker}", timeout=1)
    ended = run_in_background(on_clock(Settings()), job_id)
    ledger.wait(job_id, states=[JobState.RUNNING], timeout=30)

    clock.now += 1.5  # past its ExecutionTimeout
    view = ended()

    assert view.state is JobState.FAILED
    assert view.executions[0].state is ExecutionState.CANCELLED
    [timeout] = timeout_events(ledger, job_id)
    assert "Execution timeout: exceeded 1 seconds" in timeout["Message"]
    assert not alive(marker)


def test_stop_while_running_cancels_the_execution_and_kills_it(ledger, runner):
    marker = f"marker-{uuid.uuid4()}"
    job_id = docker_job(ledger, f"sleep 60 # {marker}")
    ended = run_in_background(runner, job_id)
    ledger.wait(job_id, states=[JobState.RUNNING], timeout=30)

    ledger.stop(job_id, reason="changed my mind", actor="alice")
    view = ended()

    assert view.state is JobState.STOPPED
    assert view.executions[0].state is ExecutionState.CANCELLED
    assert not alive(marker)


def test_a_trapping_module_fails_the_job_with_the_trap(ledger, runner):
    text = WASM_JOB.format(module=base64.b64encode(TRAP).decode())
    job_id = ledger.submit(compile_document(text)).job_id

    view = runner.run_job(job_id)

    assert view.state is JobState.FAILED
    assert "unreachable" in view.executions[0].error


def test_hitting_the_memory_limit_ends_the_task_with_an_error_exit(ledger, runner):
    job_id = docker_job(ledger, "python3 -c 'bytearray(1 << 30)'", memory="128Mi")

    view = runner.run_job(job_id)

    assert view.executions[0].exit_code == 1
    assert "MemoryError" in view.executions[0].stderr


def test_a_fork_bomb_is_contained_until_the_deadline(ledger, on_clock, clock):
    marker = f"marker-{uuid.uuid4()}"
    job_id = docker_job(ledger, f"b() {{ b | b & }}; b; sleep 60 # {marker}", timeout=2)
    ended = run_in_background(on_clock(Settings()), job_id)
    ledger.wait(job_id, states=[JobState.RUNNING], timeout=30)
    assert eventually(lambda: processes(marker) >= 16), "the fork bomb never got going"

    clock.now += 2.5  # past its ExecutionTimeout
    view = ended()

    assert view.state is JobState.FAILED
    assert len(timeout_events(ledger, job_id)) == 1
    assert not alive(marker)


RUN_IN_CHILD = """
import sys
from klippfisk.engine import Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
settings = Settings()
ledger = Ledger.open(settings)
runner = Runner(ledger, default_registry(settings), settings)
for claimed in sys.argv[2:]:  # claimed for later, as a busy worker does; never started
    ledger.queue(claimed, reason="Queued for a worker", actor=runner.identity)
runner.run_job(sys.argv[1])
"""


def test_a_killed_runners_successor_fails_its_run_and_resumes_the_job_it_never_started(ledger):
    marker = f"marker-{uuid.uuid4()}"
    job_id = docker_job(ledger, f"sleep 60 # {marker}")
    claimed_id = docker_job(ledger, "echo resumed once")
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_IN_CHILD, job_id, claimed_id], env=os.environ
    )
    try:
        ledger.wait(job_id, states=[JobState.RUNNING], timeout=60)
        assert alive(marker)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert eventually(lambda: not alive(marker), 5), "the task must die with its runner"
    dead = ledger.get(claimed_id).queued_by

    settings = Settings()
    successor = Runner(ledger, default_registry(settings), settings)
    failed = successor.recover()

    view = ledger.get(job_id)
    assert failed == [view.executions[0].id]
    assert view.state is JobState.FAILED
    assert "stopped without finishing it" in view.executions[0].error
    assert "it was not run again" in view.executions[0].error
    created = [e for e in ledger.history(job_id) if e["Event"]["Topic"] == "Scheduling"]
    assert len(created) == 1

    assert ledger.get(claimed_id).queued_by == successor.identity
    successor.start()
    resumed = ledger.wait(claimed_id, timeout=60)
    successor.stop()

    assert resumed.state is JobState.COMPLETED
    [execution] = resumed.executions
    assert execution.stdout == "resumed once\n"
    history = ledger.history(claimed_id)
    created = [e for e in history if e["Event"]["Details"]["Type"] == "ExecutionCreated"]
    assert len(created) == 1
    [resume] = [e["Event"] for e in history if "resumed after" in e["Event"]["Message"]]
    assert resume["Topic"] == "Queueing"
    assert resume["Message"].startswith(f"resumed after runner {dead} died")


def test_recovery_leaves_executions_of_live_runners_alone(ledger, runner):
    job_id = docker_job(ledger, "true")
    ledger.queue(job_id)
    execution_id = ledger.create_execution(job_id, node=runner_identity())
    ledger.start_execution(job_id, execution_id)

    assert runner.recover() == []
    assert ledger.get(job_id).state is JobState.RUNNING


def test_a_dead_runners_claim_that_has_an_execution_is_failed_not_resumed(ledger, runner):
    job_id = docker_job(ledger, "true")
    dead = "local/" + runner_identity().split("/")[1] + "/999999999-1"
    ledger.queue(job_id, actor=dead)
    lost = ledger.create_execution(job_id, node=dead, actor=dead)
    ledger.fail_execution(job_id, lost, error="node lost", retryable=True, actor=dead)

    [execution_id] = runner.recover()

    view = ledger.get(job_id)
    assert view.state is JobState.FAILED
    assert view.executions[-1].id == execution_id
    assert "not resumed because an execution of it exists already" in view.executions[-1].error


def test_total_timeout_covers_the_wait_and_the_run_and_kills_the_task(ledger, on_clock, clock):
    marker = f"marker-{uuid.uuid4()}"
    text = SHELL_JOB.format(
        name=f"job-{uuid.uuid4()}",
        count=1,
        shell="bash",
        script=f"sleep 60 # {marker}",
        memory="256Mi",
        timeout=5,
    ).replace("ExecutionTimeout: 5", "ExecutionTimeout: 5\n      TotalTimeout: 6")
    job_id = ledger.submit(compile_document(text)).job_id
    clock.now += 3  # half the total spent waiting: 3 seconds left, less than ExecutionTimeout
    ended = run_in_background(on_clock(Settings()), job_id)
    ledger.wait(job_id, states=[JobState.RUNNING], timeout=30)

    clock.now += 3.5  # past TotalTimeout, 1.5 s short of the run's own ExecutionTimeout
    view = ended()

    assert view.state is JobState.FAILED
    assert view.executions[0].state is ExecutionState.CANCELLED
    kinds = [
        entry["Event"]["Details"].get("TimeoutKind")
        for entry in ledger.history(job_id)
        if entry["Event"]["Details"]["Type"] == "TimedOut"
    ]
    assert kinds == ["total"]
    assert not alive(marker)


URL_JOB = """
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: noop
    InputSources:
      - Target: /in
        Source:
          Type: urlDownload
          Params:
            URL: {url}
"""


def test_stop_while_inputs_download_cancels_the_execution_at_once(ledger, monkeypatch):
    with stalling_server() as server:
        monkeypatch.setenv("KLIPPFISK_EXECUTOR__URL_ALLOW", json.dumps([server.entry]))
        settings = Settings()
        runner = Runner(ledger, default_registry(settings), settings)
        text = URL_JOB.format(url=f"http://{server.entry}/big")
        job_id = ledger.submit(compile_document(text)).job_id
        ended = run_in_background(runner, job_id)
        assert server.requested.wait(30)

        ledger.stop(job_id, reason="changed my mind", actor="alice")
        view = ended(15)  # the download's own limit is 60 s: it must not be waited for

    assert view.state is JobState.STOPPED
    assert view.executions[0].state is ExecutionState.CANCELLED
