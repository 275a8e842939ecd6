"""HTTP API throughput beside its floor: `python3 -m bench.http [--seconds 5] [--clients 16]`.

Three scenarios, one run, same machine, same load generator (bare asyncio HTTP/1.1,
keep-alive, N concurrent connections on loopback):

- floor:   a bare ASGI app on the same server stack (uvicorn, same settings) returning a
           constant: what the stack costs before any of our code runs;
- submit:  PUT /api/v1/orchestrator/jobs on `klippfisk serve --no-runner` (compile, append
           to the SQLite ledger, answer);
- history: GET /api/v1/orchestrator/jobs/{id}/history of one job, as `bacalhau job run`
           polls it.

Targets (issue 5): submit >= 30% and history >= 50% of the floor's requests per second.
Run it as a module from the repository root (a script named http.py run directly would
shadow the standard library's http package).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.http.server import serve_process

KEY = "bench-key"
JOBS = "/api/v1/orchestrator/jobs"
TARGETS = {"submit": 0.30, "history": 0.50}
FLOOR_BODY = b'{"Status":"OK"}'


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: a constant answer, no framework, no middleware."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(FLOOR_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FLOOR_BODY})


@dataclass
class Result:
    name: str
    ok: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


class Connection:
    """A bare keep-alive HTTP/1.1 client on asyncio streams.

    httpx costs more CPU per request than the floor server does, so with it the load
    generator, not the server, would set every number; this one is an order cheaper.
    """

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        headers = await self.reader.readuntil(b"\r\n\r\n")
        if b"chunked" in headers.lower():
            raise RuntimeError("this load generator only reads Content-Length responses")
        length = 0
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


Request = Callable[[Connection, int], Awaitable[int]]


async def hammer(name: str, url: str, request: Request, clients: int, seconds: float) -> Result:
    """`clients` connections send `request` back to back for `seconds`; count the 200s."""
    ok = failed = 0
    deadline = time.monotonic() + seconds

    async def worker(worker_no: int) -> None:
        nonlocal ok, failed
        connection = Connection(url)
        n = 0
        try:
            while time.monotonic() < deadline:
                status = await request(connection, worker_no * 1_000_000 + n)
                n += 1
                if status == 200:
                    ok += 1
                else:
                    failed += 1
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return Result(name, ok, failed, time.monotonic() - started)


def job(n: int) -> dict[str, Any]:
    task = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}
    return {"Job": {"Name": f"bench-{n}", "Type": "batch", "Count": 1, "Tasks": [task]}}


def start_floor(port_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn serving floor_app on a free port, with the settings `klippfisk serve` uses."""
    code = (
        "import sys, uvicorn; from adapters.http.server import bind; s = bind('127.0.0.1', 0); "
        f"open({str(port_file)!r}, 'w').write(str(s.getsockname()[1])); "
        "uvicorn.Server(uvicorn.Config('bench.http:floor_app', log_level='warning', "
        "access_log=False, server_header=False, lifespan='on')).run(sockets=[s])"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            url = f"http://127.0.0.1:{port_file.read_text()}"
            try:
                httpx.get(url)
                return process, url
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the floor server did not start")


async def measure(floor_url: str, api_url: str, clients: int, seconds: float) -> list[Result]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as client:
        job_id = (await client.put(JOBS, json=job(-1))).json()["JobID"]
    history_path = f"{JOBS}/{job_id}/history?limit=10"

    async def floor(connection: Connection, _: int) -> int:
        return await connection.request("GET", "/")

    async def submit(connection: Connection, n: int) -> int:
        return await connection.request("PUT", JOBS, json.dumps(job(n)).encode())

    async def history(connection: Connection, _: int) -> int:
        return await connection.request("GET", history_path)

    return [
        await hammer("floor", floor_url, floor, clients, seconds),
        await hammer("submit", api_url, submit, clients, seconds),
        await hammer("history", api_url, history, clients, seconds),
    ]


def report(results: list[Result]) -> bool:
    floor = results[0].rate
    print(f"{'scenario':<10}{'ok':>8}{'failed':>8}{'req/s':>10}{'of floor':>10}{'target':>8}")
    met = True
    for r in results:
        share = r.rate / floor if floor else 0.0
        target = TARGETS.get(r.name)
        verdict = "" if target is None else ("met" if share >= target else "MISSED")
        met = met and verdict != "MISSED"
        print(f"{r.name:<10}{r.ok:>8}{r.failed:>8}{r.rate:>10.0f}{share:>10.0%}{verdict:>8}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "KLIPPFISK_DATA_DIR": str(Path(scratch) / "data"),
            "KLIPPFISK_SERVER__API_KEYS": json.dumps([{"key": KEY, "namespace": "*"}]),
            "KLIPPFISK_SERVER__RATE_BURST": "1000000000",
            "KLIPPFISK_SERVER__RATE_PER_SECOND": "1000000000",
        }
        floor_process, floor_url = start_floor(Path(scratch) / "floor-port")
        try:
            with serve_process("--no-runner", env=env) as (_, api_url):
                results = asyncio.run(measure(floor_url, api_url, args.clients, args.seconds))
        finally:
            floor_process.terminate()
            floor_process.wait(timeout=30)
    return 0 if report(results) else 1


if __name__ == "__main__":
    if not __package__:
        sys.exit("Run this as a module from the repository root: python3 -m bench.http")
    sys.exit(main())
