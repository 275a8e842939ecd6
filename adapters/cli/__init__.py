"""`klippfisk`: the command line, a thin face over `spec` and `engine`.

Each command group lives in its own module with a `register(subparsers)` function; this
module only wires them and owns the exit-code contract: 0 success, 1 the thing asked about
is bad (invalid spec, failed job), 2 usage or I/O error, 130 interrupted. No traceback ever
reaches the user; set KLIPPFISK_DEBUG=1 to see one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["EXIT_BAD", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_BAD = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Command-group modules under adapters.cli, each exposing register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "spec_cmds",
    "serve_cmd",
    "bot_cmd",
    "job_cmds",
    "run_cmds",
    "ledger_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klippfisk",
        description="Compile, record and run Bacalhau-style compute jobs.",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"adapters.cli.{name}").register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("KLIPPFISK_DEBUG"):
            raise
        print(
            f"klippfisk: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug; rerun with KLIPPFISK_DEBUG=1 for details and report it.",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
