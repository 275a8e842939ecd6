"""`klippfisk bot` against the real local Bluesky network: jobs asked for in posts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from atproto import models

from klippfisk.engine import JobState

pytestmark = [pytest.mark.localnet, pytest.mark.timeout(900)]  # first one installs


def job_run(localnet, bot_factory, url: str) -> tuple[Any, Any, Any, Any]:
    """A running bot, and alice asking it to run `url`: (alice, post, first reply, process)."""
    bot, process = bot_factory()
    process.start()
    alice = localnet.account("alice")
    post = localnet.mention(alice, bot, "job run", url)
    (reply,) = localnet.wait_for_replies(alice, post.uri, bot.did, 1)
    return alice, post, reply, process


def test_a_job_run_is_answered_in_the_thread_with_ids_and_stdout(
    localnet, job_server, bot_factory
) -> None:
    alice, post, reply, process = job_run(localnet, bot_factory, job_server.url("hello.yaml"))

    ledger = process.ledger()
    (job,) = ledger.list_jobs(source_ref=post.uri).items
    assert job.state == JobState.COMPLETED
    assert (job.source.adapter, job.source.actor, job.source.ref) == (
        "bluesky",
        alice.did,
        post.uri,
    )
    execution = job.executions[0]
    assert reply.record.text == (
        f"Job {job.id} completed (execution {execution.id}, exit 0).\n"
        "hello from the bot 🐟 https://example.org/klippfisk\n"
    )
    (facet,) = reply.record.facets  # the URL is a link, at its UTF-8 byte offsets
    linked = reply.record.text.encode()[facet.index.byte_start : facet.index.byte_end]
    assert linked.decode() == facet.features[0].uri == "https://example.org/klippfisk"
    assert reply.record.reply.parent.uri == post.uri
    assert reply.record.reply.root.uri == post.uri
    ledger.close()
    assert process.stop() == 0
    assert process.env["KLIPPFISK_BOT__APP_PASSWORD"] not in process.log()


def test_validate_describe_help_and_nonsense_are_answered(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory()
    process.start()
    alice = localnet.account("alice")
    run = localnet.mention(alice, bot, "job run", job_server.url("hello.yaml"))
    validate = localnet.mention(alice, bot, "job validate", job_server.url("hello.yaml"))
    nonsense = localnet.mention(alice, bot, "please bake a cake")
    (ran,) = localnet.wait_for_replies(alice, run.uri, bot.did, 1)
    job_id = ran.record.text.split()[1]
    in_thread = models.AppBskyFeedPost.ReplyRef(  # asked below the bot's answer
        parent=models.create_strong_ref(ran), root=models.create_strong_ref(run)
    )
    describe = localnet.mention(alice, bot, f"job describe {job_id[:10]}", reply_to=in_thread)
    process.wait_until_done([run.uri, validate.uri, nonsense.uri, describe.uri])

    def reply_to(post) -> Any:
        (reply,) = localnet.posted_replies(bot, post.uri)
        return reply.value

    assert reply_to(validate).text.startswith("Valid job spec. Job CID bagaaiera")
    assert reply_to(nonsense).text.startswith("I found no command in your post. I run Bacalhau")
    described = reply_to(describe)
    assert described.text == ran.record.text
    assert (described.reply.parent.uri, described.reply.root.uri) == (describe.uri, run.uri)
    assert process.stop() == 0


def test_a_slow_job_gets_a_follow_up_then_the_final_reply(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory(wait_seconds=1)
    process.start()
    alice = localnet.account("alice")
    post = localnet.mention(alice, bot, "job run", job_server.url("slow.yaml"))

    (follow_up,) = localnet.wait_for_replies(alice, post.uri, bot.did, 1)
    assert re.search(r"is still (pending|queued|running) after 1 s", follow_up.record.text)
    assert "I will reply here when it finishes" in follow_up.record.text

    replies = localnet.wait_for_replies(alice, post.uri, bot.did, 2)
    assert replies[0].uri == follow_up.uri
    assert "completed" in replies[1].record.text
    assert replies[1].record.text.endswith("slow job done\n")
    assert process.stop() == 0


def test_an_invalid_spec_is_answered_with_the_first_error_its_line_and_path(
    localnet, job_server, bot_factory
) -> None:
    _, _, reply, process = job_run(localnet, bot_factory, job_server.url("invalid.yaml"))
    assert reply.record.text.startswith("Invalid job spec at line 14, /Tasks/0/Resources/CPU:")
    assert "CPU 'lots'" in reply.record.text  # the compiler's own words follow
    assert process.stop() == 0


def test_a_url_inside_the_network_is_refused_with_the_reason(localnet, bot_factory) -> None:
    inside = "http://127.0.0.1:2583/xrpc/_health"  # the PDS itself, not on the allow-list
    _, _, reply, process = job_run(localnet, bot_factory, inside)
    assert "I do not fetch from 127.0.0.1: it is not a public address" in reply.record.text
    assert process.stop() == 0
