"""The bot stopped, killed and restarted: nothing dropped, nothing done twice, one login."""

from __future__ import annotations

import time

import pytest

from klippfisk.adapters.bluesky.state import BotState
from klippfisk.engine import JobState

pytestmark = [pytest.mark.localnet, pytest.mark.timeout(900)]  # first one installs


def test_a_mention_made_while_the_bot_is_stopped_is_answered_after_it_starts(
    localnet, bot_factory
) -> None:
    bot, process = bot_factory()
    alice = localnet.account("alice")
    process.start()
    before = localnet.mention(alice, bot, "help")
    process.wait_until_done([before.uri])
    assert process.stop() == 0

    during = localnet.mention(alice, bot, "help")
    process.start()
    process.wait_until_done([during.uri])

    assert len(localnet.posted_replies(bot, during.uri)) == 1
    assert len(localnet.posted_replies(bot, before.uri)) == 1  # not answered again
    state = BotState(process.state_path)
    assert state.logins_since(0) == 1  # the second start resumed the saved session
    state.close()
    assert process.stop() == 0


def test_killing_the_bot_between_submit_and_reply_gives_one_job_and_one_final_reply(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory(wait_seconds=60)
    alice = localnet.account("alice")
    process.start()
    post = localnet.mention(alice, bot, "job run", job_server.url("slow.yaml"))

    ledger = process.ledger()
    deadline = time.monotonic() + 60
    while [j.state for j in ledger.list_jobs(source_ref=post.uri).items] != [JobState.RUNNING]:
        assert time.monotonic() < deadline, process.log()
        time.sleep(0.1)
    process.kill()  # submitted and running, not yet replied to
    assert localnet.posted_replies(bot, post.uri) == []

    process.start()
    process.wait_until_done([post.uri])
    (job,) = ledger.list_jobs(source_ref=post.uri).items
    (reply,) = localnet.posted_replies(bot, post.uri)
    assert job.state == JobState.FAILED  # the runner never runs an orphaned execution twice
    assert reply.value.text.startswith(f"Job {job.id} failed: the runner that owned")
    ledger.close()
    assert process.stop() == 0
