"""The runner: takes waiting jobs from the ledger, runs them, records what happened.

It is the only writer of execution events. A job is claimed by queueing it (the ledger only
queues a Pending job once, so two runners never take the same job), then each partition
gets an execution: created, handed to the executor for its engine, started when the
executor says so, and ended as Completed (any exit code), Failed (with the executor's
sentence), TimedOut (the ledger cancels the execution and fails the job) or cancelled by a
stop. While an execution runs, the runner watches the ledger so that a stop requested from
anywhere (CLI, HTTP, bot; this process or another) kills it.

Crash safety: every execution is tagged with the runner that owns it (host, pid and the
pid's start time). A serving runner (at its start, then every `recover_seconds`) fails the
executions whose owner is gone, saying so in the history, after ending their tasks (the
kernel's cgroup of each, every process in it, or its Docker container); it never re-runs them,
so nothing runs twice silently. The same sweep ends any task left in a cgroup or a container
(found by its labels) whose execution the ledger says is over. A job the dead runner queued
but never gave an execution did not run at all: that one is re-claimed (exactly one successor
wins) and resumed.

Deadlines are Bacalhau's: QueueTimeout bounds the wait for a runner, ExecutionTimeout one run
(the executor keeps it), TotalTimeout the whole job, wait and runs together. The waits count
from the submission of the job's current version, not its first. The runner reads them, and
times its recovery sweeps, from the clock it is given (`engine.clock`; the real one unless a
test hands in its own), as the executors do theirs.

A job may carry the executor its submitter asked for (`job run --executor`, recorded with
the submission); the runner honours it over its own default, so a worker started with
another default still runs the job where it was meant to run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from klippfisk.engine.clock import SYSTEM_CLOCK, Clock
from klippfisk.engine.executors.base import ExecutionOutcome, ExecutionRequest, Executor
from klippfisk.engine.executors.local.cgroups import (
    TaskCgroup,
    cgroup_execution,
    cgroup_name,
    task_cgroup_names,
)
from klippfisk.engine.executors.local.docker_reaper import ContainerReaper
from klippfisk.engine.executors.local.limits import TaskLimits
from klippfisk.engine.executors.registry import (
    ExecutorRegistry,
    UnsupportedEngine,
    default_registry,
)
from klippfisk.engine.ids import is_job_id
from klippfisk.engine.job import ExecutionState, IllegalTransition, JobState, LedgerError
from klippfisk.engine.ledger import JobView, Ledger
from klippfisk.engine.results import (
    ResultCache,
    ResultsDir,
    cacheable,
    execution_results_dir,
    result_cache,
)
from klippfisk.engine.settings import Settings
from klippfisk.engine.wire import WireError, parse_rfc3339

__all__ = ["Runner", "RunnerError", "runner_identity"]

log = logging.getLogger(__name__)

OWNER_NOTE = "runner "
ACTIVE = (ExecutionState.NEW, ExecutionState.RUNNING)
QUEUE_SCAN = 50  # Pending jobs a worker looks at per poll (for claims and queue timeouts)
RECOVER_PAGE = 100  # jobs read per page while looking for what dead runners left
# Where a dead runner's work can be: its claims (Queued) and its executions (Running). A
# Pending job has neither (a resubmission cancels the active ones), so the backlog is skipped.
RECOVERABLE = (JobState.RUNNING, JobState.QUEUED)
SUBMISSIONS = ("Submitted", "Resubmitted")
SUBMITTED_KEPT = 4096  # submission times remembered (they never change; history is a replay)


class RunnerError(LedgerError):
    """A job cannot be run as asked (e.g. it is not waiting to run)."""


def _start_ticks(pid: int) -> str | None:
    """The pid's start time in clock ticks (from /proc), or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def runner_identity() -> str:
    """`local/<host>/<pid>-<start>`: names this process uniquely, even across pid reuse."""
    pid = os.getpid()
    return f"local/{socket.gethostname()}/{pid}-{_start_ticks(pid)}"


def _owner_alive(owner: str) -> bool | None:
    """Whether the runner `owner` still runs; None when it is not of this host (unknowable)."""
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != "local" or parts[1] != socket.gethostname():
        return None
    pid, _, start = parts[2].partition("-")
    return pid.isdigit() and _start_ticks(int(pid)) == start


class _Hooks:
    """What an executor calls while it works, turned into ledger events."""

    def __init__(
        self,
        ledger: Ledger,
        job_id: str,
        execution_id: str,
        owner: str,
        listener: Callable[[str], None] | None = None,
    ) -> None:
        self.ledger, self.job_id, self.execution_id, self.owner = (
            ledger,
            job_id,
            execution_id,
            owner,
        )
        self.listener = listener
        self.started_once = False
        self.noted: list[str] = []  # the notes the execution started with

    def started(self, node: str, notes: list[str]) -> None:
        if self.started_once:
            return
        self.started_once = True
        self.noted = list(notes)
        try:
            self.ledger.start_execution(
                self.job_id,
                self.execution_id,
                notes=[*notes, OWNER_NOTE + self.owner],
                node="",
            )
        except IllegalTransition:  # stopped meanwhile: the stop watcher will cancel the run
            log.info("job %s changed before execution %s started", self.job_id, self.execution_id)

    def progress(self, message: str) -> None:
        """Logged (`serve` shows it at INFO) and handed to whoever runs the job and waits."""
        log.info("execution %s: %s", self.execution_id, message)
        if self.listener is not None:
            self.listener(message)


class Runner:
    """Runs jobs from a ledger through a registry of executors."""

    def __init__(
        self,
        ledger: Ledger,
        executors: ExecutorRegistry,
        settings: Settings | None = None,
        *,
        use_cache: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.executors = executors
        self.settings = settings or Settings()
        self.identity = runner_identity()
        self.clock = clock  # the executors keep their own: build them on the same one
        self.on_progress = on_progress  # executors' words on slow work before a start
        self.cache = result_cache(self.settings) if use_cache else None
        self.containers = ContainerReaper(self.settings.executor.docker)
        self._resumed: list[str] = []  # re-claimed by `recover`, for `serve` to run
        self._resumed_lock = threading.Lock()
        self._running: set[str] = set()  # execution ids under way here: the sweep spares them
        # (job id, version) -> when that version was submitted; single dict operations only,
        # so the worker threads share it without a lock.
        self._submitted: dict[tuple[str, int], datetime] = {}

    # --- one job, in-process ---------------------------------------------------------------

    def run_job(self, ref: str, cancel: threading.Event | None = None) -> JobView:
        """Claim the job and run it to an end state; returns the job as it ends."""
        view = self.ledger.get(ref)
        if view.state is not JobState.PENDING:
            raise RunnerError(
                f"Job {view.short_id} is {view.state}, not waiting to run; submit it again "
                "(with force) to run it once more."
            )
        self.ledger.queue(view.id, reason="Queued for the local runner", actor=self.identity)
        return self._run_claimed(view.id, cancel or threading.Event())

    def _run_claimed(self, job_id: str, cancel: threading.Event) -> JobView:
        """One execution per partition (Count, at least 1), never more: no silent re-runs."""
        view = self.ledger.get(job_id)
        count = view.job.get("Count")
        for _ in range(count if isinstance(count, int) and count > 0 else 1):
            if view.terminal or cancel.is_set() or self._past_total_timeout(view):
                break
            self._run_execution(view, cancel)
            view = self.ledger.get(job_id)
        return self.ledger.get(job_id)

    def _run_execution(self, view: JobView, cancel: threading.Event) -> None:
        """Run one execution on the executor the job asked for, else on this runner's own."""
        task = (view.job.get("Tasks") or [{}])[0]
        engine_type = str((task.get("Engine") or {}).get("Type", ""))
        asked = self._asked_registry(view, engine_type)
        try:
            executor = (asked or self.executors).for_engine(engine_type)
        except UnsupportedEngine as exc:
            execution_id = self._create(view.id, "none")
            self._fail(view.id, execution_id, str(exc))
        else:
            self._run_on(view, task, executor, cancel)
        finally:
            if asked is not None:
                asked.close()

    def _asked_registry(self, view: JobView, engine_type: str) -> ExecutorRegistry | None:
        """The executors of the choice recorded with the job, when this runner's own would
        not send its engine there (None: the runner's own will do). The caller closes it."""
        if not view.executor:
            return None
        own = next((e for e in self.executors if e.supports(engine_type)), None)
        if own is not None and own.name == view.executor:
            return None
        return default_registry(self.settings, view.executor, self.clock)

    def _run_on(
        self, view: JobView, task: dict, executor: Executor, cancel: threading.Event
    ) -> None:
        execution_id = self._create(view.id, executor.name)
        task_cid = view.task_cids.get(str(task.get("Name", "")), "")
        cache = self.cache if task_cid and cacheable(task) else None
        if cache is not None and self._reuse(cache, view, execution_id, task_cid):
            return
        request = ExecutionRequest(
            job_id=view.id,
            execution_id=execution_id,
            job=view.job,
            task=task,
            task_cid=task_cid,
            results_dir=execution_results_dir(self.settings, view.id, execution_id),
            stranger=view.source.stranger,
        )
        hooks = _Hooks(self.ledger, view.id, execution_id, self.identity, self.on_progress)
        run_cancel = threading.Event()
        total = _task_timeout(view, "TotalTimeout")
        watcher = _StopWatcher(
            self.ledger,
            view.id,
            run_cancel,
            cancel,
            self.settings.executor.poll_seconds,
            self.clock,
            deadline=self._submitted_at(view) + timedelta(seconds=total) if total else None,
            on_deadline=lambda: self._time_out(view.id, "total", total),
        )
        watcher.start()
        self._running.add(execution_id)
        try:
            outcome = executor.run(request, hooks, run_cancel)
        except Exception as exc:  # an executor bug must not leave the job Running forever
            log.exception("executor %s raised on %s", executor.name, execution_id)
            outcome = ExecutionOutcome(error=f"the {executor.name} executor failed: {exc}")
        finally:
            self._running.discard(execution_id)
            watcher.finish()
        self._record(view.id, execution_id, task, outcome, hooks, cancel)
        if cache is not None:
            cache.put(view.namespace, task_cid, execution_id, outcome)

    def _reuse(self, cache: ResultCache, view: JobView, execution_id: str, task_cid: str) -> bool:
        """Complete the execution from the result cache, if it holds this task's results
        from the same namespace, whole: results that cannot be shared as plain files (a
        link, too many bytes) are not reused, the task runs again."""
        cached = cache.get(view.namespace, task_cid)
        if cached is None:
            return False
        folder = ResultsDir(execution_results_dir(self.settings, view.id, execution_id))
        if not cached.share_with(folder.path, self.settings.results.limits()).complete:
            folder.remove()
            return False
        note = (
            f"result cache hit: reused the results of execution {cached.execution_id} "
            f"(task {task_cid}); not run again"
        )
        _Hooks(self.ledger, view.id, execution_id, self.identity).started("local", [note])
        self.ledger.complete_execution(
            view.id, execution_id, **vars(cached.output), actor=self.identity
        )
        return True

    def _create(self, job_id: str, executor: str) -> str:
        return self.ledger.create_execution(
            job_id, executor=executor, node=self.identity, actor=self.identity
        )

    def _record(
        self,
        job_id: str,
        execution_id: str,
        task: dict,
        outcome: ExecutionOutcome,
        hooks: _Hooks,
        shutdown: threading.Event,
    ) -> None:
        """Turn an outcome into events; a stop recorded meanwhile wins over the outcome."""
        try:
            if outcome.cancelled:
                if self.ledger.get(job_id).state is not JobState.STOPPED:
                    self._fail(job_id, execution_id, _shutdown_message(shutdown))
            elif outcome.timed_out:
                limit = TaskLimits.of(task, self.settings.executor).timeout_seconds
                self.ledger.time_out(
                    job_id, kind="execution", limit_seconds=limit, actor=self.identity
                )
            elif outcome.error is not None or outcome.output is None:
                self._fail(job_id, execution_id, outcome.error or "the executor gave no result")
            else:
                if not hooks.started_once:
                    hooks.started("local", outcome.notes)
                late = [note for note in outcome.notes if note not in hooks.noted]
                self.ledger.complete_execution(
                    job_id, execution_id, **vars(outcome.output), actor=self.identity, notes=late
                )
        except IllegalTransition as exc:
            log.info("outcome of %s not recorded, the job moved on: %s", execution_id, exc)

    def _fail(self, job_id: str, execution_id: str, error: str) -> None:
        self.ledger.fail_execution(
            job_id, execution_id, error=error, retryable=False, actor=self.identity
        )

    # --- deadlines -------------------------------------------------------------------------

    def _submitted_at(self, view: JobView) -> datetime:
        """When the job's current version was submitted: Bacalhau's QueueTimeout and
        TotalTimeout count from there, not from the job's first version.

        A later version's time is read from the history (a replay), once per version."""
        if view.version <= 1:
            return view.created_at
        key = (view.id, view.version)
        known = self._submitted.get(key)
        if known is not None:
            return known
        entries = self.ledger.history(view.id, event_type="job")
        times = [
            e["Time"]
            for e in entries
            if e["Event"]["Details"].get("Type") in SUBMISSIONS and e["JobVersion"] == view.version
        ]
        try:
            submitted = parse_rfc3339(times[-1]) if times else view.created_at
        except WireError:  # a history we wrote ourselves; fall back rather than stall the queue
            submitted = view.created_at
        if len(self._submitted) >= SUBMITTED_KEPT:
            self._submitted.clear()
        self._submitted[key] = submitted
        return submitted

    def _overdue(self, view: JobView, now: datetime) -> tuple[str, float] | None:
        """The timeout a waiting job has outlived, TotalTimeout first (it is the job's own
        deadline), as (kind, limit in seconds); None while it may still wait."""
        limits = [
            (kind, _task_timeout(view, field))
            for kind, field in (("total", "TotalTimeout"), ("queue", "QueueTimeout"))
        ]
        limits = [(kind, limit) for kind, limit in limits if limit]
        if not limits:
            return None
        waited = (now - self._submitted_at(view)).total_seconds()
        return next(((kind, limit) for kind, limit in limits if waited > limit), None)

    def _past_total_timeout(self, view: JobView) -> bool:
        """Whether the job's TotalTimeout has run out; if so it is recorded as timed out, and
        no (further) execution starts."""
        overdue = self._overdue(view, self.clock.utc_now())
        if overdue is None or overdue[0] != "total":
            return False
        self._time_out(view.id, *overdue)
        return True

    def _time_out(self, job_id: str, kind: str, limit: float) -> None:
        """Record a passed deadline; the ledger cancels the job's active executions with it."""
        try:
            self.ledger.time_out(job_id, kind=kind, limit_seconds=limit, actor=self.identity)
        except LedgerError as exc:  # it ended meanwhile: nothing left to time out
            log.info("job %s not timed out (%s): %s", job_id, kind, exc)

    # --- crash recovery --------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Clean up after dead runners; returns the failed execution ids.

        Executions a dead runner created or started and never finished are failed, never
        re-run: the work may have had effects, and the history says what happened and how to
        run it again. A job a dead runner queued but never gave an execution did not run at
        all, so it is re-claimed for this runner (of racing successors exactly one wins) and
        `serve` resumes it; one with an execution already (say a retryable failure) is failed.
        An orphaned execution's task is ended before its failure is recorded, and then every
        task whose execution is over (`_end_finished_tasks`).
        """
        failed = []
        for view in self._recoverable():
            for execution in view.executions:
                if execution.state not in ACTIVE:
                    continue
                owner = _owner_of(execution.node, execution.notes)
                if _owner_alive(owner) is False:
                    self._end_task(view.id, execution.id)  # so it cannot have run twice
                    failed += self._fail_orphan(
                        view.id,
                        execution.id,
                        f"the runner that owned this execution ({owner}) stopped without "
                        "finishing it (it crashed or was killed); it was not run again, so it "
                        "cannot have run twice.",
                    )
            owner = self._claimed_by(view)
            if not owner or _owner_alive(owner) is not False:
                continue
            if not any(e.job_version == view.version for e in view.executions):
                self._resume(view.id, owner)
                continue
            failed += self._fail_orphan(
                view.id,
                None,
                f"the runner that queued this job ({owner}) stopped before finishing it, and "
                "it was not resumed because an execution of it exists already (it may have run).",
            )
        self._end_finished_tasks()
        return failed

    def _end_finished_tasks(self) -> None:
        """End every task left in a cgroup or a container (its runner died, or its end was
        not seen through) whose execution this ledger says is over; tasks of unknown
        executions are left alone (another ledger's), and so are those this runner is running."""
        in_cgroups = {ids for name in task_cgroup_names() if (ids := cgroup_execution(name))}
        in_containers = self.containers.executions()
        for ids in sorted(in_cgroups | in_containers):
            if not is_job_id(ids[0]) or ids[1] in self._running:
                continue
            try:
                view = self.ledger.get(ids[0])
            except LedgerError:
                continue
            execution = next((e for e in view.executions if e.id == ids[1]), None)
            if execution is not None and execution.state not in ACTIVE:
                log.info("ending the task of execution %s: it is %s", ids[1], execution.state)
                self._end_task(*ids, container=ids in in_containers)

    def _end_task(self, job_id: str, execution_id: str, *, container: bool = True) -> None:
        """Kill every process of the execution's task (its cgroup) and wait until none is
        left, remove the cgroup; kill and remove its container, if it may have one (a sweep
        that has just listed the containers knows, and spares the daemon the question)."""
        TaskCgroup.existing(cgroup_name(job_id, execution_id)).remove()
        if container:
            self.containers.end(execution_id)

    def _recoverable(self) -> Iterator[JobView]:
        """Every Running and Queued job, a page at a time: orphans can be many, and each one
        left out would wait forever."""
        token: str | None = None
        while True:
            page = self.ledger.list_jobs(
                state=[str(s) for s in RECOVERABLE], limit=RECOVER_PAGE, next_token=token
            )
            yield from page.items
            if not page.next_token:
                return
            token = page.next_token

    def _recover_now(self) -> None:
        """`recover`, for the worker loop: a failed attempt is logged and tried again next
        time rather than ending the worker."""
        try:
            self.recover()
        except LedgerError as exc:
            log.warning("looking for work of dead runners failed, will try again: %s", exc)

    def _resume(self, job_id: str, dead_owner: str) -> None:
        """Re-claim a job nothing ran of, and hand it to `serve`; losing a race is fine."""
        try:
            self.ledger.reclaim(
                job_id,
                dead_owner=dead_owner,
                actor=self.identity,
                reason=f"resumed after runner {dead_owner} died (it queued the job but never "
                "started it, so nothing of it ran)",
            )
        except IllegalTransition as exc:  # another successor re-claimed it first
            log.info("job %s not resumed here: %s", job_id, exc)
            return
        with self._resumed_lock:
            self._resumed.append(job_id)

    def _take_resumed(self, slots: int) -> list[str]:
        """Up to `slots` of the jobs `recover` re-claimed, in the order it found them."""
        slots = max(slots, 0)
        with self._resumed_lock:
            taken, self._resumed = self._resumed[:slots], self._resumed[slots:]
        return taken

    def _claimed_by(self, view: JobView) -> str:
        """Who queued a Queued job that has no execution under way ("" if not that case)."""
        if view.state is not JobState.QUEUED or any(e.state in ACTIVE for e in view.executions):
            return ""
        return view.queued_by

    def _fail_orphan(self, job_id: str, execution_id: str | None, what: str) -> list[str]:
        try:
            execution_id = execution_id or self._create(job_id, "none")
            self._fail(
                job_id,
                execution_id,
                f"{what} Submit the job again (with force) to run it once more.",
            )
        except IllegalTransition:  # another runner recovered it first
            return []
        return [execution_id]

    # --- the worker loop -------------------------------------------------------------------

    def serve(self, stop: threading.Event, concurrency: int | None = None) -> None:
        """Run Pending jobs (and those `recover` re-claimed) until `stop` is set, at most
        `concurrency` at a time.

        Recovery runs at the start and then every `recover_seconds`: a runner may die while
        this one keeps serving, and what it left would otherwise wait for the next restart.
        On stop, running executions are cut short and failed with a sentence saying the
        runner shut down; they are not left Running for the next start to clean up.
        """
        limit = concurrency or self.settings.executor.concurrency
        active: set[Future[JobView]] = set()
        wake = threading.Event()
        next_recovery = self.clock.monotonic()
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="klippfisk-run") as pool:
            while not stop.is_set():
                if self.clock.monotonic() >= next_recovery:
                    self._recover_now()
                    next_recovery = self.clock.monotonic() + self.settings.executor.recover_seconds
                active = {f for f in active if not f.done()}
                resumed = self._take_resumed(limit - len(active))
                for job_id in [*resumed, *self._claim(limit - len(active) - len(resumed))]:
                    future = pool.submit(self._run_claimed, job_id, stop)
                    future.add_done_callback(lambda _f: wake.set())
                    active.add(future)
                self.clock.wait(wake, self.settings.executor.poll_seconds)
                wake.clear()

    def start(self) -> None:
        """Run `serve` on a background thread (for `klippfisk serve` and the bot)."""
        self._shutdown = threading.Event()
        self._worker = threading.Thread(
            target=self.serve, args=(self._shutdown,), name="klippfisk-runner", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        """Stop the background worker; running executions are cut short and failed."""
        self._shutdown.set()
        self._worker.join()

    def _claim(self, slots: int) -> list[str]:
        """Queue up to `slots` Pending jobs for this runner (another runner may win a race),
        and time out those that waited longer than their QueueTimeout or TotalTimeout, even
        when no slot is free: that is when waiting happens."""
        claimed: list[str] = []
        now = self.clock.utc_now()
        for view in self._oldest_pending(max(slots * 4, QUEUE_SCAN)):
            overdue = self._overdue(view, now)
            try:
                if overdue is not None:
                    self._time_out(view.id, *overdue)
                elif len(claimed) < slots:
                    self.ledger.queue(view.id, reason="Queued for a worker", actor=self.identity)
                    claimed.append(view.id)
            except LedgerError:
                continue
        return claimed

    def _oldest_pending(self, wanted: int) -> list[JobView]:
        """The `wanted` oldest Pending jobs. The ledger lists Queued jobs with them, oldest
        first, so claims held at the head (by busy or dead runners) must not hide the Pending
        jobs behind them: the scan widens until it has enough or has seen every waiting job."""
        scan = wanted
        while True:
            views = self.ledger.pending(limit=scan)
            pending = [v for v in views if v.state is JobState.PENDING]
            if len(pending) >= wanted or len(views) < scan:
                return pending[:wanted]
            scan *= 2


def _task_timeout(view: JobView, field: str) -> float:
    """One of the job's Timeouts in seconds (0: none), from its first task as Bacalhau
    reads it."""
    task = (view.job.get("Tasks") or [{}])[0]
    value = (task.get("Timeouts") or {}).get(field) or 0
    return float(value) if isinstance(value, int | float) else 0.0


def _owner_of(node: str, notes: list[str]) -> str:
    for note in notes:
        if note.startswith(OWNER_NOTE):
            return note[len(OWNER_NOTE) :]
    return node


def _shutdown_message(shutdown: threading.Event) -> str:
    if shutdown.is_set():
        return (
            "the runner shut down while this execution was running, so it was stopped; "
            "submit the job again (with force) to run it once more"
        )
    return "the execution was cancelled"


class _StopWatcher(threading.Thread):
    """Sets `cancel` when the job is stopped or failed in the ledger, the runner shuts down,
    or the job's `deadline` (its TotalTimeout) passes, after calling `on_deadline`.

    It polls (the stop may come from another process) and is joined when the execution
    ends, so it never outlives the ledger it reads.
    """

    def __init__(
        self,
        ledger: Ledger,
        job_id: str,
        cancel: threading.Event,
        shutdown: threading.Event,
        poll_seconds: float,
        clock: Clock,
        *,
        deadline: datetime | None = None,
        on_deadline: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="klippfisk-stop-watch", daemon=True)
        self.ledger, self.job_id, self.cancel, self.shutdown = ledger, job_id, cancel, shutdown
        self.poll_seconds, self.deadline, self.on_deadline = poll_seconds, deadline, on_deadline
        self.clock = clock
        self.done = threading.Event()

    def run(self) -> None:
        while not self.clock.wait(self.done, self._pause()):
            if self._past_deadline():
                self.on_deadline()
                self.cancel.set()
                return
            if self.shutdown.is_set() or self._ended_elsewhere():
                self.cancel.set()
                return

    def _pause(self) -> float:
        """The poll interval, cut short to wake at the deadline."""
        if self.deadline is None:
            return self.poll_seconds
        left = (self.deadline - self.clock.utc_now()).total_seconds()
        return min(self.poll_seconds, max(left, 0.0))

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.clock.utc_now() >= self.deadline

    def _ended_elsewhere(self) -> bool:
        try:
            state = self.ledger.get(self.job_id).state
        except LedgerError:
            return False
        return state in (JobState.STOPPED, JobState.FAILED)

    def finish(self) -> None:
        self.done.set()
        self.join()
