"""`klippfisk`: the command line, a thin face over `spec` and `engine`.

Each command group lives in its own module with a `register(subparsers)` function; this
module only wires them and owns the exit-code contract every command keeps:

- 0 success;
- 1 the thing asked about is bad (invalid spec, failed job, unknown job, altered history);
- 2 usage or I/O: a bad option value, a path that cannot be read or written, an invalid
  KLIPPFISK_* setting, a ledger that cannot be opened;
- 70 internal error: a bug in klippfisk, reported in one line (KLIPPFISK_DEBUG=1 shows the
  traceback instead);
- 130 interrupted (Ctrl+C).

No traceback ever reaches the user. The settings are read once per command, and only by a
command that needs them, so `--help` and the `spec` commands work whatever the environment
holds; commands get them from `args.settings`.

Every command module is imported, and its parser built, on every run. So a command module
imports the engine (the ledger, the runner, the server, the bot) inside the functions that
use it, and takes choices from it through `late_choices`: `--help` and the `spec` commands
never load eventsourcing or the store drivers (tests/unit/cli/test_startup.py holds this).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from klippfisk.adapters.settings import AppSettings

__all__ = [
    "EXIT_BAD",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "InvalidSettings",
    "SettingsOnDemand",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_BAD = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE in BSD's sysexits.h
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


class InvalidSettings(Exception):
    """The KLIPPFISK_* (or POSTGRES_*, BACALHAU_API_*) environment does not make valid settings."""


class SettingsOnDemand:
    """The one settings object of a command, read from the environment on first use.

    Reading lazily keeps `--help` and the commands that need no settings independent of the
    environment; caching keeps every part of one command on the same object.
    """

    def __init__(self) -> None:
        self._settings: AppSettings | None = None

    def get(self) -> AppSettings:
        """The settings; InvalidSettings, naming each bad variable, when they do not validate."""
        if self._settings is None:
            from pydantic import ValidationError

            from klippfisk.adapters.settings import AppSettings

            try:
                self._settings = AppSettings()
            except ValidationError as exc:
                problems = "; ".join(
                    f"{_variable(error['loc'])}: {error['msg']}" for error in exc.errors()
                )
                raise InvalidSettings(
                    f"invalid setting ({problems}). Fix or unset that environment variable."
                ) from None
        return self._settings

    def debug(self) -> bool:
        """Whether internal errors should show their traceback; False if the settings are bad."""
        try:
            return self.get().debug
        except InvalidSettings:
            return False


def _variable(location: tuple[int | str, ...]) -> str:
    """The environment variable behind a settings error: a section's own alias (POSTGRES_PORT)
    as it is, else KLIPPFISK_<SECTION>__<FIELD>, up to the first list index."""
    names: list[str] = []
    for part in location:
        if isinstance(part, int):
            break
        if part.isupper():
            return part
        names.append(part.upper())
    return "KLIPPFISK_" + "__".join(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klippfisk",
        description="Compile, record and run Bacalhau-style compute jobs.",
        epilog="Exit codes: 0 success, 1 the job or spec is bad, 2 usage or I/O error, "
        "70 internal error (a bug), 130 interrupted.",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"klippfisk.adapters.cli.{name}").register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = SettingsOnDemand()
    args.settings = settings
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except InvalidSettings as exc:
        print(f"klippfisk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if settings.debug():
            raise
        print(
            f"klippfisk: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug; rerun with KLIPPFISK_DEBUG=1 for details and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
