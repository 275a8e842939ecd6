"""Load: concurrent clients submit and poll `klippfisk serve` (a real process, runner on).

Afterwards nothing may be lost (every accepted job is listed, ran, and has a history from
submission to its end), a repeated idempotency key never made a second job, and the
server's resident memory stays flat between two equal rounds after a warm-up round.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from klippfisk.adapters.http.server import serve_process
from klippfisk.engine.wire import ListResponse, PutJobResponse, WireHistory, WireJob

pytestmark = pytest.mark.slow

KEY = "load-key"
JOBS = "/api/v1/orchestrator/jobs"
CLIENTS = 6
JOBS_PER_CLIENT = 5  # per round; each job is submitted twice under the same key
ROUND_DEADLINE_SECONDS = 120


def noop_job(name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "batch",
        "Count": 1,
        "Tasks": [{"Name": "m", "Engine": {"Type": "noop"}}],
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")


def follow(client: httpx.Client, job_id: str, deadline: float) -> list[WireHistory]:
    """Poll history with the token, as `bacalhau job run` does, until it runs out."""
    events: list[WireHistory] = []
    token = ""
    while time.monotonic() < deadline:
        params = {"limit": "10", **({"next_token": token} if token else {})}
        page = ListResponse[WireHistory].model_validate_json(
            client.get(f"{JOBS}/{job_id}/history", params=params).content
        )
        events += page.Items
        if not page.NextToken:
            return events
        token = page.NextToken
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish within the round")


def client_round(url: str, round_no: int, client_no: int, out: dict[str, list[str]]) -> None:
    deadline = time.monotonic() + ROUND_DEADLINE_SECONDS
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for n in range(JOBS_PER_CLIENT):
            key = f"r{round_no}-c{client_no}-j{n}"
            body = {"Job": noop_job(key)}
            ids = set()
            for _ in range(2):
                response = client.put(JOBS, params={"idempotency_token": key}, json=body)
                assert response.status_code == 200, response.text
                ids.add(PutJobResponse.model_validate_json(response.content).JobID)
            assert len(ids) == 1, f"key {key} made {len(ids)} jobs"
            (job_id,) = ids
            events = follow(client, job_id, deadline)
            assert [e.SeqNum for e in events] == list(range(1, len(events) + 1))
            assert events[0].JobState is not None and events[0].JobState.New == "Pending"
            out.setdefault(key, []).append(job_id)


def run_round(url: str, round_no: int) -> dict[str, list[str]]:
    accepted: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(client_no: int) -> None:
        try:
            client_round(url, round_no, client_no, accepted)
        except BaseException as exc:  # surfaced below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return accepted


def listed_jobs(url: str) -> list[WireJob]:
    jobs: list[WireJob] = []
    token = ""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        while True:
            params = {"limit": "50", **({"next_token": token} if token else {})}
            page = ListResponse[WireJob].model_validate_json(
                client.get(JOBS, params=params).content
            )
            jobs += page.Items
            token = page.NextToken
            if not token:
                return jobs


def test_concurrent_clients_lose_nothing_duplicate_nothing_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    env = {
        "KLIPPFISK_DATA_DIR": str(tmp_path / "data"),
        "KLIPPFISK_SERVER__API_KEYS": json.dumps([{"key": KEY, "namespace": "*"}]),
        "KLIPPFISK_SERVER__RATE_BURST": "100000",
    }
    with serve_process(env=env) as (process, url):
        accepted = run_round(url, 0)
        warm = rss_kib(process.pid)
        for round_no in (1, 2):
            accepted |= run_round(url, round_no)
        after = rss_kib(process.pid)
        jobs = {j.ID: j for j in listed_jobs(url)}

    expected = CLIENTS * JOBS_PER_CLIENT * 3
    assert len(accepted) == expected
    accepted_ids = {ids[0] for ids in accepted.values()}
    assert len(accepted_ids) == expected, "two keys never share a job"
    assert set(jobs) == accepted_ids, "every accepted job is listed, and nothing else"
    assert {j.State.StateType for j in jobs.values()} == {"Completed"}
    growth_mib = (after - warm) / 1024
    assert growth_mib < 40, f"server RSS grew {growth_mib:.1f} MiB over two equal rounds"
