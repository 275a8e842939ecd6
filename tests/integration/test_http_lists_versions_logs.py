"""Job versions, job lists in order across pages, followed logs and server faults, over HTTP.

Same bench as test_http_api: a real uvicorn server on 127.0.0.1 over a real SQLite ledger,
with the runner's part played on the ledger (and in the results directory) by the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from klippfisk.adapters.settings import AppSettings
from klippfisk.engine.results import PIECE_BYTES, execution_results_dir
from klippfisk.engine.wire import PagingToken
from tests.integration.http_server import ADMIN, JOBS, Api, assert_error, docker_job, serve


@pytest.fixture
def api() -> Iterator[Api]:
    yield from serve(list_scan_limit=6, log_poll_seconds=0.05)


def walk(api: Api, **params: Any) -> list[str]:
    """Every job name the list gives, following NextToken page by page."""
    client, names, token = api.client(), [], ""
    for _ in range(20):
        page = client.get(JOBS, params={**params, "next_token": token}).json()
        assert len(page["Items"]) == params["limit"] or not page["NextToken"]
        names += [job["Name"] for job in page["Items"]]
        token = page["NextToken"]
        if not token:
            return names
    raise AssertionError("the list never ended")


def test_versions_lists_every_version_oldest_first(api: Api) -> None:
    api.submit(Job=docker_job("evolving"))
    changed = docker_job("evolving")
    changed["Tasks"][0]["Engine"]["Params"]["Image"] = "alpine:3"
    job_id = api.submit(Job=changed)
    versions = api.client().get(f"{JOBS}/{job_id}/versions").json()["Items"]
    assert [v["Version"] for v in versions] == [1, 2]
    images = [v["Tasks"][0]["Engine"]["Params"]["Image"] for v in versions]
    assert images == ["busybox:1.36", "alpine:3"]


def test_sorted_lists_hold_their_order_across_pages(api: Api) -> None:
    ids = [api.submit(Job=docker_job(f"job-{n}")) for n in range(5)]
    api.ledger.stop(ids[1], reason="touched last")
    oldest_first = ["job-0", "job-1", "job-2", "job-3", "job-4"]
    assert walk(api, limit=2, order_by="created_at") == oldest_first
    assert walk(api, limit=2, order_by="created_at", reverse="true") == oldest_first[::-1]
    assert walk(api, limit=2, reverse="true") == oldest_first
    assert walk(api, limit=2) == oldest_first[::-1]
    modified = ["job-0", "job-2", "job-3", "job-4", "job-1"]
    assert walk(api, limit=3, order_by="modified_at") == modified


def test_a_label_selector_fills_every_page_but_the_last(api: Api) -> None:
    for n in range(6):
        api.submit(Job=docker_job(f"job-{n}", Labels={"tier": "gold" if n % 2 else "tin"}))
    assert walk(api, limit=2, labels="tier=gold") == ["job-5", "job-3", "job-1"]
    assert walk(api, limit=2, labels="tier=gold", order_by="created_at") == [
        "job-1",
        "job-3",
        "job-5",
    ]


def test_label_selectors_split_on_commas_outside_sets_and_are_bounded(api: Api) -> None:
    for n in range(3):
        api.submit(Job=docker_job(f"job-{n}", Labels={"tier": ["gold", "tin", "lead"][n]}))
    chosen = walk(api, limit=5, labels="tier in (gold,lead), !missing,tier!=tin")
    assert chosen == ["job-2", "job-0"]
    refused = assert_error(api.client().get(JOBS, params={"labels": "tier," * 600}), 400)
    assert "limit" in refused.Message


def test_every_order_lists_more_jobs_than_the_scan_limit(api: Api) -> None:
    ids = [api.submit(Job=docker_job(f"job-{n}")) for n in range(8)]
    api.ledger.stop(ids[0], reason="touched last")
    created = [f"job-{n}" for n in range(8)]
    assert walk(api, limit=3, order_by="created_at") == created
    assert walk(api, limit=3, order_by="modified_at", reverse="true") == [
        "job-0",
        *created[:0:-1],
    ]
    assert len(walk(api, limit=4)) == 8, "the default order pages through any number"


def test_pages_hold_still_while_jobs_are_submitted_and_changed(api: Api) -> None:
    ids = [api.submit(Job=docker_job(f"job-{n}")) for n in range(4)]
    client = api.client()
    newest_first = {"limit": 2, "order_by": "created_at", "reverse": "true"}
    first = client.get(JOBS, params=newest_first).json()
    api.submit(Job=docker_job("job-4"))  # ahead of the cursor: an offset would shift
    api.ledger.stop(ids[3], reason="changed after it was listed")
    api.ledger.stop(ids[0], reason="changed before it was listed")
    listed, token = [job["Name"] for job in first["Items"]], first["NextToken"]
    while token:  # the token carries the order and page size of page one
        page = client.get(JOBS, params={"next_token": token}).json()
        listed, token = listed + [job["Name"] for job in page["Items"]], page["NextToken"]
    assert listed == ["job-3", "job-2", "job-1", "job-0"], "no job twice or missed"


def test_a_sparse_selector_stops_at_the_scan_limit_with_a_token_to_read_on(api: Api) -> None:
    for n in range(8):
        api.submit(Job=docker_job(f"job-{n}", Labels={"tier": "gold" if n == 0 else "tin"}))
    client = api.client()
    first = client.get(JOBS, params={"limit": 5, "labels": "tier=gold"}).json()
    assert first["Items"] == [] and first["NextToken"], "six jobs read, none matched"
    second = client.get(JOBS, params={"next_token": first["NextToken"], "labels": "tier=gold"})
    assert [job["Name"] for job in second.json()["Items"]] == ["job-0"]
    assert second.json()["NextToken"] == ""


def test_a_forged_page_token_is_refused(api: Api) -> None:
    forged = PagingToken(sort_by="name", limit=5, offset=0).encode()
    assert_error(api.client().get(JOBS, params={"next_token": forged}), 400)


def frame(socket: ClientConnection) -> tuple[int, str]:
    value = json.loads(socket.recv(timeout=30))["value"]
    return value["Type"], value["Line"]


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as stream:
        stream.write(text)


def running_execution(api: Api) -> tuple[str, str, Path]:
    """A job with one running execution: its id, the execution's, and its results dir."""
    job_id = api.submit()
    api.ledger.queue(job_id)
    execution = api.ledger.create_execution(job_id)
    api.ledger.start_execution(job_id, execution)
    results = execution_results_dir(AppSettings(), job_id, execution)
    results.mkdir(parents=True)
    return job_id, execution, results


def follow(api: Api, job_id: str) -> ClientConnection:
    url = api.url.replace("http://", "ws://") + f"{JOBS}/{job_id}/logs?follow=true"
    return connect(url, additional_headers={"Authorization": f"Bearer {ADMIN}"})


def test_a_followed_log_streams_lines_as_they_are_written(api: Api) -> None:
    job_id, execution, results = running_execution(api)
    stdout, stderr = results / "stdout", results / "stderr"
    append(stdout, "first\n")
    with follow(api, job_id) as socket:
        assert frame(socket) == (1, "first\n"), "sent while the job still runs"
        append(stdout, "sec")
        append(stderr, "x\n")
        assert frame(socket) == (2, "x\n")
        append(stderr, "y\n")
        assert frame(socket) == (2, "y\n")  # a whole turn has now seen "sec" on its own
        append(stdout, "ond\n")
        assert frame(socket) == (1, "second\n"), "half a line is held until it is whole"
        append(stdout, "no newline at the end")
        api.ledger.complete_execution(job_id, execution, exit_code=0)
        assert frame(socket) == (1, "no newline at the end")
        assert list(socket) == [], "the socket closes once the job is over"


def test_a_line_longer_than_a_chunk_streams_in_bounded_pieces(api: Api) -> None:
    """A task printing without newlines must not make the server hold all of it."""
    job_id, execution, results = running_execution(api)
    line = "x" * (300 * 1024)
    append(results / "stdout", line)
    with follow(api, job_id) as socket:
        first = frame(socket)[1]  # while the job still runs
        assert 0 < len(first) <= 128 * 1024
        api.ledger.complete_execution(job_id, execution, exit_code=0)
        rest = [json.loads(message)["value"]["Line"] for message in socket]
    assert first + "".join(rest) == line


FISH = "\N{FISH}"  # four bytes in UTF-8


@pytest.mark.parametrize(
    "text",
    ["ab" + FISH * 40_000, ("ab" + FISH * 99 + "\n") * 1000],
    ids=["one-line-longer-than-a-piece", "many-lines"],
)
def test_a_character_across_a_piece_boundary_reaches_the_socket_whole(api: Api, text: str) -> None:
    assert text.encode()[PIECE_BYTES] & 0xC0 == 0x80, "the first piece ends inside a fish"
    job_id, execution, results = running_execution(api)
    (results / "stdout").write_text(text, encoding="utf-8")
    with follow(api, job_id) as socket:
        api.ledger.complete_execution(job_id, execution, exit_code=0)
        lines = [json.loads(message)["value"]["Line"] for message in socket]
    assert "".join(lines) == text
    if text.endswith("\n"):
        assert lines == text.splitlines(keepends=True), "one frame per line"


def test_a_server_fault_names_its_request_id_in_header_and_body(api: Api) -> None:
    api.ledger.close()  # the store goes away under the running server
    response = api.client().get(f"{JOBS}/j-00000000-0000-0000-0000-000000000000")
    error = assert_error(response, 500)
    assert error.RequestID in error.Hint
