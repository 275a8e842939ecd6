"""Ledger throughput, side by side with the raw sqlite3 floor, and read-model lag.

    python3 -m bench.ledger [--jobs 2000] [--rounds 8] [--store sqlite|postgres]

Run it from the repository root. Measures on the same disk, alternating round by round:
(1) raw sqlite3 writing each job's events as rows in one transaction per job (the floor
nothing event-sourced can beat); (2) the ledger driving each job through its lifecycle
command by command (submit, queue, create, start, complete), each command its own write,
then the same inside `ledger.batch()` (one write per job); (3) how far the read models lag
behind meanwhile, with the background projector on. Prints one JSON object of medians;
numbers vary by machine (and by what else runs on it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from pathlib import Path
from statistics import median
from typing import Any

from engine import Ledger, Source
from engine.settings import LedgerSettings, Settings
from spec.compiled import CompiledSpec, Report

_EVENTS_PER_JOB = 5  # Submitted, Queued, ExecutionCreated, ExecutionStarted, ExecutionCompleted
_JOB = {
    "Name": "",
    "Type": "batch",
    "Count": 1,
    "Tasks": [
        {
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": {"Source": "main.wasm"}}},
            "Resources": {"CPU": "250m", "Memory": "67108864"},
            "Timeouts": {"ExecutionTimeout": 60},
        }
    ],
}


def _spec(name: str) -> CompiledSpec:
    job = {**_JOB, "Name": f"bench-{name}"}
    return CompiledSpec(
        job=job,
        job_cid=f"cid-{name}",
        task_cids={"main": f"task-{name}"},
        report=Report(form="v1", profile="klippfisk", profile_version="1"),
    )


class RawSqlite:
    """The floor: each job's rows written with plain sqlite3 in one transaction (WAL mode and
    the default synchronous level, as the reference figures were measured)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT,"
            " state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        self.payload = json.dumps({"job": _JOB, "reason": "x" * 40, "hash": "0" * 64}).encode()
        self.written = 0

    def write(self, jobs: int) -> float:
        """Jobs per second for `jobs` more jobs."""
        started = time.perf_counter()
        for n in range(self.written, self.written + jobs):
            self.conn.execute("BEGIN")
            for version in range(1, _EVENTS_PER_JOB + 1):
                self.conn.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?)", (f"j-{n}", version, "t", self.payload)
                )
            self.conn.execute("COMMIT")
        self.written += jobs
        return jobs / (time.perf_counter() - started)


def lifecycle(ledger: Ledger, jobs: int, batched: bool) -> tuple[float, float]:
    """Jobs per second through the ledger, and the worst read-model lag seen (seconds).

    Each job is driven command by command; `batched` wraps each job's commands in
    `ledger.batch()` (one write per job, like the raw floor) instead of one write each."""
    written: list[tuple[float, int]] = []  # (time, notification id reached)
    lags: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            now = time.perf_counter()
            written.append((now, ledger.recorder.max_notification_id() or 0))
            position = ledger.projection.position()
            ids = [w[1] for w in written]
            first = bisect_left(ids, position + 1)
            if first < len(written):
                lags.append(now - written[first][0])

    ledger.start_projecting(0.1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]  # fresh names, so a shared PostgreSQL database can be reused
    for n in range(jobs):
        with ledger.batch() if batched else contextlib.nullcontext():
            job_id = ledger.submit(_spec(f"{run}-{n}"), source=Source("bench", "bench", "")).job_id
            ledger.queue(job_id)
            exec_id = ledger.create_execution(job_id)
            ledger.start_execution(job_id, exec_id)
            ledger.complete_execution(job_id, exec_id, exit_code=0, stdout="ok\n")
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    ledger.stop_projecting()
    return jobs / elapsed, max(lags, default=0.0)


def run(jobs: int, store: str, rounds: int) -> dict[str, Any]:
    """Alternate the three measurements round by round, so that whatever else loads the
    machine meanwhile weighs on all of them alike; report medians."""
    per_round = max(jobs // rounds, 1)
    rates: dict[str, list[float]] = {"raw": [], "command": [], "batch": []}
    lags: dict[str, list[float]] = {"command": [], "batch": []}
    with tempfile.TemporaryDirectory() as tmp:
        raw = RawSqlite(Path(tmp) / "raw.db")
        settings = Settings(data_dir=Path(tmp), ledger=LedgerSettings(store=store))
        with Ledger.open(settings) as ledger:
            for _ in range(rounds):
                rates["raw"].append(raw.write(per_round))
                for mode in ("command", "batch"):
                    rate, lag = lifecycle(ledger, per_round, batched=mode == "batch")
                    rates[mode].append(rate)
                    lags[mode].append(lag)
            report = ledger.verify()

    def summary(mode: str) -> dict[str, float]:
        ratios = [r / f for r, f in zip(rates[mode], rates["raw"], strict=True)]
        return {
            "jobs_per_s": round(median(rates[mode])),
            "ratio_to_raw": round(median(ratios), 3),
            "read_model_max_lag_s": round(max(lags[mode]), 3),
        }

    return {
        "store": store,
        "jobs": per_round * rounds,
        "rounds": rounds,
        "events_per_job": _EVENTS_PER_JOB,
        "raw_sqlite_jobs_per_s": round(median(rates["raw"])),
        "one_write_per_command": summary("command"),
        "one_write_per_job_batch": summary("batch"),
        "chain_verified": report.ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(run(args.jobs, args.store, args.rounds), indent=2))


if __name__ == "__main__":
    main()
