"""Taking in mentions: page back through notifications to the stored cursor.

`listNotifications` returns newest first and pages backwards. The bot reads pages until it
meets a notification older than its cursor (the indexedAt of the newest mention it took in
last time), so mentions that arrived while it was down are found however many there are.
New mentions are written to the state file together with the new cursor in one
transaction, which is what makes a crash at any point safe: either both moved or neither.
Notifications at exactly the cursor's time are read again and ignored by URI. On a first
start (no cursor) it takes at most `backfill_limit` old mentions. Its own posts are skipped.
"""

from __future__ import annotations

from atproto import Client
from atproto_client.models.utils import get_model_as_dict

from klippfisk.adapters.bluesky.state import BotState, PendingMention
from klippfisk.adapters.bluesky.throttle import ServerThrottle

__all__ = ["take_in"]

PAGE_SIZE = 50


def take_in(
    client: Client, throttle: ServerThrottle, state: BotState, bot_did: str, backfill_limit: int
) -> int:
    """Remember every mention newer than the cursor; return how many were new."""
    stop_at = state.cursor
    found: list[PendingMention] = []
    newest: str | None = None
    page_cursor: str | None = None
    while True:
        page = throttle.call(
            client.app.bsky.notification.list_notifications,
            params={"reasons": ["mention"], "limit": PAGE_SIZE, "cursor": page_cursor},
        )
        reached = False
        for note in page.notifications:
            newest = max(newest or note.indexed_at, note.indexed_at)
            if stop_at is not None and note.indexed_at < stop_at:
                reached = True
                break
            if note.reason == "mention" and note.author.did != bot_did:
                found.append(
                    PendingMention(
                        note.uri,
                        note.cid,
                        note.author.did,
                        note.indexed_at,
                        get_model_as_dict(note.record),
                    )
                )
        if reached or not page.cursor or not page.notifications:
            break
        if stop_at is None and len(found) >= backfill_limit:
            break
        page_cursor = page.cursor
    moved = newest if newest is not None and (stop_at is None or newest > stop_at) else None
    state.remember(found, moved)
    return len(found)
