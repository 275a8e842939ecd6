"""Job submission over HTTP, both ways in: the fast path in front of FastAPI takes the usual
requests and the documented route the unusual ones; a client must not be able to tell.

Same bench as test_http_api: a real uvicorn server on 127.0.0.1 over a real SQLite ledger.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from klippfisk.adapters.http import submission
from klippfisk.spec import CompiledSpec, compile_job
from tests.integration.http_server import ALICE, JOBS, Api, assert_error, docker_job, serve

# A query the fast path passes on: a parameter it does not know (FastAPI ignores it).
ROUTED = {"via": "route"}


@pytest.fixture
def api() -> Iterator[Api]:
    yield from serve()


def submit(api: Api, body: Any, params: dict[str, str], **kwargs: Any) -> httpx.Response:
    return api.client(kwargs.pop("key", ALICE)).put(JOBS, json=body, params=params, **kwargs)


@pytest.mark.parametrize("params", [{}, ROUTED], ids=["fast path", "route"])
def test_both_ways_in_answer_alike(api: Api, params: dict[str, str]) -> None:
    response = submit(api, {"Job": docker_job("alike")}, params, headers={"X-Request-ID": "r-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "r-1"
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"JobID", "EvaluationID", "Warnings"}
    job = api.ledger.get(response.json()["JobID"])
    assert (job.namespace, job.name) == ("team-a", "alike")
    assert job.source.ref == "r-1", "the request id is recorded as the job's source"
    same = assert_error(submit(api, {"Job": docker_job("alike")}, params), 409)
    assert "Force" in same.Hint
    forced = submit(api, {"Job": docker_job("alike"), "force": True}, params)
    assert api.ledger.get(forced.json()["JobID"]).version == 2


@pytest.mark.parametrize("params", [{}, ROUTED], ids=["fast path", "route"])
def test_both_ways_in_refuse_alike(api: Api, params: dict[str, str]) -> None:
    broken = docker_job()
    broken["Tasks"][0]["Engine"]["Params"] = {}
    problems = assert_error(submit(api, {"Job": broken}, params), 400)
    assert "Image" in problems.Message + problems.Hint
    assert_error(submit(api, {"Job": docker_job(Namespace="team-b")}, params), 403)
    assert_error(submit(api, {"Job": docker_job()}, {**params, "namespace": "team-b"}), 403)
    assert_error(api.client(None).put(JOBS, json={"Job": docker_job()}, params=params), 401)
    assert_error(api.client(ALICE).put(JOBS, content=b"{", params=params), 400)


@pytest.mark.parametrize("params", [{}, ROUTED], ids=["fast path", "route"])
@pytest.mark.parametrize(
    "form",
    [
        {"image": "ubuntu", "command": ["echo", "hi"]},
        {"APIVersion": "V1beta1", "Spec": {"Engine": "Docker", "Docker": {"Image": "ubuntu"}}},
    ],
    ids=["minimal", "legacy"],
)
def test_a_form_without_a_namespace_is_compiled_once_and_placed_in_the_keys_namespace(
    api: Api, form: dict[str, Any], params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    compiles: list[dict[str, Any]] = []

    def counted(job: dict[str, Any], **options: Any) -> CompiledSpec:
        compiles.append(job)
        return compile_job(job, **options)

    monkeypatch.setattr(submission, "compile_job", counted)
    response = submit(api, {"Job": form}, params)
    assert response.status_code == 200, response.text
    job = api.ledger.get(response.json()["JobID"])
    assert len(compiles) == 1
    assert job.namespace == job.job["Namespace"] == "team-a"
    assert job.job_cid == compile_job({**job.job}).job_cid, "the CID covers the namespace"


def test_an_idempotency_key_counts_the_same_from_query_header_or_body(api: Api) -> None:
    """The query's token wins over the header's, the header's over the body's."""
    first = submit(api, {"Job": docker_job()}, {"idempotency_token": "k-1"}).json()["JobID"]
    header = submit(api, {"Job": docker_job()}, ROUTED, headers={"Idempotency-Key": "k-1"})
    body = submit(api, {"Job": docker_job(), "IdempotencyToken": "k-1"}, {})
    assert {header.json()["JobID"], body.json()["JobID"]} == {first}
    beaten = submit(
        api,
        {"Job": docker_job(), "IdempotencyToken": "k-1"},
        {"idempotency_token": "k-2"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert beaten.json()["JobID"] != first


def test_query_parameters_the_route_limits_are_still_limited(api: Api) -> None:
    for params in ({"namespace": "n" * 129}, {"idempotency_token": "t" * 257}):
        error = assert_error(submit(api, {"Job": docker_job()}, params), 400)
        assert "at most" in error.Message
    repeated = api.client(ALICE).put(
        f"{JOBS}?namespace=team-b&namespace=team-a", json={"Job": docker_job("twice")}
    )
    assert repeated.status_code == 200, "the last value counts, as FastAPI reads it"
    assert api.ledger.get(repeated.json()["JobID"]).namespace == "team-a"


def test_a_store_fault_during_a_submission_is_a_500_with_the_request_id(api: Api) -> None:
    api.ledger.close()  # the store goes away under the running server
    error = assert_error(submit(api, {"Job": docker_job()}, {}), 500)
    assert error.RequestID in error.Hint


def test_a_client_that_leaves_mid_body_records_nothing_and_the_server_goes_on(api: Api) -> None:
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            f"PUT {JOBS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\n"
            "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
            '{"Job": {"Name": "half'.encode()
        )
    assert submit(api, {"Job": docker_job("after")}, {}).status_code == 200
    assert [j.name for j in api.ledger.list_jobs(limit=50).items] == ["after"]


def test_the_submit_operation_stays_documented(api: Api) -> None:
    paths = api.client(None).get("/openapi.json").json()["paths"]
    for method in ("put", "post"):
        operation = paths[JOBS][method]
        assert (
            "Job" in operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
        )
        assert {"namespace", "idempotency_token"} <= {p["name"] for p in operation["parameters"]}
