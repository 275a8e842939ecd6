"""History polls on a busy ledger: other jobs' writes must not cost a poll its cached page,
and no write to the polled job, or to what its name means, may ever be missed.

Same bench as test_http_api: a real uvicorn server on 127.0.0.1 over a real SQLite ledger.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.http_server import ADMIN, JOBS, Api, docker_job, serve


@pytest.fixture
def api() -> Iterator[Api]:
    yield from serve()


def items(api: Api, ref: str) -> list[dict[str, object]]:
    response = api.client(ADMIN).get(f"{JOBS}/{ref}/history", params={"limit": 50})
    assert response.status_code == 200, response.text
    return response.json()["Items"]  # type: ignore[no-any-return]


def test_a_polled_job_shows_its_own_changes_among_other_jobs_writes(api: Api) -> None:
    polled = api.submit()
    first = items(api, polled)
    for _ in range(3):
        api.submit()  # the ledger moves, the polled job does not
        assert items(api, polled) == first
    api.ledger.stop(polled, reason="seen at once")
    api.submit()
    after = items(api, polled)
    assert len(after) == len(first) + 1
    assert "seen at once" in str(after[-1])


def test_a_name_polled_after_another_job_took_it_shows_the_new_job(api: Api) -> None:
    """Jobs submitted under idempotency keys can share a name; the name means the newest."""
    older = api.submit(Job=docker_job("shared"), IdempotencyToken="first")
    api.ledger.stop(older, reason="the older one")
    assert "the older one" in str(items(api, "shared"))
    newer = api.submit(Job=docker_job("shared"), IdempotencyToken="second")
    assert newer != older
    assert "the older one" not in str(items(api, "shared"))
