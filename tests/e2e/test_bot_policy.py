"""`klippfisk bot` against the real local Bluesky network: the bot's rules for strangers' jobs,
who may read what, and that slow jobs do not keep it from answering."""

from __future__ import annotations

import pytest

from klippfisk.engine import JobState

pytestmark = [pytest.mark.localnet, pytest.mark.timeout(900)]  # first one installs


def test_help_is_answered_while_max_concurrent_slow_jobs_run(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory(wait_seconds=1, max_concurrent=2)
    process.start()
    alice = localnet.account("alice")
    runs = [localnet.mention(alice, bot, "job run", job_server.url("slow.yaml")) for _ in "ab"]
    for run in runs:
        localnet.wait_for_replies(alice, run.uri, bot.did, 1)  # the follow-ups
    helped = localnet.mention(alice, bot, "help")
    (reply,) = localnet.wait_for_replies(alice, helped.uri, bot.did, 1)
    assert reply.record.text.startswith("I run Bacalhau-style jobs.")

    ledger = process.ledger()
    states = [ledger.list_jobs(source_ref=run.uri).items[0].state for run in runs]
    assert JobState.COMPLETED not in states  # answered while both jobs still ran
    ledger.close()
    for run in runs:  # and the final replies still come
        final = localnet.wait_for_replies(alice, run.uri, bot.did, 2)[1]
        assert final.record.text.endswith("slow job done\n")
    assert process.stop() == 0


def test_a_networked_job_is_refused_and_others_do_not_see_a_jobs_output(
    localnet, job_server, bot_factory
) -> None:
    bot, process = bot_factory()
    process.start()
    alice, bob = localnet.account("alice"), localnet.account("bob")
    networked = localnet.mention(alice, bot, "job run", job_server.url("networked.yaml"))
    run = localnet.mention(alice, bot, "job run", job_server.url("hello.yaml"))
    (refused,) = localnet.wait_for_replies(alice, networked.uri, bot.did, 1)
    assert refused.record.text.startswith("I will not run that job. I run jobs without network")
    (ran,) = localnet.wait_for_replies(alice, run.uri, bot.did, 1)
    assert "hello from the bot" in ran.record.text
    job_id = ran.record.text.split()[1]

    ledger = process.ledger()
    job = ledger.get(job_id)
    assert job.namespace == "bluesky"
    assert ledger.list_jobs(source_ref=networked.uri).items == []  # nothing was submitted
    ledger.close()

    asked = localnet.mention(bob, bot, f"job describe {job_id}")
    (described,) = localnet.wait_for_replies(bob, asked.uri, bot.did, 1)
    assert described.record.text.startswith(f"Job {job_id} completed")
    assert "hello from the bot" not in described.record.text  # stdout is alice's
    assert process.stop() == 0
