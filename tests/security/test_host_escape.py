"""Escapes tried against the host sandbox (docker tasks with no Docker daemon): a task may not
outlive its end, outgrow its limits, or leave anything on the host.

Every job here runs end to end (document -> ledger -> runner -> the real executor), or, where
a runner must die, in a runner of its own process. The first tests each broke before the
sandbox put a task in a cgroup of its own and gave it IPC and capped tmpfs: a process in a
session of its own outlived the deadline, the stop and the runner; memory was a per-process
limit; a SysV segment stayed; the disk filled. The last ones pin what already held.
The autouse `leftovers` fixture checks after each test that nothing of the task is left.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from klippfisk.engine import ExecutionState, JobState, JobView
from klippfisk.engine.executors.base import ExecutionRequest
from klippfisk.engine.executors.local import LocalExecutor
from klippfisk.engine.executors.local.cgroups import TaskCgroup, cgroup_name, task_cgroup_names
from klippfisk.engine.executors.local.host import containment_note
from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.results import execution_results_dir
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import Settings
from klippfisk.spec import compile_document
from tests.eventually import eventually

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces")

needs_cgroups = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/sys/fs/cgroup").is_dir(),
    reason="a cgroup per task takes root and a cgroup file system",
)

# Seconds a test waits in real time for what the kernel does on its own (a death, a start).


def host_job(
    command: list[str],
    *,
    memory: str = "256Mi",
    timeout: float = 60,
    disk: str | None = None,
    cpu: str | None = None,
    results: bool = False,
) -> str:
    """A docker job the host sandbox runs (no daemon here): `command` as Entrypoint."""
    resources = [f"Memory: {memory}"] + [f"Disk: {disk}"] * bool(disk) + [f"CPU: {cpu}"] * bool(cpu)
    return f"""
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params: {{Image: ubuntu:24.04, Entrypoint: {json.dumps(command)}}}
    Resources: {{{", ".join(resources)}}}
    Timeouts: {{ExecutionTimeout: {timeout}}}
    ResultPaths: {"[{Name: outputs, Path: /outputs}]" if results else "[]"}
"""


def sh(script: str, **kwargs: object) -> str:
    return host_job(["/bin/sh", "-c", script], **kwargs)


def python(code: str, **kwargs: object) -> str:
    return host_job(["python3", "-c", code], **kwargs)


def running(marker: str, program: str = "") -> list[int]:
    """Pids of live processes whose command line holds `marker` (and runs `program`: the
    sandbox's own first process holds the task's command line too)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        argv0 = os.path.basename(cmdline.split(b"\0", 1)[0]).decode(errors="replace")
        if marker.encode() in cmdline and program in ("", argv0):
            found.append(int(entry.name))
    return found


def task_started(marker: str) -> bool:
    """Whether the task's own shell (not only the sandbox about it) runs."""
    return eventually(lambda: bool(running(marker, program="sh")))


def results_of(settings: Settings, view: JobView) -> Path:
    return execution_results_dir(settings, view.id, view.executions[-1].id)


# A task whose first process (PID 1 of its namespace) leaves the runner's session and process
# group, as `setsid` does: a signal to the sandbox's process group no longer reaches it.
def session_leaver(marker: str, **kwargs: object) -> str:
    return sh(f"exec setsid sh -c 'sleep 60; : {marker}'", **kwargs)


@pytest.fixture
def kill_by_marker() -> Iterator[Callable[[str], None]]:
    """Kills what a test's task left (so a run that fails, on code that lets a task outlive
    its end, leaves nothing behind either)."""
    markers: list[str] = []
    yield markers.append
    for marker in markers:
        for pid in running(marker):
            os.kill(pid, signal.SIGKILL)
        eventually(lambda m=marker: not running(m))


# --- a task ends with its execution -------------------------------------------------------


def test_a_process_in_a_session_of_its_own_dies_at_the_deadline(start_job, clock, kill_by_marker):
    marker = f"marker-{uuid.uuid4()}"
    kill_by_marker(marker)
    job = start_job(session_leaver(marker, timeout=2))
    job.wait_running()
    assert task_started(marker), "the task never started"

    clock.now += 3
    view = job.join()

    assert view.state is JobState.FAILED
    assert running(marker) == []


def test_a_process_in_a_session_of_its_own_dies_when_the_job_is_stopped(
    start_job, ledger, kill_by_marker
):
    marker = f"marker-{uuid.uuid4()}"
    kill_by_marker(marker)
    job = start_job(session_leaver(marker))
    job.wait_running()
    assert task_started(marker), "the task never started"

    ledger.stop(job.job_id, reason="enough", actor="test")
    view = job.join()

    assert view.state is JobState.STOPPED
    assert running(marker) == []


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


def test_a_task_dies_with_its_runner_and_recovery_leaves_nothing_of_it(
    ledger, settings, submit, kill_by_marker
):
    marker = f"marker-{uuid.uuid4()}"
    kill_by_marker(marker)
    job_id = submit(session_leaver(marker))
    runner = subprocess.Popen([sys.executable, "-c", RUNNER_IN_CHILD, job_id], env=os.environ)
    try:
        ledger.wait(job_id, states=[JobState.RUNNING], timeout=60)
        assert task_started(marker), "the task never started"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()

    assert eventually(lambda: not running(marker)), "the task outlived its runner"
    Runner(ledger, default_registry(settings), settings).recover()

    [execution] = ledger.get(job_id).executions
    assert execution.state is ExecutionState.FAILED
    assert "cannot have run twice" in execution.error
    assert not [n for n in task_cgroup_names() if execution.id in n]


@pytest.fixture
def cgroup_holding(
    kill_by_marker: Callable[[str], None],
) -> Iterator[Callable[[str, str], TaskCgroup]]:
    """Make a task cgroup as a runner that died leaves it: a process of the task (in a
    session of its own, its command line holding a marker) still in it."""
    made: list[tuple[TaskCgroup, subprocess.Popen[bytes]]] = []

    def make(name: str, marker: str) -> TaskCgroup:
        kill_by_marker(marker)
        cgroup = TaskCgroup.create(name, memory_bytes=64 << 20, pids=8)
        join = "; ".join(f"echo $$ > {path}" for path in cgroup.procs_files)
        script = f"{join}; exec setsid sh -c 'sleep 60; : {marker}'"
        made.append((cgroup, subprocess.Popen(["/bin/sh", "-c", script])))
        assert eventually(lambda: bool(cgroup.pids()) and bool(running(marker)))
        return cgroup

    yield make
    for cgroup, process in made:
        cgroup.remove()
        process.wait()


@needs_cgroups
def test_recovery_ends_an_orphans_task_and_records_that_it_did_not_run_twice(
    ledger, settings, submit, cgroup_holding
):
    marker = f"marker-{uuid.uuid4()}"
    job_id = submit(sh("true"))
    dead = "local/" + os.uname().nodename + "/999999999-1"
    ledger.queue(job_id, actor=dead)
    execution_id = ledger.create_execution(job_id, node=dead, actor=dead)
    ledger.start_execution(job_id, execution_id, notes=[f"runner {dead}"])
    cgroup_holding(cgroup_name(job_id, execution_id), marker)

    failed = Runner(ledger, default_registry(settings), settings).recover()

    assert failed == [execution_id]
    assert running(marker) == []
    assert cgroup_name(job_id, execution_id) not in set(task_cgroup_names())


@needs_cgroups
def test_a_sweep_ends_a_task_whose_execution_the_ledger_says_is_over(
    ledger, settings, submit, cgroup_holding
):
    marker = f"marker-{uuid.uuid4()}"
    view = Runner(ledger, default_registry(settings), settings).run_job(submit(sh("true")))
    name = cgroup_name(view.id, view.executions[0].id)
    cgroup_holding(name, marker)
    other = f"marker-{uuid.uuid4()}"
    cgroup_holding(cgroup_name(view.id, "e-not-in-this-ledger"), other)

    Runner(ledger, default_registry(settings), settings).recover()

    assert running(marker) == []
    assert name not in set(task_cgroup_names())
    assert running(other), "a task of an execution the ledger lacks is not ours"


# --- a task is limited as a whole ---------------------------------------------------------


@needs_cgroups
def test_memory_is_limited_for_the_whole_task_not_per_process(run_job, settings):
    hold = "import time; x = b'1' * (30 << 20); time.sleep(1); print('held', flush=True)"
    script = f'for i in 1 2 3 4; do python3 -c "{hold}" & done; wait'

    view = run_job(sh(script, memory="64Mi"))

    [execution] = view.executions
    assert execution.state is ExecutionState.FAILED
    assert "killed: over its memory limit of 64Mi" in execution.error
    held = (results_of(settings, view) / "stdout").read_text().split()
    assert held.count("held") < 4


def shm_keys() -> set[int]:
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(line.split()[0]) for line in lines}


def test_a_shared_memory_segment_does_not_outlive_the_job(run_job):
    key = random.randrange(1 << 20, 1 << 30)
    make = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        f"print(libc.shmget({key}, 1 << 20, 0o1600))"  # IPC_CREAT | 0600, never removed
    )
    try:
        view = run_job(python(make))
        assert view.executions[0].exit_code == 0
        assert int(view.executions[0].stdout) >= 0, "the segment was not made"

        assert key not in shm_keys()
    finally:  # the host's own segment, on code without an IPC namespace
        libc = ctypes.CDLL(None, use_errno=True)
        shmid = libc.shmget(key, 0, 0)
        if shmid >= 0:
            libc.shmctl(shmid, 0, None)  # IPC_RMID


FILL = """
import errno
failed = {}
def write(path, size):
    try:
        with open(path, "wb") as fh:
            fh.write(b"x" * size)
    except OSError as exc:
        failed[path.split("/")[1]] = errno.errorcode[exc.errno]
for n in range(3):  # each under the 8 MiB file-size rlimit, all three over the disk cap
    write(f"/outputs/big-{n}", 6 << 20)
for n in range(20000):
    write(f"/outputs/small-{n}", 16)
for n in range(3):
    write(f"/tmp/big-{n}", 6 << 20)
print(sorted(failed.items()))
"""


def test_the_disk_cap_holds_for_result_paths_and_tmp(run_job, settings):
    view = run_job(python(FILL, disk="8Mi", results=True))

    [execution] = view.executions
    assert execution.exit_code == 0, execution.stderr
    assert execution.stdout.strip() == "[('outputs', 'ENOSPC'), ('tmp', 'ENOSPC')]"
    kept = [p for p in (results_of(settings, view) / "outputs").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in kept) <= 8 << 20
    assert len(kept) <= 10_000


@needs_cgroups
def test_cpu_is_limited_for_the_task(run_job):
    spin = (
        "import time\n"
        "wall, cpu = time.monotonic(), time.process_time()\n"
        "while time.monotonic() - wall < 1: pass\n"
        "print((time.process_time() - cpu) / (time.monotonic() - wall))"
    )

    view = run_job(python(spin, cpu="100m"))

    assert float(view.executions[0].stdout) < 0.5


@needs_cgroups
def test_the_notes_say_which_limits_the_kernel_holds_for_the_whole_task(run_job):
    view = run_job(sh("true", memory="256Mi", cpu="500m"))

    notes = view.executions[0].notes
    assert "cgroup: memory 256Mi, pids 128, cpu 500m, kill" in notes


class _Hooks:
    def started(self, node: str, notes: list[str]) -> None:
        pass


def test_without_cgroups_the_notes_say_which_limits_hold_only_per_process():
    nothing = TaskCgroup("made-without-root")  # what `create` returns where none can be made
    limits = TaskLimits(60, 256 << 20, 128, 1 << 30, cpu_millicores=500)

    note = containment_note(nothing, limits)

    assert note == (
        "cgroup: none (it takes root and a writable cgroupfs); per process only (rlimits): "
        "memory 256Mi, pids 128; not enforced: cpu 500m"
    )


def test_what_cannot_be_copied_out_of_the_results_is_left_out_and_said(settings):
    script = "echo data > /outputs/real; ln -s /etc/shadow /outputs/shadow; mkfifo /outputs/f"
    [task] = compile_document(sh(script, results=True)).job["Tasks"]
    results = settings.data_dir / "results" / "j-test" / "e-test"
    request = ExecutionRequest("j-test", "e-test", {"Tasks": [task]}, task, "", results)

    outcome = LocalExecutor(settings).run(request, _Hooks(), threading.Event())

    assert outcome.output is not None and outcome.output.exit_code == 0, outcome
    assert sorted(p.name for p in (results / "outputs").iterdir()) == ["real"]
    assert (results / "outputs" / "real").read_text() == "data\n"
    assert "results: skipped 1 link, 1 fifo" in outcome.notes


# --- what already held ---------------------------------------------------------------------
# No network, the fork bomb, and deadlines and stops of plain processes are pinned in
# tests/unit/executors/test_host.py (test_no_network_unless_the_spec_allows_it,
# test_fork_bomb_is_contained_and_killed_at_the_deadline, test_timeout_kills_the_whole_...).


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "host-secret"
    secret.write_text("the operator's secret\n")
    return secret


PTRACE_HOST = (
    "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
    "r = libc.ptrace(16, int(sys.argv[1]), None, None); "  # PTRACE_ATTACH
    "print('attached' if r == 0 else 'refused')"
)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        ("cat {secret} 2>/dev/null || echo unreadable", "unreadable"),
        (
            "exec python3 -c \"import os; print([p for p in os.listdir('/proc') if p.isdigit()])\"",
            "['1']",
        ),  # the task alone: no host process
        (
            "echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo wrote || echo read-only",
            "read-only",
        ),
        (
            "python3 -c 'import os; os.setuid(0)' 2>/dev/null && echo root || echo refused",
            "refused",
        ),
        ('python3 -c "{ptrace}" {host_pid}', "refused"),
    ],
    ids=["host-file", "host-processes", "proc-sys", "setuid", "ptrace"],
)
def test_what_already_held(attempt, expected, run_job, host_secret):
    script = attempt.format(secret=host_secret, ptrace=PTRACE_HOST, host_pid=os.getpid())

    view = run_job(sh(script))

    assert view.executions[0].stdout.strip() == expected


def test_a_sigterm_trap_is_killed_at_the_deadline(start_job, clock, kill_by_marker):
    marker = f"marker-{uuid.uuid4()}"
    kill_by_marker(marker)
    job = start_job(sh(f"trap '' TERM; while :; do sleep 1; done; : {marker}", timeout=2))
    job.wait_running()
    assert task_started(marker), "the task never started"

    clock.now += 3
    view = job.join()

    assert view.state is JobState.FAILED
    assert running(marker) == []
