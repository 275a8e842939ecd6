"""`klippfisk job run|logs|get`: run a job file here and now, read its output, fetch results.

`job run` compiles the file (or `--example NAME`, a job shipped in `klippfisk.examples`, so
that the README's examples run after any install), records it in the ledger and, unless
`--wait=false`, runs it in this process while printing its history as it happens, then prints
what the task wrote and the commands to look further. The runner hands each task to the
executor `--executor` (or KLIPPFISK_EXECUTOR__DEFAULT) picks: the embedded one, or a Bacalhau
cluster (BACALHAU_API_*). Unlike Bacalhau (which exits 0 either way) the exit code says how
the job went: 0 completed with exit code 0, 1 failed, stopped, timed out or non-zero exit,
2 usage or I/O, 130 interrupted (the job is stopped first).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.resources
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from klippfisk.adapters.cli import EXIT_BAD, EXIT_OK, EXIT_USAGE
from klippfisk.adapters.cli.job_cmds import guarded, job_group, positive
from klippfisk.adapters.cli.late_choices import late_choices
from klippfisk.adapters.cli.output import emit
from klippfisk.adapters.cli.spec_cmds import UsageError, compile_options, load_compiled
from klippfisk.spec import CompiledSpec, SpecError

if TYPE_CHECKING:
    from klippfisk.adapters.settings import AppSettings
    from klippfisk.engine import ExecutionView, JobView, Ledger
    from klippfisk.engine.result_files import CopyReport
    from klippfisk.engine.results import OutputFollower
    from klippfisk.engine.runner import Runner

__all__ = ["add_commands", "register"]

POLL_SECONDS = 0.1
# How long Ctrl+C waits for the job's task to be killed (a container removed) before the
# CLI exits anyway; a second Ctrl+C exits at once.
STOP_WAIT_SECONDS = 30.0


def register(subparsers: Any) -> None:
    """Add `run`, `logs` and `get` to the shared `job` group."""
    add_commands(job_group(subparsers))


def add_commands(commands: Any) -> None:
    """Add `run`, `logs` and `get` to an existing `job` sub-parser."""
    run = commands.add_parser("run", help="compile, submit and run a job file; print its output")
    job = run.add_mutually_exclusive_group(required=True)
    job.add_argument("file", nargs="?", metavar="FILE", help="path, URL, or - for stdin")
    late_choices(
        job.add_argument(
            "--example", metavar="NAME", help="run an example shipped with klippfisk: %(choices)s"
        ),
        _example_names,
    )
    compile_options(run, formats=("text", "json", "yaml"), default="text")
    run.add_argument(
        "--wait",
        nargs="?",
        const="true",
        default="true",
        type=_boolean,
        metavar="BOOL",
        help="run the job here and wait for it (default true); false only submits it",
    )
    run.add_argument("--id-only", action="store_true", help="print only the job id")
    run.add_argument("--follow", "-f", action="store_true", help="stream the task's output")
    run.add_argument(
        "--dry-run", action="store_true", help="print the compiled job; submit nothing"
    )
    run.add_argument(
        "--timeout", type=positive(float), metavar="SECONDS", help="stop the job after this"
    )
    late_choices(
        run.add_argument(
            "--executor",
            help="where the job runs: local (this machine) or bacalhau (the cluster named by "
            "BACALHAU_API_HOST/PORT/KEY); default KLIPPFISK_EXECUTOR__DEFAULT, else local",
        ),
        _executor_choices,
    )
    run.add_argument("--force", action="store_true", help="run again even if the spec is unchanged")
    run.add_argument(
        "--cache",
        action="store_true",
        help="reuse the results of an identical task (same task CID) that completed before",
    )
    run.set_defaults(func=_run)

    logs = commands.add_parser("logs", help="print a job's stdout and stderr")
    logs.add_argument("ref", metavar="JOB", help="job id, short id or name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    logs.set_defaults(func=_logs)

    get = commands.add_parser("get", help="download a job's results into ./job-<id>/")
    get.add_argument("ref", metavar="JOB", help="job id, short id or name")
    get.add_argument("--output-dir", type=Path, help="where to put them (default ./job-<id>)")
    get.set_defaults(func=_get)


def _executor_choices() -> tuple[str, ...]:
    from klippfisk.engine.executors.registry import EXECUTOR_CHOICES

    return EXECUTOR_CHOICES


def _example_names() -> list[str]:
    """The example jobs shipped in `klippfisk.examples`, by name (the file name without .yaml)."""
    files = importlib.resources.files("klippfisk.examples").iterdir()
    return sorted(file.name.removesuffix(".yaml") for file in files if file.name.endswith(".yaml"))


def _job_ref(args: argparse.Namespace) -> str:
    """The FILE to compile: the one given, or the shipped example's path (an installed
    package is a folder on disk, so the file is read as any other)."""
    if args.example is None:
        return str(args.file)
    return str(importlib.resources.files("klippfisk.examples") / f"{args.example}.yaml")


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


# --- job run ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    ref = _job_ref(args)
    try:
        compiled = load_compiled(ref, args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except SpecError as exc:
        return _fail(exc.summary(), EXIT_BAD)
    if args.dry_run:
        emit(compiled.job, "json" if args.output == "json" else "yaml")
        return EXIT_OK
    return guarded(args, lambda ledger: _submit_and_run(ledger, compiled, ref, args))


def _submit_and_run(
    ledger: Ledger, compiled: CompiledSpec, ref: str, args: argparse.Namespace
) -> int:
    from klippfisk.engine import NoChanges, Source
    from klippfisk.engine.executors.registry import default_registry
    from klippfisk.engine.runner import Runner

    source = Source(adapter="cli", actor=getpass.getuser(), ref=ref, operator=True)
    try:
        submitted = ledger.submit(compiled, source=source, force=args.force, executor=args.executor)
    except NoChanges as exc:
        return _fail(f"{exc} (use --force)", EXIT_BAD)
    job_id = submitted.job_id
    quiet = args.id_only or args.output != "text"
    if args.id_only:
        print(job_id)
    elif not quiet:
        print(f"Job successfully submitted. Job ID: {job_id}", file=sys.stderr)
    if not args.wait:
        if not quiet:
            print(
                "Not waiting: a worker (`klippfisk serve`) will run it. Check on it with:\n"
                f"\tklippfisk job describe {job_id}",
                file=sys.stderr,
            )
        return EXIT_OK
    settings = args.settings.get()
    executors = default_registry(settings, args.executor)
    try:
        runner = Runner(ledger, executors, settings, use_cache=args.cache, on_progress=_say(quiet))
        view = _run_and_watch(runner, job_id, args, quiet)
    finally:
        executors.close()
    return _report(view, args, settings)


def _say(quiet: bool) -> Callable[[str], None] | None:
    """How an executor's word on slow work before the start (compiling python.wasm the first
    time) reaches the terminal: one whole line to stderr, from the runner's thread."""
    if quiet:
        return None

    def say(message: str) -> None:
        sys.stderr.write(f"klippfisk: {message}\n")
        sys.stderr.flush()

    return say


def _run_and_watch(runner: Runner, job_id: str, args: argparse.Namespace, quiet: bool) -> JobView:
    """Run the job on a thread; print its history (and output, with --follow) meanwhile."""
    ledger = runner.ledger
    outcome: list[JobView] = []
    errors: list[BaseException] = []
    cancel = threading.Event()
    done = threading.Event()  # Thread.join/is_alive are not to be trusted after Ctrl+C

    def work() -> None:
        try:
            outcome.append(runner.run_job(job_id, cancel))
        except BaseException as exc:  # handed to the main thread, which reports it
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="klippfisk-job-run", daemon=True)
    progress = _Progress(ledger, job_id, sys.stderr if not quiet else None)
    follower = _LiveOutput(ledger, job_id, runner.settings) if args.follow and not quiet else None
    deadline = time.monotonic() + args.timeout if args.timeout else None
    if not quiet:
        print("Running it here (Ctrl+C stops the job):\n", file=sys.stderr)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            progress.show()
            if follower:
                follower.show()
            if deadline is not None and time.monotonic() > deadline:
                _stop(ledger, job_id, f"klippfisk job run --timeout {args.timeout:g}s passed")
                deadline = None
    except KeyboardInterrupt:
        _stop(ledger, job_id, "interrupted (Ctrl+C) in klippfisk job run")
        cancel.set()
        # Wait for the run to kill its task (and remove its container): exiting now would
        # leave them running. Not `thread.join()`: after a KeyboardInterrupt it returns at
        # once on Python 3.11/3.12 (cpython issue 90882).
        done.wait(STOP_WAIT_SECONDS)
        raise
    progress.show()
    if errors:
        raise errors[0]
    if follower:
        follower.finish(outcome[0])
    return outcome[0]


def _stop(ledger: Ledger, job_id: str, reason: str) -> None:
    from klippfisk.engine import LedgerError

    with contextlib.suppress(LedgerError):  # it may have ended meanwhile
        ledger.stop(job_id, reason=reason, actor=getpass.getuser())


def _report(view: JobView, args: argparse.Namespace, settings: AppSettings) -> int:
    from klippfisk.engine import JobState

    execution = _latest(view)
    if args.output in ("json", "yaml"):
        emit(
            {
                "Job": view.to_dict(),
                "Executions": [e.to_dict() for e in view.executions],
            },
            args.output,
        )
    elif not args.id_only:
        if not args.follow and execution is not None:
            _print_output(settings, execution)
        _say_if_on_host(execution)
        _hints(view, execution)
    failed = view.state is not JobState.COMPLETED or (execution and execution.exit_code)
    return EXIT_BAD if failed else EXIT_OK


def _say_if_on_host(execution: ExecutionView | None) -> None:
    """One line when a docker task ran without its image because no Docker daemon answered
    (as a host process, or a python one in python.wasm, named with its version): a user must
    not have to dig out of an event to learn what really ran."""
    from klippfisk.engine.executors.base import HOST_FALLBACK_NOTE, PYTHON_WASM_NOTE

    for note in execution.notes if execution is not None else []:
        if note.startswith(HOST_FALLBACK_NOTE):
            image = note.removeprefix(HOST_FALLBACK_NOTE).split(";")[0].strip()
            ran = f"ran on this host's tools, image not used {image}"
        elif note.startswith(PYTHON_WASM_NOTE):
            ran = note.split(";")[0]
        else:
            continue
        print(f"\nklippfisk: no Docker daemon: {ran}", file=sys.stderr)
        return


def _hints(view: JobView, execution: ExecutionView | None) -> None:
    from klippfisk.engine import JobState

    err = sys.stderr
    print(f"\nJob {view.short_id} {view.state}", end="", file=err)
    if execution is not None and execution.exit_code is not None:
        print(f" (exit code {execution.exit_code})", end="", file=err)
    if view.state is not JobState.COMPLETED and view.message:
        print(f": {view.message}", end="", file=err)
    print(file=err)
    print(
        "\nTo get more details about the run, execute:\n"
        f"\tklippfisk job describe {view.id}\n"
        "\nTo get more details about the run executions, execute:\n"
        f"\tklippfisk job executions {view.id}\n"
        "\nTo download the results, execute:\n"
        f"\tklippfisk job get {view.id}",
        file=err,
    )


class _Progress:
    """Prints the job's history as Bacalhau does while it waits: time, execution, topic, event."""

    ROW = "{:<13} {:<11} {:<15} {}"

    def __init__(self, ledger: Ledger, job_id: str, out: TextIO | None) -> None:
        self.ledger, self.job_id, self.out = ledger, job_id, out
        self.seen = 0

    def show(self) -> None:
        if self.out is None:
            return
        entries = self.ledger.history(self.job_id, since=self.seen)
        if entries and self.seen == 0:
            print(self.ROW.format("TIME", "EXEC. ID", "TOPIC", "EVENT"), file=self.out)
        for entry in entries:
            event = entry["Event"]
            execution = (entry.get("ExecutionID") or "")[:10]
            line = self.ROW.format(
                entry["Time"][11:23], execution, event["Topic"], event["Message"]
            )
            print(line, file=self.out)
            self.seen = entry["SeqNum"]
        self.out.flush()


# --- output and results ----------------------------------------------------------------------


def _latest(view: JobView) -> ExecutionView | None:
    return view.executions[-1] if view.executions else None


def _results_path(settings: AppSettings, execution: ExecutionView) -> Path | None:
    """The directory holding an execution's full results, when it ran on this machine: the
    runner writes them into the results folder the settings name, whatever URL it published
    (as the HTTP logs read them). An execution that ran on a Bacalhau cluster has none here,
    nor has one completed from the result cache (`--cache`): only its ledger record."""
    from klippfisk.engine.results import execution_results_dir

    path = execution_results_dir(settings, execution.job_id, execution.id)
    return path if path.is_dir() else None


def _print_output(settings: AppSettings, execution: ExecutionView) -> None:
    """Full stdout/stderr from the results dir; the ledger's 2 KiB head when there is none."""
    from klippfisk.engine.results import OutputFollower

    path = _results_path(settings, execution)
    for name, head, out in (
        ("stdout", execution.stdout, sys.stdout),
        ("stderr", execution.stderr, sys.stderr),
    ):
        full = path / name if path else None
        if full and full.exists() and not full.is_symlink():  # a link is never followed
            _write_grown(OutputFollower(full), out, final=True)
        else:
            out.write(head)
        out.flush()


def _write_grown(follower: OutputFollower, out: TextIO, final: bool = False) -> None:
    """Write what the file grew by to `out`, a piece at a time; with `final`, the end of it."""
    for text in follower.read_grown():
        out.write(text)
    if final:
        out.write(follower.flush())


class _LiveOutput:
    """Streams the latest execution's stdout/stderr files to this process's own as they grow."""

    def __init__(self, ledger: Ledger, job_id: str, settings: AppSettings) -> None:
        self.ledger, self.job_id, self.settings = ledger, job_id, settings
        self.followers: dict[Path, OutputFollower] = {}

    def show(self) -> None:
        from klippfisk.engine.results import OutputFollower, execution_results_dir

        view = self.ledger.get(self.job_id)
        execution = _latest(view)
        if execution is None:
            return
        directory = execution_results_dir(self.settings, view.id, execution.id)
        for name in ("stdout", "stderr"):
            path = directory / name
            if path.exists():
                out = _terminal(name)
                _write_grown(self.followers.setdefault(path, OutputFollower(path)), out)
                out.flush()

    def finish(self, view: JobView) -> None:
        """Print the rest; an execution that ran elsewhere (on a Bacalhau cluster) left no
        files here to follow, so its output is printed whole once it is known."""
        self.show()
        for path, follower in self.followers.items():  # a character cut off at the very end
            _terminal(path.name).write(follower.flush())
        execution = _latest(view)
        if not self.followers and execution is not None:
            _print_output(self.settings, execution)


def _terminal(name: str) -> TextIO:
    """Where a task's `stdout` or `stderr` goes: the same stream of this process."""
    return sys.stdout if name == "stdout" else sys.stderr


def _logs(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        view = ledger.get(args.ref)
        if args.follow:
            follower = _LiveOutput(ledger, view.id, args.settings.get())
            while not view.terminal:
                follower.show()
                time.sleep(POLL_SECONDS)
                view = ledger.get(view.id)
            follower.finish(view)
            return EXIT_OK
        execution = _latest(view)
        if execution is None:
            return _fail(f"Job {view.short_id} has not run yet; it is {view.state}.", EXIT_BAD)
        _print_output(args.settings.get(), execution)
        return EXIT_OK

    return guarded(args, action)


def _get(args: argparse.Namespace) -> int:
    return guarded(
        args, lambda ledger: _download(args.settings.get(), ledger.get(args.ref), args.output_dir)
    )


def _download(settings: AppSettings, view: JobView, output_dir: Path | None) -> int:
    from klippfisk.engine.result_files import copy_results

    done = [e for e in view.executions if e.published_result]
    if not done:
        return _fail(
            f"Job {view.short_id} has no results to download ({view.state}); wait for it to "
            "complete, or check `klippfisk job describe`.",
            EXIT_BAD,
        )
    source = _results_path(settings, done[-1])
    if source is None:
        where = (done[-1].published_result or {}).get("Params", {}).get("URL", "?")
        return _fail(
            f"The results of job {view.short_id} are not on this machine ({where}); fetch "
            "them from where they were published.",
            EXIT_BAD,
        )
    target = output_dir or Path(f"job-{view.short_id}")
    try:
        if target.exists() and any(target.iterdir()):
            return _fail(
                f"{target} already exists and is not empty; remove it or pass --output-dir.",
                EXIT_USAGE,
            )
        report = copy_results(source, target, settings.results.limits())
    except OSError as exc:
        return _fail(
            f"Cannot write the results of job {view.short_id} to {target}: "
            f"{exc.strerror.lower() if exc.strerror else exc}. "
            "Pass --output-dir a new or empty directory you can write to.",
            EXIT_USAGE,
        )
    print(f"Results for job {view.short_id} have been written to...\n{target}")
    _say_what_was_left_out(report)
    return EXIT_OK


def _say_what_was_left_out(report: CopyReport) -> None:
    """Results are copied as data only: name every entry that was not, and why."""
    for skipped in report.skipped:
        print(f"klippfisk: left out {skipped}", file=sys.stderr)
    if report.stopped:
        print(
            f"klippfisk: the results hold {report.stopped}; raise KLIPPFISK_RESULTS__MAX_BYTES "
            "or KLIPPFISK_RESULTS__MAX_FILES to copy more.",
            file=sys.stderr,
        )


def _fail(message: str, code: int) -> int:
    print(f"klippfisk: {message}", file=sys.stderr)
    return code
