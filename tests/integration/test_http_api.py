"""The HTTP API on a real uvicorn server on 127.0.0.1, over a real SQLite ledger.

No runner here: tests move jobs along by recording on the ledger what a runner would, so
every state the API must report is reached on purpose.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from klippfisk.adapters.cli import main
from klippfisk.adapters.http import ServeError, create_app
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger
from klippfisk.engine.wire import (
    GetJobResponse,
    ListResponse,
    WireExecution,
    WireHistory,
    WireJob,
)
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


@pytest.fixture
def api() -> Iterator[Api]:
    yield from serve()


def test_a_submitted_job_reads_back_in_go_wire_shape(api: Api) -> None:
    job_id = api.submit()
    response = api.client().get(f"{JOBS}/{job_id}")
    job = GetJobResponse.model_validate_json(response.content).Job
    assert job_id == job.ID
    assert job.State.StateType == "Pending"
    assert job.Namespace == "default"
    assert job.CreateTime > 1_600_000_000 * 10**9


def test_short_ids_and_names_find_the_job(api: Api) -> None:
    response = api.client().put(JOBS, json={"Job": docker_job("by-name")})
    job_id = response.json()["JobID"]
    for ref in (job_id[:10], "by-name"):
        assert api.client().get(f"{JOBS}/{ref}").json()["Job"]["ID"] == job_id


def test_lower_case_body_keys_as_the_python_client_sends_them(api: Api) -> None:
    body = {"Job": docker_job("from-python"), "namespace": "default", "idempotencyToken": "p-1"}
    response = api.client().put(JOBS, json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"JobID", "EvaluationID", "Warnings"}
    again = api.client().put(JOBS, json=body)
    assert again.json()["JobID"] == response.json()["JobID"]


def test_post_submits_like_put(api: Api) -> None:
    response = api.client().post(JOBS, json={"Job": docker_job("posted")})
    assert response.status_code == 200


def test_legacy_and_minimal_forms_go_through_the_compiler(api: Api) -> None:
    legacy = {
        "APIVersion": "V1beta1",
        "Spec": {
            "Engine": "Docker",
            "Docker": {"Image": "ubuntu", "Entrypoint": ["echo", "hi"]},
        },
    }
    minimal = {"image": "ubuntu", "command": ["echo", "hi"]}
    for form in (legacy, minimal):
        response = api.client().put(JOBS, json={"Job": form})
        assert response.status_code == 200, response.text
        job = api.ledger.get(response.json()["JobID"])
        assert job.engine == "docker"


def test_an_invalid_job_lists_each_problem_with_pointer_and_hint(api: Api) -> None:
    job = docker_job()
    job["Tasks"][0]["Engine"]["Params"] = {}
    job["Count"] = -2
    response = api.client().put(JOBS, json={"Job": job})
    assert_error(response, 400)
    listed = response.json()["Problems"]
    pointers = {p["pointer"] for p in listed}
    assert "/Tasks/0/Engine/Params/Image" in pointers
    assert all(p["hint"] for p in listed)


def test_repeating_an_idempotency_token_returns_the_same_job(api: Api) -> None:
    client = api.client()
    first = client.put(JOBS, params={"idempotency_token": "t-1"}, json={"Job": docker_job()})
    again = client.put(JOBS, json={"Job": docker_job(), "idempotencyToken": "t-1"})
    header = client.put(JOBS, headers={"Idempotency-Key": "t-1"}, json={"Job": docker_job()})
    ids = {r.json()["JobID"] for r in (first, again, header)}
    assert len(ids) == 1
    assert len(api.ledger.list_jobs(limit=50).items) == 1
    other = docker_job()
    other["Tasks"][0]["Engine"]["Params"]["Image"] = "alpine"
    assert_error(client.put(JOBS, params={"idempotency_token": "t-1"}, json={"Job": other}), 409)


def test_history_keeps_a_next_token_until_the_job_is_terminal(api: Api) -> None:
    """What `bacalhau job run` relies on: poll with the token until it comes back empty."""
    job_id = api.submit()
    client = api.client()
    seen: list[int] = []
    token = ""
    for step in range(6):
        response = client.get(f"{JOBS}/{job_id}/history", params={"next_token": token, "limit": 2})
        page = ListResponse[WireHistory].model_validate_json(response.content)
        seen += [item.SeqNum for item in page.Items]
        if step == 1:
            api.run_to_end(job_id, stdout="done\n")
        if not page.NextToken:
            break
        token = page.NextToken
    assert not page.NextToken
    assert seen == list(range(1, len(seen) + 1)), "no event lost or repeated across pages"
    assert len(seen) == len(api.ledger.history(job_id))


def test_history_filters_by_event_type_and_time(api: Api) -> None:
    job_id = api.submit()
    execution = api.run_to_end(job_id)
    client = api.client()
    url = f"{JOBS}/{job_id}/history"
    only_exec = client.get(url, params={"event_type": "execution"}).json()["Items"]
    assert {i["Type"] for i in only_exec} == {"ExecutionLevel"}
    assert {i["ExecutionID"] for i in only_exec} == {execution}
    assert client.get(url, params={"event_type": "job"}).json()["Items"][0]["Type"] == "JobLevel"
    assert client.get(url, params={"since": 4_000_000_000}).json()["Items"] == []
    assert_error(client.get(url, params={"event_type": "some"}), 400)


def test_executions_results_and_includes_after_a_run(api: Api) -> None:
    job_id = api.submit()
    api.run_to_end(job_id, stdout="hello\n", exit_code=3)
    client = api.client()
    executions = ListResponse[WireExecution].model_validate_json(
        client.get(f"{JOBS}/{job_id}/executions").content
    )
    (execution,) = executions.Items
    assert execution.ComputeState.StateType == 9
    assert execution.RunOutput is not None
    assert (execution.RunOutput.Stdout, execution.RunOutput.ExitCode) == ("hello\n", 3)
    full = GetJobResponse.model_validate_json(
        client.get(f"{JOBS}/{job_id}", params={"include": "history,executions"}).content
    )
    assert full.Job.State.StateType == "Completed"
    assert full.History is not None and full.History.NextToken == ""
    assert full.Executions is not None and len(full.Executions.Items) == 1
    assert client.get(f"{JOBS}/{job_id}/results").json() == {"Items": [], "NextToken": ""}
    versions = client.get(f"{JOBS}/{job_id}/versions").json()["Items"]
    assert [v["Version"] for v in versions] == [1]


def test_stop_takes_its_reason_from_the_json_body(api: Api) -> None:
    job_id = api.submit()
    response = api.client().request("DELETE", f"{JOBS}/{job_id}", json={"reason": "no more"})
    assert set(response.json()) == {"EvaluationID"}
    job = api.ledger.get(job_id)
    assert (str(job.state), job.message) == ("Stopped", "no more")
    assert_error(api.client().request("DELETE", f"{JOBS}/{job_id}", json={"reason": "x"}), 409)


def test_listing_pages_with_tokens_and_filters_by_label(api: Api) -> None:
    for n in range(3):
        api.submit(Job=docker_job(f"listed-{n}", Labels={"tier": "gold" if n else "tin"}))
    client = api.client()
    names, token = [], ""
    for _ in range(5):
        page = ListResponse[WireJob].model_validate_json(
            client.get(JOBS, params={"limit": 1, "next_token": token}).content
        )
        names += [j.Name for j in page.Items]
        token = page.NextToken
        if not token:
            break
    assert sorted(names) == ["listed-0", "listed-1", "listed-2"]
    gold = client.get(JOBS, params={"labels": "tier in (gold)", "limit": 10}).json()["Items"]
    assert sorted(j["Name"] for j in gold) == ["listed-1", "listed-2"]
    assert_error(client.get(JOBS, params={"labels": "tier in gold"}), 400)
    assert_error(client.get(JOBS, params={"next_token": "garbage!"}), 400)


def test_namespaces_isolate_tokens(api: Api) -> None:
    bobs = api.submit(key=BOB)
    alices = api.submit(key=ALICE)
    alice = api.client(ALICE)
    assert api.ledger.get(alices).namespace == "team-a"
    assert_error(alice.get(f"{JOBS}/{bobs}"), 404)
    assert_error(alice.get(f"{JOBS}/{bobs}/history"), 404)
    assert_error(alice.request("DELETE", f"{JOBS}/{bobs}", json={"reason": "mine now"}), 404)
    assert str(api.ledger.get(bobs).state) == "Pending"
    assert [j["ID"] for j in alice.get(JOBS).json()["Items"]] == [alices]
    assert_error(alice.get(JOBS, params={"namespace": "team-b"}), 403)
    elsewhere = {"Job": docker_job(Namespace="team-b")}
    assert_error(alice.put(JOBS, json=elsewhere), 403)
    everything = api.client(ADMIN).get(JOBS, params={"namespace": "*"}).json()["Items"]
    assert {j["ID"] for j in everything} == {bobs, alices}


def test_missing_and_invalid_tokens_are_refused(api: Api) -> None:
    assert_error(api.client(None).get(JOBS), 401)
    assert_error(api.client("not-a-key").get(JOBS), 401)
    basic = httpx.get(api.url + JOBS, headers={"Authorization": "Basic YTpi"})
    assert_error(basic, 401)
    assert api.client(None).get("/api/v1/agent/alive").json() == {"Status": "OK"}


def test_request_ids_are_echoed_or_made(api: Api) -> None:
    client = api.client()
    given = client.get("/api/v1/agent/alive", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    made = client.get("/api/v1/agent/alive", headers={"X-Request-ID": "bad id\twith space"})
    assert made.headers["x-request-id"] != "bad id\twith space"


def test_bad_input_gets_a_clear_error_never_a_traceback(api: Api) -> None:
    client = api.client()
    assert_error(client.put(JOBS, content=b'{"Job": {'), 400)
    assert_error(client.put(JOBS, content=b"[1, 2]"), 400)
    assert_error(client.put(JOBS, content=b""), 400)
    assert_error(client.put(JOBS, content=b"[" * 100_000 + b"]" * 100_000), 400)
    assert_error(client.put(JOBS, json={"Job": "not an object"}), 400)
    assert_error(client.put(JOBS, json={"Job": docker_job(), "Force": "yes"}), 400)
    assert_error(client.get(JOBS, params={"limit": "many"}), 400)
    assert_error(client.get(JOBS, params={"order_by": "name"}), 400)
    assert_error(client.get("/api/v1/nothing/here"), 404)
    assert_error(client.get(f"{JOBS}/j-nope"), 404)
    job_id = api.submit()
    assert_error(client.get(f"{JOBS}/{job_id}", params={"include": "secrets"}), 400)


def chunked(data: bytes) -> Iterator[bytes]:
    """A body without Content-Length: the limit must hold while it streams in."""
    yield from (data[i : i + 512] for i in range(0, len(data), 512))


def test_huge_bodies_are_refused_declared_or_streamed() -> None:
    for api in serve(max_body_bytes=1000):
        client = api.client()
        big = json.dumps({"Job": docker_job(Meta={"pad": "x" * 5000})}).encode()
        assert_error(client.put(JOBS, content=big), 413)
        assert_error(client.put(JOBS, content=chunked(big)), 413)


@pytest.mark.parametrize(
    ("key", "limits", "status"),
    [
        (ALICE, {"rate_per_second": 0.01, "rate_burst": 3}, 200),
        ("guessed-key", {"refused_rate_per_second": 0.01, "refused_burst": 3}, 401),
    ],
    ids=["each token", "failed authentication per address"],
)
def test_callers_are_rate_limited(key: str, limits: dict[str, float], status: int) -> None:
    for api in serve(**limits):
        caller = api.client(key)
        statuses = [caller.get(JOBS).status_code for _ in range(4)]
        assert statuses == [status, status, status, 429]
        refused = caller.get(JOBS)
        assert_error(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert api.client(BOB).get(JOBS).status_code == 200, "another token is not limited"


def test_diff_shows_what_a_resubmission_changes(api: Api) -> None:
    client = api.client()
    client.put(JOBS, json={"Job": docker_job("differ")})
    changed = docker_job("differ")
    changed["Tasks"][0]["Engine"]["Params"]["Image"] = "alpine:3"
    diff = client.put(f"{JOBS}/diff", json={"Job": changed}).json()["Diff"]
    changed_lines = [line.replace(" ", "") for line in diff.splitlines()]
    assert '-"Image":"busybox:1.36"' in changed_lines
    assert '+"Image":"alpine:3"' in changed_lines
    nameless = assert_error(client.put(f"{JOBS}/diff", json={"Job": docker_job()}), 400)
    assert "name is missing" in nameless.Message


def test_logs_stream_as_bacalhau_websocket_frames(api: Api) -> None:
    job_id = api.submit()
    api.run_to_end(job_id, stdout="one\ntwo\n")
    url = api.url.replace("http://", "ws://") + f"{JOBS}/{job_id}/logs"
    frames = []
    with connect(url, additional_headers={"Authorization": f"Bearer {ADMIN}"}) as socket:
        for message in socket:
            frames.append(json.loads(message))
    assert frames == [
        {"value": {"Type": 1, "Line": "one\n"}},
        {"value": {"Type": 1, "Line": "two\n"}},
    ]


def test_compile_and_validate_endpoints(api: Api) -> None:
    client = api.client()
    document = b"Type: batch\nTasks:\n  - Name: x\n    Engine: {Type: docker, Params: {}}\n"
    checked = client.post("/api/v1/klippfisk/validate", content=document).json()
    assert checked["valid"] is False
    assert checked["problems"][0]["line"] == 4
    good = document.replace(b"Params: {}", b"Params: {Image: ubuntu}")
    compiled = client.post("/api/v1/klippfisk/compile", content=good).json()
    assert compiled["job_cid"].startswith("bag")
    assert_error(client.post("/api/v1/klippfisk/compile", content=document), 400)


def test_agent_routes_and_legacy_redirects(api: Api) -> None:
    client = api.client(None)
    version = client.get("/api/v1/agent/version").json()
    assert version["GitVersion"].startswith("v1.5")
    assert client.get("/livez").headers["location"] == "/api/v1/agent/alive"
    assert client.get("/").headers["location"] == "/api/v1/agent/version"
    assert api.client().get("/api/v1/agent/node").json()["NodeType"] == "Requester"


def test_unsafe_or_unusable_settings_refuse_to_start() -> None:
    ledger = Ledger.open(AppSettings())
    try:
        with pytest.raises(ServeError, match="loopback"):
            create_app(AppSettings(server={"anonymous": True, "host": "0.0.0.0"}), ledger)
        with pytest.raises(ServeError, match="No API keys"):
            create_app(AppSettings(), ledger)
    finally:
        ledger.close()


def test_api_keys_never_reach_the_log(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    near_miss = f"{ADMIN}-guessed"
    api.client().put(JOBS, json={"Job": docker_job()})
    api.client(ADMIN).get(f"{JOBS}/j-missing")
    api.client(near_miss).get(JOBS)
    assert [r for r in caplog.records if r.name == "klippfisk.adapters.http.guard"], (
        "a refusal is logged"
    )
    assert ADMIN not in caplog.text, "neither a valid key nor a refused one is logged"


@pytest.mark.parametrize("head_off_loop", [False, True], ids=["head in loop", "head off loop"])
def test_cached_history_pages_follow_changes_and_namespaces(head_off_loop: bool) -> None:
    """Repeated polls are answered from memory; a write anywhere, or another tenant, is not.
    The ledger's head is read in the event loop on SQLite, off it on a server store."""
    for api in serve(history_head_off_loop=head_off_loop):
        poll_history(api)


def poll_history(api: Api) -> None:
    job_id = api.submit(key=BOB)
    bob, alice = api.client(BOB), api.client(ALICE)
    url = f"{JOBS}/{job_id}/history"
    first = bob.get(url, params={"limit": 5}).json()
    assert bob.get(url, params={"limit": 5}).json() == first
    assert_error(alice.get(url, params={"limit": 5}), 404)
    api.ledger.stop(job_id, reason="from another writer")
    after = bob.get(url, params={"limit": 5}).json()
    assert len(after["Items"]) == len(first["Items"]) + 1
    assert after["NextToken"] == ""


def test_serve_refuses_anonymous_mode_off_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--anonymous", "--no-runner"]) == 2
    assert "only allowed on a loopback address" in capsys.readouterr().err


def test_a_bad_server_setting_is_named_without_quoting_the_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-do-not-print"
    keys = json.dumps([{"key": secret, "namespace": ["not", "a", "string"]}])
    monkeypatch.setenv("KLIPPFISK_SERVER__API_KEYS", keys)
    assert main(["serve", "--no-runner"]) == 2
    captured = capsys.readouterr()
    assert "KLIPPFISK_SERVER__API_KEYS" in captured.err
    assert secret not in captured.out + captured.err
