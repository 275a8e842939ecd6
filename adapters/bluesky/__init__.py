"""The Bluesky bot: `@bot job run <url>` and friends, answered in the thread.

The contract for the CLI and tests: `run_bot(settings, stop)` runs the bot until the event is
set; `LoginRefused` says why it could not log in. The parts (command parsing, fetch guard,
the policy for strangers' jobs, the job watcher, reply composition, limits, durable state)
are importable from their modules for tests.
"""

from klippfisk.adapters.bluesky.app import run_bot
from klippfisk.adapters.bluesky.session import LoginRefused

__all__ = ["LoginRefused", "run_bot"]
