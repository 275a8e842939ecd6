"""HTTP API throughput beside its floor: `python3 -m bench.http [--seconds 5] [--clients 16]
[--writers 4] [--runs 3]`.

Four scenarios per run, same machine, same load generator (bare asyncio HTTP/1.1,
keep-alive, N concurrent connections on loopback), the whole set run `--runs` times:

- floor:   a bare ASGI app on the same server stack (uvicorn, same settings) returning a
           constant: what the stack costs before any of our code runs;
- submit:  PUT /api/v1/orchestrator/jobs on `klippfisk serve --no-runner` (compile, append
           to the SQLite ledger, answer);
- history: GET /api/v1/orchestrator/jobs/{id}/history of one job, as `bacalhau job run`
           polls it, on an idle ledger (so every poll after the first is a cache hit);
- history_under_writes: the same polls on N connections while `--writers` more connections
           submit jobs (the "writes" row): every write moves the ledger, so polls miss the
           cache as they do on a busy server. Its CPU per request counts both kinds.

Every submitted job has a name of its own (no run or scenario repeats one), so each is a
new job rather than a refused identical resubmission.

Targets (issue 5): submit >= 30% and history >= 50% of the floor's requests per second.
Besides requests per second, each scenario reports the server's CPU time per request (from
/proc, Linux only): on a shared machine the rate moves with whatever else runs, while the
CPU a request costs is the steadier figure, and its ratio to the floor's says the same thing.
Runs are printed one by one, then the range (min-max) of each figure over the runs.
Run it as a module from the repository root (a script named http.py run directly would
shadow the standard library's http package).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from klippfisk.adapters.http.server import serve_process

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
    cpu_seconds: float | None  # the server process's CPU time over the scenario
    served: int = 0  # requests that CPU time served, when more than this row's `ok`

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def cpu_per_request(self) -> float | None:
        served = self.served or self.ok
        return self.cpu_seconds / served if self.cpu_seconds is not None and served else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (all its threads); None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


@dataclass
class Load:
    """What `drive` did: 200s, other answers, seconds taken."""

    ok: int
    failed: int
    seconds: float


async def drive(url: str, request: Request, clients: int, seconds: float) -> Load:
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
    return Load(ok, failed, time.monotonic() - started)


async def hammer(
    name: str, url: str, pid: int, request: Request, clients: int, seconds: float
) -> Result:
    """`drive` one kind of request, and the CPU the server (process `pid`) spent meanwhile."""
    cpu_before = cpu_seconds(pid)
    load = await drive(url, request, clients, seconds)
    cpu = _spent(pid, cpu_before)
    return Result(name, load.ok, load.failed, load.seconds, cpu)


async def hammer_both(
    names: tuple[str, str],
    url: str,
    pid: int,
    requests: tuple[Request, Request],
    clients: tuple[int, int],
    seconds: float,
) -> list[Result]:
    """Two kinds of request at once; the server's CPU is charged to the first row, per
    request of either kind (it cannot be split between them)."""
    cpu_before = cpu_seconds(pid)
    first, second = await asyncio.gather(
        *(drive(url, r, c, seconds) for r, c in zip(requests, clients, strict=True))
    )
    cpu = _spent(pid, cpu_before)
    served = first.ok + second.ok
    return [
        Result(names[0], first.ok, first.failed, first.seconds, cpu, served),
        Result(names[1], second.ok, second.failed, second.seconds, None),
    ]


def _spent(pid: int, before: float | None) -> float | None:
    after = cpu_seconds(pid)
    return after - before if before is not None and after is not None else None


def job(name: str) -> dict[str, Any]:
    task = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}
    return {"Job": {"Name": name, "Type": "batch", "Count": 1, "Tasks": [task]}}


def start_floor(port_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    """floor_app on a free port, served by the very function `klippfisk serve` serves with
    (same uvicorn settings, event loop and HTTP parser)."""
    code = (
        "from klippfisk.adapters.http.server import bind, run; from bench.http import floor_app; "
        f"s = bind('127.0.0.1', 0); open({str(port_file)!r}, 'w').write(str(s.getsockname()[1])); "
        "run(floor_app, s)"
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


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


async def measure(
    floor: Server, api: Server, load: tuple[int, int], seconds: float, run: int
) -> list[Result]:
    """One run of every scenario; `load` is (polling or submitting clients, writers)."""
    clients, writers = load
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
        job_id = (await client.put(JOBS, json=job(f"bench-{run}-polled"))).json()["JobID"]
    history_path = f"{JOBS}/{job_id}/history?limit=10"

    async def constant(connection: Connection, _: int) -> int:
        return await connection.request("GET", "/")

    def submitting(scenario: str) -> Request:
        async def submit(connection: Connection, n: int) -> int:
            body = json.dumps(job(f"bench-{run}-{scenario}-{n}")).encode()
            return await connection.request("PUT", JOBS, body)

        return submit

    async def history(connection: Connection, _: int) -> int:
        return await connection.request("GET", history_path)

    return [
        await hammer("floor", floor.url, floor.pid, constant, clients, seconds),
        await hammer("submit", api.url, api.pid, submitting("submit"), clients, seconds),
        await hammer("history", api.url, api.pid, history, clients, seconds),
        *await hammer_both(
            ("hist+writes", "writes"),
            api.url,
            api.pid,
            (history, submitting("writes")),
            (clients, writers),
            seconds,
        ),
    ]


def _cpu_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.0f}"


def report(results: list[Result]) -> None:
    """One run: each scenario's rate, its share of the floor's, and its CPU per request."""
    floor = results[0]
    print(
        f"{'scenario':<12}{'ok':>8}{'failed':>8}{'req/s':>9}{'of floor':>10}"
        f"{'cpu us/req':>12}{'x floor':>9}"
    )
    for r in results:
        share = r.rate / floor.rate if floor.rate else 0.0
        cpu, floor_cpu = r.cpu_per_request, floor.cpu_per_request
        times = f"{cpu / floor_cpu:.1f}" if cpu is not None and floor_cpu else "-"
        print(
            f"{r.name:<12}{r.ok:>8}{r.failed:>8}{r.rate:>9.0f}{share:>10.0%}"
            f"{_cpu_text(cpu):>12}{times:>9}"
        )


def summary(runs: list[list[Result]]) -> bool:
    """The range of each figure over the runs, and whether every run met the targets."""
    print(f"\nover {len(runs)} run(s), min-max:")
    met = True
    for index, name in enumerate(r.name for r in runs[0]):
        rates = [run[index].rate for run in runs]
        shares = [run[index].rate / run[0].rate for run in runs if run[0].rate]
        cpus = [c for run in runs if (c := run[index].cpu_per_request) is not None]
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = "met" if min(shares) >= target else f"MISSED (target {target:.0%})"
            met = met and min(shares) >= target
        cpu = f"{min(cpus) * 1e6:.0f}-{max(cpus) * 1e6:.0f} us/req" if cpus else "-"
        print(
            f"{name:<12}{min(rates):>7.0f}-{max(rates):<7.0f}req/s "
            f"{min(shares):>4.0%}-{max(shares):<5.0%}of floor  cpu {cpu}  {verdict}"
        )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--writers", type=int, default=4, help="submitting connections beside the polls"
    )
    parser.add_argument("--runs", type=int, default=3, help="times to run every scenario")
    args = parser.parse_args()
    runs: list[list[Result]] = []
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "KLIPPFISK_DATA_DIR": str(Path(scratch) / "data"),
            "KLIPPFISK_SERVER__API_KEYS": json.dumps([{"key": KEY, "namespace": "*"}]),
            "KLIPPFISK_SERVER__RATE_BURST": "1000000000",
            "KLIPPFISK_SERVER__RATE_PER_SECOND": "1000000000",
        }
        floor_process, floor_url = start_floor(Path(scratch) / "floor-port")
        try:
            with serve_process("--no-runner", env=env) as (api_process, api_url):
                floor = Server(floor_url, floor_process.pid)
                api = Server(api_url, api_process.pid)
                for run in range(args.runs):
                    print(f"run {run + 1} of {args.runs}")
                    runs.append(
                        asyncio.run(
                            measure(floor, api, (args.clients, args.writers), args.seconds, run)
                        )
                    )
                    report(runs[-1])
        finally:
            floor_process.terminate()
            floor_process.wait(timeout=30)
    return 0 if summary(runs) else 1


if __name__ == "__main__":
    if not __package__:
        sys.exit("Run this as a module from the repository root: python3 -m bench.http")
    sys.exit(main())
