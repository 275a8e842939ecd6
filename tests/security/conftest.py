"""Fixtures of the escape suite: jobs run end to end (document -> ledger -> runner -> the real
executors) in a data directory of the test's own, and a check after every test that the task
left nothing on the host.

`run_job` runs a job document to its end state on the wall clock (for jobs that end by
themselves); `start_job` runs one in a thread on a `ManualClock`, for tests that reach a
deadline by moving the clock, stop the job, or look at it while it runs. `leftovers` is
autouse: after each test no task cgroup, no new SysV shared-memory segment, no mount under the
data directory, and no process of the task may remain.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from klippfisk.engine import JobState, JobView, Ledger
from klippfisk.engine.executors.local.cgroups import cgroup_execution, task_cgroup_names
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.ledger.views import Source
from klippfisk.engine.results import results_root
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import DockerSettings, ExecutorSettings, Settings
from klippfisk.spec import compile_document
from tests.unit.manual_clock import ManualClock

# How long a test waits, in real time, for what a task does by itself (start, exit).
REAL_WAIT_SECONDS = 60.0


@pytest.fixture
def settings(isolated_data_dir: Path, wasm_cache_dir: Path) -> Settings:
    """Settings on the test's data directory, with no Docker daemon (whatever this machine
    has): docker tasks take the host sandbox, python code-runner tasks python.wasm."""
    no_docker = DockerSettings(host=None, default_socket=isolated_data_dir / "no-docker.sock")
    return Settings(
        data_dir=isolated_data_dir,
        executor=ExecutorSettings(cache_dir=wasm_cache_dir, docker=no_docker),
    )


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(settings) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    """The time of runners `start_job` makes: it passes only when the test moves it."""
    return ManualClock()


@pytest.fixture
def submit(ledger: Ledger) -> Callable[..., str]:
    """Compile a job document and record it (`source` says who sent it); its job id."""

    def submit_job(document: str, *, source: Source | None = None) -> str:
        return ledger.submit(compile_document(document), source=source, force=True).job_id

    return submit_job


@pytest.fixture
def run_job(
    ledger: Ledger, settings: Settings, submit: Callable[..., str]
) -> Callable[..., JobView]:
    """Run a job document end to end on the real runner and default registry; the job as it
    ended. `settings` overrides the test's settings for this run (the same data dir)."""

    def run(
        document: str, *, source: Source | None = None, settings_: Settings | None = None
    ) -> JobView:
        local = settings_ or settings
        runner = Runner(ledger, default_registry(local), local)
        return runner.run_job(submit(document, source=source))

    return run


@dataclass
class JobInThread:
    """A job a runner on a ManualClock runs in a thread: the test moves the clock, sets
    `cancel` (a stop), and `join`s for the job as it ended."""

    job_id: str
    ledger: Ledger
    cancel: threading.Event
    thread: threading.Thread
    ended: list[JobView]

    def wait_running(self) -> JobView:
        return self.ledger.wait(self.job_id, states=[JobState.RUNNING], timeout=REAL_WAIT_SECONDS)

    def join(self, timeout: float = REAL_WAIT_SECONDS) -> JobView:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"job {self.job_id} did not end in {timeout} s"
        return self.ended[0]


@pytest.fixture
def start_job(
    ledger: Ledger, settings: Settings, clock: ManualClock, submit: Callable[..., str]
) -> Iterator[Callable[..., JobInThread]]:
    """Start a job document on a runner (and executors) keeping time on `clock`."""
    started: list[JobInThread] = []

    def start(document: str, *, source: Source | None = None) -> JobInThread:
        runner = Runner(ledger, default_registry(settings, clock=clock), settings, clock=clock)
        job_id = submit(document, source=source)
        cancel = threading.Event()
        ended: list[JobView] = []
        thread = threading.Thread(
            target=lambda: ended.append(runner.run_job(job_id, cancel)), daemon=True
        )
        job = JobInThread(job_id, ledger, cancel, thread, ended)
        thread.start()
        started.append(job)
        return job

    yield start
    for job in started:  # a test that failed half-way still ends what it started
        job.cancel.set()
        job.thread.join(REAL_WAIT_SECONDS)


# --- what a task may not leave behind --------------------------------------------------------


def _shm_segments() -> dict[str, int]:
    """{shmid: creator pid} of every SysV shared-memory segment on the host."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {fields[1]: int(fields[4]) for fields in (line.split() for line in lines)}


def _is_ours(pid: int) -> bool:
    """Whether `pid` is gone or a descendant of this test process: a segment whose creator
    still runs under another process (a concurrent test run) is not this test's."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True  # its creator has ended: nobody but a task can have made it
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _ran_here(cgroup: str, results: Path) -> bool:
    """Whether a task cgroup is of an execution of this test (its results folder is in the
    test's results root), not of a test another process runs at the same time."""
    execution = cgroup_execution(cgroup)
    return execution is not None and (results / execution[0] / execution[1]).exists()


def _mounts_under(path: Path) -> list[str]:
    points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def _processes_in(path: Path) -> list[str]:
    """Processes (other than this one) whose root, working directory or command line is in
    `path`: a task's processes, which run in or from its workspace."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            places = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        if any(p == str(path) or p.startswith(f"{path}/") for p in places) or str(path) in command:
            found.append(f"{entry.name}: {command.strip()[:200]}")
    return found


@pytest.fixture(autouse=True)
def leftovers(isolated_data_dir: Path, settings: Settings) -> Iterator[None]:
    """After each test: no task cgroup, no new shared-memory segment of ours, no mount under
    the data directory, and no process running in or from it."""
    results = results_root(settings)
    cgroups_before = set(task_cgroup_names())
    shm_before = set(_shm_segments())
    yield
    cgroups = {n for n in set(task_cgroup_names()) - cgroups_before if _ran_here(n, results)}
    shm = {i: pid for i, pid in _shm_segments().items() if i not in shm_before and _is_ours(pid)}
    mounts = _mounts_under(isolated_data_dir)
    processes = _processes_in(isolated_data_dir)
    assert not cgroups, f"task cgroups left: {sorted(cgroups)}"
    assert not shm, f"SysV shared-memory segments left (shmid: creator pid): {shm}"
    assert not mounts, f"mounts left under the data dir: {mounts}"
    assert not processes, f"task processes left: {processes}"
