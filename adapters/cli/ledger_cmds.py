"""`klippfisk ledger verify`: recompute every job's hash chain and name any job altered.

Exit codes: 0 every chain is intact, 1 at least one job's history was altered, 2 the ledger
could not be opened.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from klippfisk.adapters.cli import EXIT_BAD, EXIT_OK
from klippfisk.adapters.cli.job_cmds import guarded
from klippfisk.adapters.cli.output import FORMATS, emit, table

if TYPE_CHECKING:
    from klippfisk.engine import Ledger

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `ledger` command group."""
    group = subparsers.add_parser("ledger", help="audit the job ledger")
    commands = group.add_subparsers(dest="ledger_command", metavar="COMMAND")
    commands.required = True
    verify = commands.add_parser("verify", help="check that no job's history was altered")
    verify.add_argument("ref", nargs="?", metavar="JOB", help="only this job (default: all)")
    verify.add_argument("--output", "-o", choices=FORMATS, default="table")
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    def action(ledger: Ledger) -> int:
        report = ledger.verify(args.ref)
        if args.output != "table":
            emit(
                {
                    "Ok": report.ok,
                    "JobsChecked": report.jobs_checked,
                    "EventsChecked": report.events_checked,
                    "Broken": [
                        {"JobID": b.job_id, "SeqNum": b.seq_num, "Problem": b.problem}
                        for b in report.broken
                    ],
                },
                args.output,
            )
        elif report.ok:
            print(
                f"Verified {report.jobs_checked} jobs and {report.events_checked} events: "
                "every history is intact."
            )
        else:
            table(
                [(b.job_id, b.seq_num, b.problem) for b in report.broken],
                ("JOB ID", "SEQ", "PROBLEM"),
            )
            print(
                f"\n{len(report.broken)} of {report.jobs_checked} jobs have an altered history. "
                "Restore the store from a backup, or keep it as evidence."
            )
        return EXIT_OK if report.ok else EXIT_BAD

    return guarded(args, action)
