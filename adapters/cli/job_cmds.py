"""`klippfisk job list|describe|history|executions|stop`: read and stop jobs in the ledger.

Tables show the columns Bacalhau's CLI shows; `--output json|yaml` gives Bacalhau's API
shapes instead. Jobs are named by full id, short id (`j-1234abcd`, any unique prefix) or
name. Exit codes: 0 done, 1 the job is unknown or refused the command, 2 a bad option value
or a ledger that could not be opened (see `klippfisk.adapters.cli` for the whole contract).

Other modules add verbs to the same `job` group through `job_group(subparsers)`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from klippfisk.adapters.cli import EXIT_BAD, EXIT_OK, EXIT_USAGE
from klippfisk.adapters.cli.late_choices import late_choices
from klippfisk.adapters.cli.output import FORMATS, emit, table

if TYPE_CHECKING:
    from klippfisk.adapters.settings import AppSettings
    from klippfisk.engine import JobView, Ledger

__all__ = ["guarded", "job_group", "open_ledger", "positive", "register"]

_GROUPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def job_group(subparsers: Any) -> Any:
    """The `job` group's own sub-parsers, created on the first call and shared afterwards."""
    if subparsers in _GROUPS:
        return _GROUPS[subparsers]
    group = subparsers.add_parser("job", help="run, list, describe and stop jobs")
    commands = group.add_subparsers(dest="job_command", metavar="COMMAND")
    commands.required = True
    _GROUPS[subparsers] = commands
    return commands


def register(subparsers: Any) -> None:
    """Add the ledger's verbs to the `job` group."""
    commands = job_group(subparsers)

    listing = commands.add_parser("list", help="list jobs, newest first")
    late_choices(
        listing.add_argument(
            "--state", action="append", help="only jobs in this state (repeatable)"
        ),
        _job_states,
    )
    listing.add_argument("--name", help="only jobs with this name")
    _namespace_option(listing, "only jobs in this namespace")
    listing.add_argument(
        "--limit", type=positive(int), default=10, help="jobs per page (default 10)"
    )
    listing.add_argument("--next-token", help="the token a previous page printed")
    _output_option(listing)
    listing.set_defaults(func=_list)

    for name, func, summary in (
        ("describe", _describe, "a job: summary, history, executions, output"),
        ("executions", _executions, "a job's executions"),
    ):
        verb = commands.add_parser(name, help=summary)
        _ref_argument(verb)
        _output_option(verb)
        verb.set_defaults(func=func)

    history = commands.add_parser("history", help="a job's events in order")
    _ref_argument(history)
    late_choices(history.add_argument("--event-type", default="all"), _event_types)
    history.add_argument("--execution-id", help="only this execution's events")
    _output_option(history)
    history.set_defaults(func=_history)

    stop = commands.add_parser("stop", help="stop a job and cancel its executions")
    _ref_argument(stop)
    stop.add_argument("--reason", default="Stopped by user", help="recorded in the history")
    stop.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    stop.set_defaults(func=_stop)


def _job_states() -> list[str]:
    from klippfisk.engine import JobState

    return [str(state) for state in JobState]


def _event_types() -> tuple[str, ...]:
    from klippfisk.engine.history import EVENT_TYPES

    return EVENT_TYPES


def _ref_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="JOB", help="job id, short id (j-1234abcd) or name")
    _namespace_option(parser, "find the job in this namespace (a name is unique only in one)")


def _namespace_option(parser: argparse.ArgumentParser, summary: str) -> None:
    parser.add_argument("--namespace", "-n", help=summary)


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=FORMATS, default="table")


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` above zero, so a bad value is a usage error (exit 2)
    with the option named, not a refusal from deeper down."""

    def parse(text: str) -> Any:
        with suppress(ValueError):
            if (value := kind(text)) > 0:  # NaN is not
                return value
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {text!r}")

    parse.__name__ = f"positive {kind.__name__}"
    return parse


@contextmanager
def open_ledger(settings: AppSettings) -> Iterator[Ledger]:
    """The ledger the settings name, closed afterwards; LedgerError if it cannot be opened."""
    from klippfisk.engine import Ledger

    ledger = Ledger.open(settings)
    try:
        yield ledger
    finally:
        ledger.close()


def guarded(args: argparse.Namespace, action: Callable[[Ledger], int]) -> int:
    """Run `action` on the ledger `args.settings` name, turning the ledger's errors into
    messages and exit codes: EXIT_USAGE when the arguments alone are wrong or the store is
    unusable, EXIT_BAD when the ledger refuses the request (unknown job, illegal command,
    altered history)."""
    from klippfisk.engine import BadQuery, LedgerError, StoreUnavailable

    try:
        with open_ledger(args.settings.get()) as ledger:
            return action(ledger)
    except LedgerError as exc:
        print(f"klippfisk: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, BadQuery | StoreUnavailable) else EXIT_BAD


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _list(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        page = ledger.list_jobs(
            state=args.state,
            name=args.name,
            namespace=args.namespace,
            limit=args.limit,
            next_token=args.next_token,
        )
        if args.output != "table":
            emit(
                {"Items": [j.to_dict() for j in page.items], "NextToken": page.next_token or ""},
                args.output,
            )
            return EXIT_OK
        rows = [
            (_when(j.created_at), j.short_id, j.name, j.engine, j.type, j.state) for j in page.items
        ]
        table(rows, ("CREATED", "ID", "NAME", "ENGINE", "TYPE", "STATE"))
        if page.next_token:
            print(f"\nMore jobs: klippfisk job list --next-token {page.next_token}")
        return EXIT_OK

    return guarded(args, action)


def _describe(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        job = ledger.get(args.ref, namespace=args.namespace)
        history = ledger.history(job.id)
        if args.output != "table":
            emit(_describe_data(job, history), args.output)
            return EXIT_OK
        _print_description(job, history)
        return EXIT_OK

    return guarded(args, action)


def _describe_data(job: JobView, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Job": job.to_dict(),
        "Executions": [e.to_dict() for e in job.executions],
        "History": history,
        "JobCID": job.job_cid,
        "TaskCIDs": job.task_cids,
        "Source": {"Adapter": job.source.adapter, "Actor": job.source.actor, "Ref": job.source.ref},
    }


def _print_description(job: JobView, history: list[dict[str, Any]]) -> None:
    header = [
        ("ID", job.id),
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("Type", job.type),
        ("State", job.state),
        ("Message", job.message),
        ("Count", job.job.get("Count", 1)),
        ("Version", job.version),
        ("Created", _when(job.created_at)),
        ("Modified", _when(job.modified_at)),
        ("Job CID", job.job_cid),
        ("Source", f"{job.source.adapter} {job.source.actor} {job.source.ref}".strip()),
    ]
    width = max(len(k) for k, _ in header)
    for key, value in header:
        print(f"{key.ljust(width)} = {value}")
    counts = Counter(e.state_name for e in job.executions)
    print("\nSummary")
    for state, count in sorted(counts.items()):
        print(f"  {state} : {count}")
    print("\nJob History")
    table(_history_rows(h for h in history if h["Type"] == "JobLevel"), ("TIME", "TOPIC", "EVENT"))
    print("\nExecutions")
    table(_execution_rows(job), _EXECUTION_COLUMNS)
    print("\nExecution History")
    rows = [
        (_short_time(h["Time"]), h["ExecutionID"][:10], h["Event"]["Topic"], h["Event"]["Message"])
        for h in history
        if h["Type"] == "ExecutionLevel"
    ]
    table(rows, ("TIME", "EXEC. ID", "TOPIC", "EVENT"))
    for execution in job.executions:
        if execution.stdout or execution.stderr:
            print(f"\nStandard Output ({execution.id[:10]})\n{execution.stdout}", end="")
            if execution.stderr:
                print(f"\nStandard Error ({execution.id[:10]})\n{execution.stderr}", end="")
    print()


def _short_time(rfc3339: str) -> str:
    """The clock part of an RFC 3339 time, to the second, as Bacalhau's tables show it."""
    return rfc3339[11:19]


def _history_rows(entries: Any) -> list[tuple[str, ...]]:
    return [(_short_time(h["Time"]), h["Event"]["Topic"], h["Event"]["Message"]) for h in entries]


_EXECUTION_COLUMNS = ("CREATED", "MODIFIED", "ID", "NODE ID", "EXECUTOR", "STATE", "EXIT CODE")


def _execution_rows(job: JobView) -> list[tuple[Any, ...]]:
    return [
        (
            _when(e.created_at),
            _when(e.modified_at),
            e.id[:10],
            e.node,
            e.executor,
            e.state_name,
            "" if e.exit_code is None else e.exit_code,
        )
        for e in job.executions
    ]


def _history(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        entries = ledger.history(
            args.ref,
            event_type=args.event_type,
            execution_id=args.execution_id,
            namespace=args.namespace,
        )
        if args.output != "table":
            emit({"Items": entries, "NextToken": ""}, args.output)
            return EXIT_OK
        rows = [
            (
                _short_time(h["Time"]),
                "Job" if h["Type"] == "JobLevel" else "Execution",
                h["JobVersion"],
                h["ExecutionID"][:10],
                h["Event"]["Topic"],
                h["Event"]["Message"],
            )
            for h in entries
        ]
        table(rows, ("TIME", "LEVEL", "VERSION", "EXEC. ID", "TOPIC", "EVENT"))
        return EXIT_OK

    return guarded(args, action)


def _executions(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        job = ledger.get(args.ref, namespace=args.namespace)
        if args.output != "table":
            items = [e.to_dict() for e in job.executions]
            emit({"Items": items, "NextToken": ""}, args.output)
            return EXIT_OK
        table(_execution_rows(job), _EXECUTION_COLUMNS)
        return EXIT_OK

    return guarded(args, action)


def _stop(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        job = ledger.get(args.ref, namespace=args.namespace)
        ledger.stop(job.id, reason=args.reason, actor=getpass.getuser())
        if not args.quiet:
            print(f"Job {job.id} ({job.name}) stopped.")
        return EXIT_OK

    return guarded(args, action)
