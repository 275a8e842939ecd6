"""The runner against the real ledger (SQLite): jobs go from submitted to an end state.

Tests about deadlines run the runner on a clock they move by hand: a timeout is reached by
moving the clock past it, never by sleeping."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from klippfisk.engine import ExecutionState, JobState, Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.results import execution_results_dir
from klippfisk.engine.runner import QUEUE_SCAN, Runner, RunnerError, runner_identity
from klippfisk.engine.settings import Settings
from klippfisk.spec import compile_document, compile_path

CORPUS = Path(__file__).parents[1] / "data" / "corpus"

SHELL_JOB = (Path(__file__).parents[1] / "data" / "jobs" / "shell-job.yaml").read_text()


@pytest.fixture
def settings(isolated_data_dir: Path) -> Settings:
    return Settings()


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


def test_what_the_executor_learns_at_the_end_is_in_the_history(ledger, runner, settings):
    """A note made after the start (here: stdout cut at Resources.Disk) is recorded with the
    completion, so `job describe` and the API show why the output is short."""
    job = SHELL_JOB.format(
        name="cut",
        count=1,
        shell="/bin/sh",
        script="yes | head -c 100000",
        memory="64Mi",
        timeout=60,
    ).replace("      Memory: 64Mi", "      Memory: 64Mi\n      Disk: 4Ki")
    job_id = ledger.submit(compile_document(job)).job_id

    execution = runner.run_job(job_id).executions[-1]

    assert execution.state is ExecutionState.COMPLETED
    assert any("stdout output truncated at 4096 bytes" in note for note in execution.notes)
    assert ledger.verify(job_id).ok


def test_a_cache_hit_has_its_results_where_every_reader_looks(ledger, settings):
    """`job get`, `job logs` and the HTTP results find an execution's results under its own
    ids, so a reusing execution gets the reused files there too."""
    job = SHELL_JOB.format(
        name="cached-files", count=1, shell="/bin/sh", script="echo once", memory="64Mi", timeout=60
    )
    cached = Runner(ledger, default_registry(settings), settings, use_cache=True)
    runs = []
    for _ in range(2):
        job_id = ledger.submit(compile_document(job), force=True).job_id
        runs.append(cached.run_job(job_id).executions[-1])
    first, second = runs
    assert any("result cache hit" in note for note in second.notes)

    folders = [execution_results_dir(settings, e.job_id, e.id) for e in (first, second)]
    assert (folders[1] / "stdout").read_text() == (folders[0] / "stdout").read_text() == "once\n"
    assert sorted(p.name for p in folders[1].iterdir()) == sorted(
        p.name for p in folders[0].iterdir()
    )


def test_a_job_waiting_longer_than_its_queue_timeout_fails(ledger, settings, clock, on_clock):
    text = (
        "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: noop}\n"
        "    Timeouts: {QueueTimeout: 1}\n"
    )
    job_id = ledger.submit(compile_document(text)).job_id
    clock.now += 1.5  # waiting since its submission, longer than its QueueTimeout
    runner = on_clock(settings)

    runner.start()
    view = ledger.wait(job_id, timeout=30)
    runner.stop()

    assert view.state is JobState.FAILED
    messages = [entry["Event"]["Message"] for entry in ledger.history(job_id)]
    assert any(m.startswith("Queue timeout: exceeded 1 seconds") for m in messages)


RECLAIM_IN_CHILD = """
import sys, time
from pathlib import Path
from klippfisk.engine import IllegalTransition, Ledger
from klippfisk.engine.runner import runner_identity
from klippfisk.engine.settings import Settings
ledger = Ledger.open(Settings())
go, dead, orphans = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
for job_id in orphans:
    ledger.get(job_id)  # both successors now hold each orphan as the dead runner left it
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
for job_id in orphans:
    try:
        ledger.reclaim(job_id, dead_owner=dead, actor=runner_identity(), reason="resumed")
        print("won", job_id, flush=True)
    except IllegalTransition as exc:
        print("lost", job_id, exc, flush=True)
"""


def test_two_successors_racing_on_the_same_orphans_reclaim_each_exactly_once(
    ledger, submit, tmp_path
):
    dead = "local/" + socket.gethostname() + "/999999999-1"
    orphans = [submit(f"echo {n}") for n in range(5)]
    for job_id in orphans:
        ledger.queue(job_id, reason="Queued for a worker", actor=dead)
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RECLAIM_IN_CHILD, str(go), dead, *orphans],
            env=os.environ,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ready = [child.stdout.readline() for child in children if child.stdout]
    assert ready == ["ready\n"] * 2  # both hold the orphans as left: the race is real
    go.touch()
    lines = [
        line.split(" ", 2) for child in children for line in child.communicate(60)[0].splitlines()
    ]

    assert [child.returncode for child in children] == [0, 0]
    for job_id in orphans:
        outcomes = sorted(line[0] for line in lines if line[1] == job_id)
        assert outcomes == ["lost", "won"]
        [refusal] = [line[2] for line in lines if line[1] == job_id and line[0] == "lost"]
        assert refusal.startswith("Cannot reclaim: job ") and "is Queued by local/" in refusal
        claims = [
            e["Event"]["Details"]["Actor"]
            for e in ledger.history(job_id)
            if e["Event"]["Details"]["Type"] == "Queued"
        ]
        assert claims[0] == dead and len(claims) == 2
        assert ledger.get(job_id).executions == []
    assert ledger.verify().ok


def test_a_live_runners_claim_is_not_reclaimed(ledger, runner, submit):
    job_id = submit("true")
    ledger.queue(job_id, actor=runner_identity())

    assert runner.recover() == []
    assert ledger.get(job_id).queued_by == runner_identity()


@pytest.fixture
def no_cluster(settings: Settings) -> Settings:
    """Settings whose Bacalhau cluster is a closed port on loopback, refusing at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bacalhau = settings.bacalhau.model_copy(update={"port": port, "retries": 0})
    return settings.model_copy(update={"bacalhau": bacalhau})


def test_a_job_that_asked_for_local_runs_here_on_a_worker_that_defaults_to_a_cluster(
    ledger, no_cluster
):
    text = SHELL_JOB.format(
        name="here", count=1, shell="/bin/sh", script="echo here", memory="256Mi", timeout=60
    )
    job_id = ledger.submit(compile_document(text), executor="local").job_id
    worker = Runner(ledger, default_registry(no_cluster, "bacalhau"), no_cluster)

    worker.start()
    view = ledger.wait(job_id, timeout=60)
    worker.stop()

    assert view.state is JobState.COMPLETED
    assert [(e.executor, e.stdout) for e in view.executions] == [("local", "here\n")]


def test_a_job_that_asked_for_bacalhau_goes_there_from_a_local_worker(ledger, no_cluster):
    text = SHELL_JOB.format(
        name="there", count=1, shell="/bin/sh", script="echo there", memory="256Mi", timeout=60
    )
    job_id = ledger.submit(compile_document(text), executor="bacalhau").job_id
    worker = Runner(ledger, default_registry(no_cluster), no_cluster)

    worker.start()
    view = ledger.wait(job_id, timeout=60)
    worker.stop()

    [execution] = view.executions
    assert execution.executor == "bacalhau"
    assert view.state is JobState.FAILED
    assert f"127.0.0.1:{no_cluster.bacalhau.port}" in execution.error


def noop_job(name: str, timeouts: str = "{}", namespace: str = "default") -> str:
    """A named noop job: it runs at once, so what decides its fate is the runner's rules."""
    return (
        f"Name: {name}\nNamespace: {namespace}\nType: batch\nTasks:\n  - Name: main\n"
        f"    Engine: {{Type: noop}}\n    Timeouts: {timeouts}\n"
    )


def serve_until_ended(ledger: Ledger, runner: Runner, job_ids: list[str]) -> list:
    runner.start()
    try:
        return [ledger.wait(job_id, timeout=30) for job_id in job_ids]
    finally:
        runner.stop()


def dead_owner() -> str:
    """A runner identity of this host whose process does not exist."""
    return "local/" + socket.gethostname() + "/999999999-1"


def test_a_resubmitted_version_counts_its_queue_timeout_from_its_own_submission(
    ledger, runner, settings, clock, on_clock
):
    text = noop_job("resubmitted", "{QueueTimeout: 2}")
    first = ledger.submit(compile_document(text))
    assert runner.run_job(first.job_id).state is JobState.COMPLETED
    second = ledger.submit(compile_document(text), force=True)
    resubmitted = ledger.get(second.job_id)
    first_at, second_at = resubmitted.created_at, resubmitted.modified_at
    # halfway between the two versions' queue deadlines: the first has passed, the second not
    moment = first_at + (second_at - first_at) / 2 + timedelta(seconds=2)
    clock.now += (moment - clock.utc_now()).total_seconds()

    [view] = serve_until_ended(ledger, on_clock(settings), [second.job_id])

    assert second.version == 2
    assert view.state is JobState.COMPLETED
    assert [e.job_version for e in view.executions] == [1, 2]


def test_recovery_resumes_every_orphan_not_only_the_first_hundred(ledger, runner):
    dead = dead_owner()
    with ledger.batch():
        orphans = [
            ledger.submit(compile_document(noop_job(f"orphan-{n}"))).job_id for n in range(101)
        ]
        for job_id in orphans:
            ledger.queue(job_id, reason="Queued for a worker", actor=dead)

    runner.recover()

    assert {ledger.get(job_id).queued_by for job_id in orphans} == {runner.identity}


CHILD_RUNNER = """
from klippfisk.engine.runner import runner_identity
import sys, time
print(runner_identity(), flush=True)
time.sleep(60)
"""


def test_a_serving_runner_resumes_what_a_runner_that_dies_later_left_behind(
    ledger, settings, clock, on_clock
):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_RUNNER], env=os.environ, stdout=subprocess.PIPE, text=True
    )
    try:
        owner = child.stdout.readline().strip() if child.stdout else ""
        job_id = ledger.submit(compile_document(noop_job("left-behind"))).job_id
        ledger.queue(job_id, reason="Queued for a worker", actor=owner)
        worker = on_clock(settings)
        worker.start()
        try:
            probe = ledger.submit(compile_document(noop_job("probe"))).job_id
            # run after the worker's first recovery: the one at start is behind it
            assert ledger.wait(probe, timeout=30).state is JobState.COMPLETED
            assert ledger.get(job_id).queued_by == owner  # its owner lives: left alone
            child.kill()
            child.wait()
            clock.now += settings.executor.recover_seconds  # time for the next recovery
            view = ledger.wait(job_id, timeout=30)
        finally:
            worker.stop()
    finally:
        child.kill()
        child.wait()

    assert view.state is JobState.COMPLETED
    assert view.queued_by == worker.identity


def test_claims_held_at_the_head_of_the_queue_do_not_starve_pending_jobs(ledger, settings):
    alive_owner = runner_identity()  # a live runner's claims: recovery leaves them alone
    with ledger.batch():
        for n in range(QUEUE_SCAN):
            held = ledger.submit(compile_document(noop_job(f"held-{n}"))).job_id
            ledger.queue(held, reason="Queued for a worker", actor=alive_owner)
    waiting = ledger.submit(compile_document(noop_job("waiting"))).job_id
    worker = Runner(ledger, default_registry(settings), settings)

    [view] = serve_until_ended(ledger, worker, [waiting])

    assert view.state is JobState.COMPLETED


def test_a_job_still_waiting_at_its_total_timeout_fails_with_a_total_timeout(
    ledger, settings, clock, on_clock
):
    job_id = ledger.submit(compile_document(noop_job("late", "{TotalTimeout: 1}"))).job_id
    clock.now += 1.5  # waiting since its submission, longer than its TotalTimeout

    [view] = serve_until_ended(ledger, on_clock(settings), [job_id])

    assert view.state is JobState.FAILED
    assert view.executions == []
    [timeout] = [
        e["Event"] for e in ledger.history(job_id) if "TimeoutKind" in e["Event"]["Details"]
    ]
    assert timeout["Details"]["TimeoutKind"] == "total"
    assert timeout["Message"].startswith("Total timeout: exceeded 1 seconds")


def test_the_result_cache_never_answers_across_namespaces(ledger, settings):
    cached = Runner(ledger, default_registry(settings), settings, use_cache=True)
    script = "cat /proc/sys/kernel/random/uuid"
    body = SHELL_JOB.format(
        name="shared", count=1, shell="/bin/sh", script=script, memory="256Mi", timeout=60
    )

    def run(namespace: str) -> object:
        job_id = ledger.submit(compile_document(f"Namespace: {namespace}\n{body}")).job_id
        return cached.run_job(job_id).executions[-1]

    first, second = run("alpha"), run("beta")

    assert second.stdout != first.stdout
    assert not any("result cache hit" in note for note in second.notes)
    assert second.published_result != first.published_result


def test_the_result_cache_runs_a_task_with_a_local_directory_again(ledger, settings, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    executor = settings.executor.model_copy(update={"allowed_local_paths": [tmp_path]})
    allowed = settings.model_copy(update={"executor": executor})
    cached = Runner(ledger, default_registry(allowed), allowed, use_cache=True)
    text = SHELL_JOB.format(
        name="reads-a-dir",
        count=1,
        shell="/bin/sh",
        script="cat /data/in",
        memory="256Mi",
        timeout=60,
    ) + (
        f"    InputSources:\n      - Target: /data\n        Source:\n"
        f"          Type: localDirectory\n          Params: {{SourcePath: '{shared}'}}\n"
    )

    def run(content: str) -> object:
        (shared / "in").write_text(content)
        job_id = ledger.submit(compile_document(text), force=True).job_id
        return cached.run_job(job_id).executions[-1]

    assert run("before\n").stdout == "before\n"
    assert run("after\n").stdout == "after\n"
