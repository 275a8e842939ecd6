"""The per-author rate limit: a flood gets one warning, then silence, then service again."""

from __future__ import annotations

from klippfisk.adapters.bluesky.limits import AuthorLimiter, Verdict
from tests.unit.manual_clock import ManualClock


def test_a_flood_is_accepted_up_to_the_limit_then_warned_once_then_ignored() -> None:
    clock = ManualClock()
    limiter = AuthorLimiter(limit=3, window=60, clock=clock)
    verdicts = [limiter.check("did:plc:alice") for _ in range(6)]
    assert verdicts == [Verdict.ACCEPT] * 3 + [Verdict.REFUSE] + [Verdict.IGNORE] * 2
    assert limiter.retry_in("did:plc:alice") == 60


def test_other_authors_are_not_affected() -> None:
    limiter = AuthorLimiter(limit=1, window=60, clock=ManualClock())
    assert limiter.check("did:plc:alice") is Verdict.ACCEPT
    assert limiter.check("did:plc:alice") is Verdict.REFUSE
    assert limiter.check("did:plc:bob") is Verdict.ACCEPT


def test_the_window_slides_and_a_later_flood_is_warned_again() -> None:
    clock = ManualClock()
    limiter = AuthorLimiter(limit=2, window=10, clock=clock)
    assert [limiter.check("a") for _ in range(3)][-1] is Verdict.REFUSE
    clock.now += 10
    assert [limiter.check("a") for _ in range(4)] == [
        Verdict.ACCEPT,
        Verdict.ACCEPT,
        Verdict.REFUSE,
        Verdict.IGNORE,
    ]
