"""The local Bluesky network itself: what the bot relies on from it, proven for real."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from atproto import client_utils

pytestmark = [pytest.mark.localnet, pytest.mark.timeout(900)]  # first one installs

JOB_URL = "https://jobs.example.org/specs/hello-world/job.yaml"


def poll(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Call probe until it returns something truthy (the AppView indexes asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing after {timeout} s")


def test_a_mention_reaches_the_mentioned_account_with_the_full_link(localnet) -> None:
    bot = localnet.account("bot")
    alice = localnet.account("alice")
    text = (
        client_utils.TextBuilder()
        .mention(f"@{bot.handle}", bot.did)
        .text(" job run ")
        .link("jobs.example.org/specs/hel...", JOB_URL)
    )
    post = localnet.call(alice.client.send_post, text)

    def mention() -> Any:
        page = bot.client.app.bsky.notification.list_notifications(params={"reasons": ["mention"]})
        return next((n for n in page.notifications if n.uri == post.uri), None)

    found = localnet.call(poll, mention)
    assert found.reason == "mention"
    assert found.author.did == alice.did
    links = [f.features[0].uri for f in found.record.facets if hasattr(f.features[0], "uri")]
    assert links == [JOB_URL]
