"""The runner against the real ledger (SQLite): jobs go from submitted to an end state."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import ExecutionState, JobState, Ledger
from engine.executors.registry import default_registry
from engine.runner import Runner, RunnerError
from engine.settings import Settings
from spec import compile_document, compile_path

CORPUS = Path(__file__).parents[1] / "data" / "corpus"

SHELL_JOB = (Path(__file__).parents[1] / "data" / "jobs" / "shell-job.yaml").read_text()


@pytest.fixture
def settings(isolated_data_dir: Path) -> Settings:
    return Settings()


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    opened = Ledger.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def runner(ledger: Ledger, settings: Settings) -> Runner:
    return Runner(ledger, default_registry(settings), settings)


@pytest.fixture
def submit(ledger: Ledger) -> Callable[..., str]:
    def submit_job(script: str, count: int = 1, timeout: int = 60) -> str:
        text = SHELL_JOB.format(
            name=f"job-{uuid.uuid4()}",
            count=count,
            shell="/bin/sh",
            script=script,
            memory="256Mi",
            timeout=timeout,
        )
        return ledger.submit(compile_document(text)).job_id

    return submit_job


def topics(ledger: Ledger, job_id: str) -> list[str]:
    return [entry["Event"]["Topic"] for entry in ledger.history(job_id)]


def test_a_job_runs_to_completed_and_its_history_tells_the_story(ledger, runner, submit):
    job_id = submit("echo hello")

    view = runner.run_job(job_id)

    assert view.state is JobState.COMPLETED
    [execution] = view.executions
    assert execution.state is ExecutionState.COMPLETED
    assert execution.exit_code == 0
    assert execution.stdout == "hello\n"
    assert any("ran on host, image not used" in note for note in execution.notes)
    assert (Path(execution.published_result["Params"]["URL"][7:]) / "stdout").exists()
    story = [t for t in topics(ledger, job_id) if t != "State Update"]
    assert story == ["Submission", "Queueing", "Scheduling", "Execution", "Execution"]


def test_a_non_zero_exit_still_completes_with_that_exit_code(runner, submit):
    view = runner.run_job(submit("exit 3"))

    assert view.state is JobState.COMPLETED
    assert view.executions[0].exit_code == 3


def test_an_engine_nobody_supports_fails_the_job_in_bacalhaus_words(ledger, runner):
    path = CORPUS / "HEAD__test_integration__common_assets__job_specs__unsupported_engine_type.yml"
    job_id = ledger.submit(compile_path(path)).job_id

    view = runner.run_job(job_id)

    assert view.state is JobState.FAILED
    assert "does not support vroomvroom" in view.executions[0].error


def test_count_runs_one_execution_per_partition(runner, submit):
    view = runner.run_job(submit("echo part", count=2))

    assert view.state is JobState.COMPLETED
    assert [e.state for e in view.executions] == [ExecutionState.COMPLETED] * 2


def test_only_a_waiting_job_can_be_run(runner, submit):
    job_id = submit("true")
    runner.run_job(job_id)

    with pytest.raises(RunnerError, match="not waiting to run"):
        runner.run_job(job_id)


def test_the_worker_runs_pending_jobs_never_more_than_its_cap(ledger, settings, submit):
    jobs = [submit(f"sleep 0.3; echo {n}") for n in range(3)]
    runner = Runner(ledger, default_registry(settings), settings)
    most_running = 0
    runner_thread_stop = threading.Event()
    worker = threading.Thread(target=runner.serve, args=(runner_thread_stop, 1))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [ledger.get(j).state for j in jobs]
            most_running = max(most_running, states.count(JobState.RUNNING))
            if all(s is JobState.COMPLETED for s in states):
                break
            time.sleep(0.05)
    finally:
        runner_thread_stop.set()
        worker.join()

    assert [ledger.get(j).state for j in jobs] == [JobState.COMPLETED] * 3
    assert most_running <= 1


def test_stopping_the_worker_fails_what_it_was_running_and_says_why(ledger, settings, submit):
    job_id = submit("sleep 60")
    runner = Runner(ledger, default_registry(settings), settings)
    runner.start()
    ledger.wait(job_id, states=[JobState.RUNNING], timeout=30)

    runner.stop()

    view = ledger.get(job_id)
    assert view.state is JobState.FAILED
    assert "runner shut down" in view.executions[0].error


def test_the_result_cache_is_opt_in_and_reuses_an_identical_task(ledger, settings):
    script = "cat /proc/sys/kernel/random/uuid"
    job = SHELL_JOB.format(
        name="cached", count=1, shell="/bin/sh", script=script, memory="256Mi", timeout=60
    )
    plain = Runner(ledger, default_registry(settings), settings)
    cached = Runner(ledger, default_registry(settings), settings, use_cache=True)

    def run(runner: Runner) -> object:
        job_id = ledger.submit(compile_document(job), force=True).job_id
        return runner.run_job(job_id).executions[-1]

    first, second = run(cached), run(cached)
    uncached = run(plain)

    assert second.stdout == first.stdout
    assert any("result cache hit" in note for note in second.notes)
    assert second.published_result == first.published_result
    assert uncached.stdout != first.stdout


def test_a_job_waiting_longer_than_its_queue_timeout_fails(ledger, settings):
    text = (
        "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: noop}\n"
        "    Timeouts: {QueueTimeout: 1}\n"
    )
    job_id = ledger.submit(compile_document(text)).job_id
    time.sleep(1.1)
    runner = Runner(ledger, default_registry(settings), settings)

    runner.start()
    view = ledger.wait(job_id, timeout=30)
    runner.stop()

    assert view.state is JobState.FAILED
    messages = [entry["Event"]["Message"] for entry in ledger.history(job_id)]
    assert any(m.startswith("Queue timeout: exceeded 1 seconds") for m in messages)
