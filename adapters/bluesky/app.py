"""Wiring the bot together: state, session, ledger, runner, loop (the composition root).

The bot runs jobs in its own process: a Runner works the ledger in the background while the
bot answers mentions, so `klippfisk bot` is all a deployment needs. On stop the loop ends
first (unfinished mentions stay in the state file for the next start), then the runner.
"""

from __future__ import annotations

import logging
import threading

from klippfisk.adapters.bluesky.bot import Bot, BotAccount
from klippfisk.adapters.bluesky.session import connect
from klippfisk.adapters.bluesky.state import BotState
from klippfisk.adapters.bluesky.throttle import ServerThrottle
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner

__all__ = ["run_bot"]

log = logging.getLogger(__name__)


def run_bot(settings: AppSettings, stop: threading.Event) -> None:
    """Answer mentions until `stop` is set. Raises LoginRefused when it cannot log in."""
    state = BotState(settings.bot.state_path or settings.data_dir / "bot" / "state.db")
    try:
        throttle = ServerThrottle()
        client = connect(settings.bot, state, throttle)
        did = throttle.call(client.com.atproto.server.get_session).did
        ledger = Ledger.open(settings)
        runner = Runner(ledger, default_registry(settings), settings)
        runner.start()
        bot = Bot(BotAccount(client, did, throttle), ledger, state, settings.bot, stop)
        log.info("answering mentions of %s every %g s", did, settings.bot.poll_seconds)
        try:
            bot.run()
        finally:
            runner.stop()
            ledger.close()
    finally:
        state.close()
