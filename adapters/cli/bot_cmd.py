"""`klippfisk bot`: answer Bluesky mentions (job run / validate / describe, help).

Credentials come from the settings (KLIPPFISK_BOT__HANDLE, KLIPPFISK_BOT__APP_PASSWORD,
KLIPPFISK_BOT__SERVICE). Runs until interrupted (Ctrl-C or SIGTERM), then stops cleanly:
exit 0. Exit 2 when it cannot start (a bad setting, no login, no ledger), with the reason.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from klippfisk.adapters.cli import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from klippfisk.adapters.settings import AppSettings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `bot` command."""
    parser = subparsers.add_parser("bot", help="answer job requests posted on Bluesky")
    parser.add_argument("--quiet", "-q", action="store_true", help="log warnings only")
    parser.set_defaults(func=_bot)


def _bot(args: Any) -> int:
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve(args.settings.get(), stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(settings: AppSettings, stop: threading.Event) -> int:
    # atproto takes seconds to import: only `klippfisk bot` should pay for it.
    from klippfisk.adapters.bluesky import LoginRefused, run_bot
    from klippfisk.engine import LedgerError

    try:
        run_bot(settings, stop)
    except (LoginRefused, LedgerError) as exc:
        print(f"klippfisk bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
