"""Deterministic reply record keys: the PDS itself keeps a reply from being posted twice."""

from __future__ import annotations

import re

from klippfisk.adapters.bluesky.posting import reply_rkey

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
MENTION = "at://did:plc:alice/app.bsky.feed.post/3lbqzfxyvqk2a"


def test_the_key_is_a_valid_tid_and_the_same_every_time() -> None:
    key = reply_rkey(MENTION, "answer")
    assert TID.match(key)
    assert reply_rkey(MENTION, "answer") == key


def test_each_kind_of_reply_and_each_mention_has_its_own_key() -> None:
    keys = {
        reply_rkey(MENTION, "answer"),
        reply_rkey(MENTION, "follow-up"),
        reply_rkey(MENTION.replace("k2a", "k2b"), "answer"),
    }
    assert len(keys) == 3


def test_the_key_keeps_the_mentions_time_so_keys_sort_by_time() -> None:
    assert reply_rkey(MENTION, "answer")[:11] == MENTION.rsplit("/", 1)[1][:11]


def test_a_mention_whose_key_is_not_a_tid_still_gets_a_valid_key() -> None:
    assert TID.match(reply_rkey("at://did:plc:a/app.bsky.feed.post/self", "answer"))
