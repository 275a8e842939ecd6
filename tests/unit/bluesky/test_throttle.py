"""Honouring the server's rate limits: waits come from its headers, retries back off."""

from __future__ import annotations

import httpx
import pytest
from atproto import exceptions
from atproto_client.request import Response

from klippfisk.adapters.bluesky.throttle import ServerThrottle

NOW = 1_800_000_000.0


def limited(**headers: str) -> exceptions.RateLimitExceededError:
    return exceptions.RateLimitExceededError(Response(False, 429, None, headers))


class Recorder:
    """The throttle's clock and sleep: time only moves when it sleeps."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def throttle(rec: Recorder, **kw: float) -> ServerThrottle:
    return ServerThrottle(clock=rec.clock, sleep=rec.sleep, **kw)  # type: ignore[arg-type]


def failing(*errors: Exception) -> object:
    left = list(errors)

    def call() -> str:
        if left:
            raise left.pop(0)
        return "ok"

    return call


def test_a_429_waits_for_retry_after_then_succeeds() -> None:
    rec = Recorder()
    assert throttle(rec).call(failing(limited(**{"retry-after": "7"}))) == "ok"
    assert rec.slept == [7.0]


def test_a_429_without_retry_after_waits_until_the_reset_time() -> None:
    rec = Recorder()
    throttle(rec).call(failing(limited(**{"ratelimit-reset": str(int(NOW) + 12)})))
    assert rec.slept == [12.0]


def test_network_errors_back_off_exponentially_then_give_up() -> None:
    rec = Recorder()
    t = throttle(rec, retries=3, base_delay=0.5)
    with pytest.raises(exceptions.NetworkError):
        t.call(failing(*[exceptions.NetworkError() for _ in range(4)]))
    assert rec.slept == [0.5, 1.0, 2.0]


def test_waits_are_capped() -> None:
    rec = Recorder()
    throttle(rec, max_delay=30).call(failing(limited(**{"retry-after": "86400"})))
    assert rec.slept == [30.0]


def test_an_exhausted_window_is_waited_out_before_the_next_call() -> None:
    rec = Recorder()
    t = throttle(rec)
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(int(NOW) + 5)}
    t.observe(httpx.Response(200, headers=headers))
    assert t.call(lambda: "ok") == "ok"
    assert rec.slept == [5.0]
    assert t.call(lambda: "again") == "again"
    assert rec.slept == [5.0]  # the window has reopened


def test_other_errors_are_not_retried() -> None:
    rec = Recorder()
    with pytest.raises(exceptions.BadRequestError):
        throttle(rec).call(failing(exceptions.BadRequestError()))
    assert rec.slept == []
