"""The bot's durable state: survives a restart, moves the cursor with the mentions, 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from klippfisk.adapters.bluesky.state import BotState, PendingMention


def mention(n: int) -> PendingMention:
    return PendingMention(
        f"at://did:plc:a/app.bsky.feed.post/{n}",
        f"cid{n}",
        "did:plc:a",
        f"2026-01-0{n}T00:00:00Z",
        {"text": f"job run {n}"},
    )


def test_the_file_is_private_because_it_holds_the_session(tmp_path: Path) -> None:
    state = BotState(tmp_path / "bot" / "state.db")
    state.save_session("handle:::did:::access:::refresh:::http://pds")
    assert stat.S_IMODE((tmp_path / "bot" / "state.db").stat().st_mode) == 0o600


def test_mentions_cursor_and_session_survive_a_restart(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.remember([mention(2), mention(1)], cursor="2026-01-02T00:00:00Z")
    state.save_session("s1")
    state.finish(mention(1).uri)
    state.close()

    again = BotState(tmp_path / "state.db")
    assert again.cursor == "2026-01-02T00:00:00Z"
    assert again.session == "s1"
    assert again.pending() == [mention(2)]


def test_remembering_a_mention_twice_does_not_undo_its_finish(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.remember([mention(1)], cursor=None)
    state.finish(mention(1).uri)
    state.remember([mention(1)], cursor=None)
    assert state.pending() == []
    assert state.cursor is None


def test_pending_mentions_come_oldest_first(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.remember([mention(3), mention(1), mention(2)], cursor=None)
    assert [m.uri[-1] for m in state.pending()] == ["1", "2", "3"]


def test_logins_are_counted_across_restarts(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.record_login(at=100.0)
    state.record_login(at=200.0)
    state.close()
    again = BotState(tmp_path / "state.db")
    assert again.logins_since(150.0) == 1
    assert again.logins_since(0.0) == 2


def test_a_mentions_status_says_whether_it_was_answered(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    assert state.status(mention(1).uri) is None
    state.remember([mention(1)], cursor=None)
    assert state.status(mention(1).uri) == "pending"
    state.finish(mention(1).uri)
    assert state.status(mention(1).uri) == "done"


def test_failures_back_off_doubling_to_a_cap_and_survive_a_restart(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.remember([mention(1), mention(2)], cursor=None)
    uri = mention(1).uri
    pauses = []
    for _ in range(5):
        attempts = state.record_failure(uri, now=1000.0, first_pause=5.0, max_pause=30.0)
        pauses.append((attempts, (state.failures(uri) or (0, 0.0))[1] - 1000.0))
    assert pauses == [(1, 5.0), (2, 10.0), (3, 20.0), (4, 30.0), (5, 30.0)]
    state.close()

    state = BotState(tmp_path / "state.db")  # a restart neither forgets nor retries at once
    assert [m.uri for m in state.pending(now=1029.0)] == [mention(2).uri]
    assert [m.uri for m in state.pending(now=1030.0)] == [uri, mention(2).uri]
    assert len(state.pending()) == 2  # without a clock: every unfinished mention
    state.finish(uri)
    assert state.failures(uri) is None
