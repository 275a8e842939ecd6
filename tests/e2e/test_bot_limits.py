"""Limits the bot keeps on a real network: a flood from one author is rate-limited."""

from __future__ import annotations

import pytest

from klippfisk.adapters.bluesky import messages

pytestmark = [pytest.mark.localnet, pytest.mark.timeout(900)]  # first one installs


def test_a_flood_from_one_author_gets_the_limit_then_one_warning_then_silence(
    localnet, bot_factory
) -> None:
    bot, process = bot_factory(author_limit=3, author_window_seconds=600)
    alice, bob = localnet.account("alice"), localnet.account("bob")
    process.start()
    flood = [localnet.mention(alice, bot, "help") for _ in range(6)]
    other = localnet.mention(bob, bot, "help")
    process.wait_until_done([p.uri for p in [*flood, other]])

    texts = [r.value.text for p in flood for r in localnet.posted_replies(bot, p.uri)]
    assert texts.count(messages.HELP) == 3
    warnings = [t for t in texts if t.startswith("You are sending me mentions faster")]
    assert len(warnings) == 1
    assert len(texts) == 4  # the last two got no reply at all
    assert [r.value.text for r in localnet.posted_replies(bot, other.uri)] == [messages.HELP]
    assert process.stop() == 0


def test_the_concurrency_cap_makes_later_mentions_wait_their_turn(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory(max_concurrent=1)
    alice = localnet.account("alice")
    slow = localnet.mention(alice, bot, "job run", job_server.url("slow.yaml"))
    quick = localnet.mention(alice, bot, "help")
    process.start()
    process.wait_until_done([slow.uri, quick.uri])

    (slow_reply,) = localnet.posted_replies(bot, slow.uri)
    (quick_reply,) = localnet.posted_replies(bot, quick.uri)
    assert slow_reply.value.text.endswith("slow job done\n")
    assert quick_reply.value.created_at > slow_reply.value.created_at  # one at a time
    assert process.stop() == 0
