"""`klippfisk serve`: the Bacalhau API v1 compatible server, with the runner in-process.

Binds 127.0.0.1:1234 (Bacalhau's port) unless told otherwise. The socket is bound before
the server starts so `--port 0` works and the line on stderr names the real address; tools
and tests wait for that line. Exit codes: 0 after a clean shutdown, 2 when the settings or
the address make serving impossible.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from klippfisk.adapters.cli import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from klippfisk.adapters.http import Background
    from klippfisk.adapters.settings import AppSettings
    from klippfisk.engine import Ledger

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `serve` command."""
    serve = subparsers.add_parser(
        "serve", help="serve the Bacalhau-compatible HTTP API (and run jobs in-process)"
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 1234; 0 picks one)")
    serve.add_argument(
        "--anonymous",
        action="store_true",
        help="accept requests without an API key (loopback addresses only)",
    )
    serve.add_argument(
        "--no-runner", action="store_true", help="only record jobs; do not run them here"
    )
    serve.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )
    serve.set_defaults(func=_serve)


def _settings(args: argparse.Namespace) -> AppSettings:
    """The command's settings (KLIPPFISK_*) with the command line on top; a bad variable is
    the CLI's InvalidSettings, named without quoting its value (it can be an API key)."""
    settings: AppSettings = args.settings.get()
    server = settings.server.model_copy(
        update={
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "anonymous": args.anonymous or None,
                "runner": False if args.no_runner else None,
            }.items()
            if v is not None
        }
    )
    return settings.model_copy(update={"server": server})


def _runner(settings: AppSettings, ledger: Ledger) -> Background | None:
    """The embedded runner, when this server runs jobs itself."""
    from klippfisk.adapters.http.server import RunnerThread
    from klippfisk.engine.executors.registry import default_registry
    from klippfisk.engine.runner import Runner

    if not settings.server.runner:
        return None
    return RunnerThread(Runner(ledger, default_registry(settings), settings))


def _serve(args: argparse.Namespace) -> int:
    # FastAPI and uvicorn take a second or two to import: only `klippfisk serve` pays for them.
    from klippfisk.adapters.http import ServeError, create_app
    from klippfisk.adapters.http.server import bind, run
    from klippfisk.engine import Ledger

    settings = _settings(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    ledger = Ledger.open(settings)
    try:
        app = create_app(settings, ledger, _runner(settings, ledger))
        sock = bind(settings.server.host, settings.server.port)
    except ServeError as exc:
        print(f"klippfisk serve: {exc}", file=sys.stderr)
        ledger.close()
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"klippfisk serve: cannot listen on {settings.server.host}:{settings.server.port}: "
            f"{exc.strerror}. Pick another --port, or stop what is using it.",
            file=sys.stderr,
        )
        ledger.close()
        return EXIT_USAGE
    host, port = sock.getsockname()[:2]
    print(f"klippfisk serve: listening on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        run(app, sock, args.log_level)
    finally:
        sock.close()
        ledger.close()
    return EXIT_OK
