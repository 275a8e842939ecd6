"""The HTTP rate limits: memory stays bounded however many callers come, and forgetting an
idle caller never changes an answer. Time is a clock the test moves, never a real wait."""

from __future__ import annotations

import asyncio
from typing import Any

from klippfisk.adapters.http.guard import Guard
from klippfisk.adapters.http.rate_limit import Buckets
from klippfisk.adapters.settings import ServerSettings
from tests.unit.manual_clock import ManualClock


def test_many_distinct_callers_leave_only_those_of_the_refill_window() -> None:
    clock = ManualClock()
    buckets = Buckets(rate=1.0, burst=5, clock=clock)  # a bucket refills in 5 seconds
    for n in range(20_000):
        clock.now += 0.001  # 1000 new callers a second
        assert buckets.take(f"10.0.{n // 256}.{n % 256}") == 0.0
        assert len(buckets) <= 5_001
    clock.now += 5.0
    buckets.take("one more")
    assert len(buckets) == 1, "every idle caller is forgotten once its bucket is full again"


def test_a_limited_caller_stays_limited_while_others_come_and_go() -> None:
    clock = ManualClock()
    buckets = Buckets(rate=0.5, burst=3, clock=clock)
    assert [buckets.take("guesser") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("guesser") == 2.0  # one token takes two seconds to come back
    for n in range(1_000):
        clock.now += 0.001
        buckets.take(f"passer-by-{n}")
    assert buckets.take("guesser") > 0.0, "still empty after one second"
    clock.now += 6.0  # long enough to refill completely
    assert [buckets.take("guesser") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("guesser") > 0.0


def test_a_flood_within_one_instant_is_capped() -> None:
    buckets = Buckets(rate=1.0, burst=5, max_callers=100, clock=ManualClock())
    for n in range(1_000):
        buckets.take(f"caller-{n}")
    assert len(buckets) == 100
    assert buckets.take("caller-999") == 0.0, "the most recent callers are the ones kept"


async def _refused(guard: Guard, address: str) -> int:
    """One request from `address` with a key the server does not know: its status."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/orchestrator/jobs",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer not-a-key")],
        "client": (address, 40000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    return int(sent[0]["status"])


async def unreachable(*_: Any) -> None:
    raise AssertionError("a refused request reached the app")


def test_the_guard_forgets_failed_addresses_and_still_slows_a_guesser() -> None:
    clock = ManualClock()
    settings = ServerSettings(
        api_keys=[{"key": "k", "namespace": "default"}], refused_rate_per_second=1, refused_burst=2
    )
    guard = Guard(unreachable, settings, clock=clock)

    async def scenario() -> None:
        for n in range(5_000):
            clock.now += 0.01
            assert await _refused(guard, f"2001:db8::{n:x}") == 401
            assert len(guard.refusals) <= 201  # addresses of the last two seconds
        assert [await _refused(guard, "192.0.2.7") for _ in range(3)] == [401, 401, 429]

    asyncio.run(scenario())
