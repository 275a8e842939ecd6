"""Tenants over HTTP: names shared between namespaces, every job form landing in the
caller's namespace, history tokens that cannot reach outside a page.

Same bench as test_http_api: a real uvicorn server on 127.0.0.1 over a real SQLite ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

from klippfisk.engine.wire import PagingToken
from tests.integration.http_server import (
    ADMIN,
    ALICE,
    BOB,
    JOBS,
    Api,
    assert_error,
    docker_job,
    serve,
)

FORMS: dict[str, dict[str, Any]] = {
    "minimal": {"image": "ubuntu", "command": ["echo", "hi"]},
    "legacy": {
        "APIVersion": "V1beta1",
        "Spec": {"Engine": "Docker", "Docker": {"Image": "ubuntu", "Entrypoint": ["echo"]}},
    },
    "code-runner": {"language": "python", "code": "print('hi')"},
}


@pytest.fixture
def api() -> Iterator[Api]:
    yield from serve()


@pytest.fixture
def shared(api: Api) -> tuple[str, str]:
    """Alice's and Bob's jobs, both named `shared`."""
    mine = api.client(ALICE).put(JOBS, json={"Job": docker_job("shared")}).json()["JobID"]
    theirs = api.client(BOB).put(JOBS, json={"Job": docker_job("shared")}).json()["JobID"]
    return mine, theirs


def test_a_name_another_tenant_also_uses_still_finds_your_own_job(
    api: Api, shared: tuple[str, str]
) -> None:
    mine, theirs = shared
    alice = api.client(ALICE)
    assert alice.get(f"{JOBS}/shared").json()["Job"]["ID"] == mine
    history = alice.get(f"{JOBS}/shared/history")
    assert history.status_code == 200, history.text
    assert "team-b" not in history.text
    assert api.client(BOB).get(f"{JOBS}/shared").json()["Job"]["ID"] == theirs
    assert alice.delete(f"{JOBS}/shared").status_code == 200
    assert str(api.ledger.get(mine).state) == "Stopped"
    assert str(api.ledger.get(theirs).state) == "Pending"


def test_a_cached_history_page_is_never_served_to_another_tenant(
    api: Api, shared: tuple[str, str]
) -> None:
    mine, theirs = shared
    for _ in range(2):  # the second round is answered from the cache
        for key, job_id in ((ALICE, mine), (BOB, theirs)):
            items = api.client(key).get(f"{JOBS}/shared/history").json()["Items"]
            assert {item["JobID"] for item in items} == {job_id}


def test_a_followed_log_finds_your_job_by_a_shared_name(api: Api, shared: tuple[str, str]) -> None:
    mine, _ = shared
    api.run_to_end(mine, stdout="alice's output\n")
    url = api.url.replace("http://", "ws://") + f"{JOBS}/shared/logs"
    with connect(url, additional_headers={"Authorization": f"Bearer {ALICE}"}) as socket:
        frames = list(socket)
    assert [f for f in frames if "alice's output" in str(f)], frames
    assert not [f for f in frames if "error" in str(f)], frames


def test_an_admin_is_told_to_pick_a_namespace_for_a_shared_name(
    api: Api, shared: tuple[str, str]
) -> None:
    _, theirs = shared
    assert (
        "several namespaces" in assert_error(api.client(ADMIN).get(f"{JOBS}/shared"), 404).Message
    )
    found = api.client(ADMIN).get(f"{JOBS}/shared", params={"namespace": "team-b"})
    assert found.json()["Job"]["ID"] == theirs


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_job_form_lands_in_the_callers_namespace(api: Api, form: str) -> None:
    response = api.client(ALICE).put(JOBS, json={"Job": FORMS[form]})
    assert response.status_code == 200, response.text
    assert api.ledger.get(response.json()["JobID"]).namespace == "team-a"


def test_an_admin_can_place_a_minimal_job_in_any_namespace(api: Api) -> None:
    body = {"Job": FORMS["minimal"], "Namespace": "team-b"}
    job_id = api.client(ADMIN).put(JOBS, json=body).json()["JobID"]
    assert api.ledger.get(job_id).namespace == "team-b"
    elsewhere = api.client(ADMIN).put(JOBS, json={"Job": FORMS["minimal"]})
    assert api.ledger.get(elsewhere.json()["JobID"]).namespace == "default"
    assert api.ledger.get(job_id).job_cid != api.ledger.get(elsewhere.json()["JobID"]).job_cid


@pytest.mark.parametrize(
    "token",
    [
        PagingToken(limit=5, offset=-3).encode(),
        PagingToken(limit=10**6, offset=0).encode(),
        PagingToken(limit=-1, offset=0).encode(),
    ],
)
def test_a_forged_history_token_is_refused(api: Api, token: str) -> None:
    job_id = api.submit()
    assert_error(api.client().get(f"{JOBS}/{job_id}/history", params={"next_token": token}), 400)
