"""Posting each reply exactly once, even across a crash between posting and remembering.

Every reply the bot can make to a mention has a fixed record key derived from the mention's
URI and the kind of reply ("answer", "follow-up"), so posting is idempotent at the PDS: the
bot looks the record up first and creates it only if it is not there, and a create that
races with an earlier attempt is recognised afterwards by the same lookup. Post record keys
must be TIDs (13 base32-sortable characters: 53 bits of microseconds, 10 bits of clock id),
so the key reuses the mention's own TID timestamp (keeping keys roughly in time order) with
a clock id hashed from the URI and the kind.
"""

from __future__ import annotations

import hashlib

from atproto import Client, exceptions, models

from klippfisk.adapters.bluesky.reply import Reply, thread_refs
from klippfisk.adapters.bluesky.throttle import ServerThrottle

__all__ = ["POST_COLLECTION", "post_reply_once", "reply_rkey"]

POST_COLLECTION = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def _tid_value(rkey: str) -> int | None:
    """The integer a TID encodes, or None if `rkey` is not a TID."""
    if len(rkey) != 13 or rkey[0] not in _TID_ALPHABET[:16]:
        return None
    value = 0
    for char in rkey:
        digit = _TID_ALPHABET.find(char)
        if digit < 0:
            return None
        value = value * 32 + digit
    return value


def _tid(value: int) -> str:
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def reply_rkey(mention_uri: str, kind: str) -> str:
    """The record key of the bot's `kind` reply to the mention at `mention_uri`."""
    digest = int.from_bytes(hashlib.sha256(f"{mention_uri}\n{kind}".encode()).digest()[:8], "big")
    mention_tid = _tid_value(mention_uri.rsplit("/", 1)[-1])
    micros = (mention_tid >> 10) if mention_tid is not None else (digest >> 11)
    micros &= (1 << 53) - 1
    return _tid((micros << 10) | (digest & 1023))


def _existing(client: Client, repo: str, rkey: str) -> str | None:
    try:
        found = client.com.atproto.repo.get_record(
            params={"repo": repo, "collection": POST_COLLECTION, "rkey": rkey}
        )
    except exceptions.BadRequestError:  # RecordNotFound
        return None
    return found.uri


def post_reply_once(
    client: Client,
    throttle: ServerThrottle,
    repo: str,
    mention: models.ComAtprotoRepoStrongRef.Main,
    mention_reply: models.AppBskyFeedPost.ReplyRef | None,
    kind: str,
    reply: Reply,
) -> str:
    """Post `reply` as `repo` (the bot's DID) in the mention's thread unless this kind of
    reply is already there; return the reply's URI either way."""
    rkey = reply_rkey(mention.uri, kind)
    done = throttle.call(_existing, client, repo, rkey)
    if done:
        return done
    record = models.AppBskyFeedPost.Record(
        text=reply.text,
        facets=reply.facets or None,
        reply=thread_refs(mention, mention_reply),
        created_at=client.get_current_time_iso(),
    )
    data = models.ComAtprotoRepoCreateRecord.Data(
        repo=repo, collection=POST_COLLECTION, rkey=rkey, record=record
    )
    try:
        return throttle.call(client.com.atproto.repo.create_record, data).uri
    except exceptions.RequestException:
        done = throttle.call(_existing, client, repo, rkey)  # an earlier attempt got there
        if done:
            return done
        raise
