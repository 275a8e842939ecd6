"""Ledger throughput, side by side with the raw sqlite3 floor, and read-model lag.

    python3 -m bench.ledger [--jobs 2000] [--rounds 8] [--threads 8]
                            [--store sqlite|postgres] [--synchronous NORMAL|FULL]

Run it from the repository root. Measures on the same disk, alternating round by round:
(1) raw sqlite3 writing each job's events as rows in one transaction per job, at the same
synchronous level as the ledger (the floor nothing event-sourced can beat), and the same
rows with one transaction per event (the ceiling for one durable write per command); (2) the ledger
driving each job through its lifecycle command by command (submit, queue, create, start,
complete), each command a durable write before it returns: from one thread, then from
`--threads` threads at once (as the runner and the HTTP server do) with group commit on,
on with a 2 ms window, and off; (3) the same inside `ledger.batch()` (one write per job);
meanwhile (4) how far the read models lag behind, with the background projector on; (5) the
eventsourcing library's own smallest aggregate for the same five events (bench/library_floor.py),
saved at once per job and saved after every command: the figures issue 3's target came from.
The default durability is FULL, sqlite3's own default, at which issue 3's floor figures
(~4,200 jobs/s raw) were taken; the ledger's default setting is NORMAL, so run both. Prints
one JSON object of medians; numbers vary by machine (and by what else runs on it).
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

from bench.library_floor import BareLibrary
from klippfisk.engine import Ledger, Source
from klippfisk.engine.settings import LedgerSettings, Settings
from klippfisk.spec.compiled import CompiledSpec, Report

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
    """The floor: each job's rows written with plain sqlite3 in one transaction (WAL mode)."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute(
            "CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT,"
            " state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        self.payload = json.dumps({"job": _JOB, "reason": "x" * 40, "hash": "0" * 64}).encode()
        self.written = 0

    def write(self, jobs: int, *, per_event: bool = False) -> float:
        """Jobs per second for `jobs` more jobs: one transaction per job, or with `per_event`
        one per event (what command-by-command durability costs with no Python around it)."""
        started = time.perf_counter()
        for n in range(self.written, self.written + jobs):
            if not per_event:
                self.conn.execute("BEGIN")
            for version in range(1, _EVENTS_PER_JOB + 1):
                if per_event:
                    self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?)", (f"j-{n}", version, "t", self.payload)
                )
                if per_event:
                    self.conn.execute("COMMIT")
            if not per_event:
                self.conn.execute("COMMIT")
        self.written += jobs
        return jobs / (time.perf_counter() - started)


def _lifecycle(ledger: Ledger, name: str, batched: bool) -> None:
    """One job driven command by command (inside one batch when `batched`)."""
    with ledger.batch() if batched else contextlib.nullcontext():
        job_id = ledger.submit(_spec(name), source=Source("bench", "bench", "")).job_id
        ledger.queue(job_id)
        exec_id = ledger.create_execution(job_id)
        ledger.start_execution(job_id, exec_id)
        ledger.complete_execution(job_id, exec_id, exit_code=0, stdout="ok\n")


def lifecycle(
    ledger: Ledger, jobs: int, *, threads: int = 1, batched: bool = False
) -> tuple[float, float]:
    """Jobs per second through the ledger, and the worst read-model lag seen (seconds).

    `threads` threads each drive their share of the jobs, command by command; `batched`
    wraps each job's commands in `ledger.batch()` (one write per job, like the raw floor)."""
    written: list[tuple[float, int]] = []  # (time, notification id reached)
    lags: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            now = time.perf_counter()
            written.append((now, ledger.position()))
            position = ledger.projection.position()
            ids = [w[1] for w in written]
            first = bisect_left(ids, position + 1)
            if first < len(written):
                lags.append(now - written[first][0])

    run = uuid.uuid4().hex[:8]  # fresh names, so a shared PostgreSQL database can be reused

    def work(first: int) -> None:
        for n in range(first, jobs, threads):
            _lifecycle(ledger, f"{run}-{n}", batched)

    ledger.start_projecting(0.1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    ledger.stop_projecting()
    return jobs / elapsed, max(lags, default=0.0)


def run(jobs: int, store: str, rounds: int, threads: int, synchronous: str) -> dict[str, Any]:
    """Alternate the measurements round by round, so that whatever else loads the machine
    meanwhile weighs on all of them alike; report medians."""
    per_round = max(jobs // rounds, 1)
    modes = {  # threads, batched, which ledger
        "one_thread_one_write_per_command": (1, False, "grouped"),
        f"{threads}_threads_group_commit": (threads, False, "grouped"),
        f"{threads}_threads_group_commit_window_2ms": (threads, False, "window"),
        f"{threads}_threads_no_group_commit": (threads, False, "alone"),
        "one_thread_batch_per_job": (1, True, "grouped"),
    }
    library = ("library_bare_save_at_once", "library_bare_save_per_command")
    rates: dict[str, list[float]] = {
        "raw": [],
        "raw_per_event": [],
        **{m: [] for m in library},
        **{m: [] for m in modes},
    }
    lags: dict[str, list[float]] = {mode: [] for mode in modes}
    groups: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = RawSqlite(Path(tmp) / "raw.db", synchronous)
        bare = BareLibrary(Path(tmp) / "bare.db", synchronous, _JOB)

        def settings(group_commit: bool, window_ms: float) -> Settings:
            ledger = LedgerSettings(
                store=store,
                sqlite_synchronous=synchronous,
                group_commit=group_commit,
                group_commit_window_ms=window_ms,
            )
            return Settings(data_dir=Path(tmp), ledger=ledger)

        with (
            Ledger.open(settings(True, 0)) as grouped,
            Ledger.open(settings(True, 2)) as window,
            Ledger.open(settings(False, 0)) as alone,
        ):
            ledgers = {"grouped": grouped, "window": window, "alone": alone}
            for _ in range(rounds):
                rates["raw"].append(raw.write(per_round))
                rates["raw_per_event"].append(raw.write(per_round, per_event=True))
                for mode in library:
                    per_command = mode.endswith("per_command")
                    rates[mode].append(bare.write(per_round, per_command=per_command))
                for mode, (workers, batched, which) in modes.items():
                    ledger = ledgers[which]
                    before = _groups(ledger)
                    rate, lag = lifecycle(ledger, per_round, threads=workers, batched=batched)
                    after = _groups(ledger)
                    rates[mode].append(rate)
                    lags[mode].append(lag)
                    seen = groups.get(mode, (0, 0))
                    groups[mode] = (seen[0] + after[0] - before[0], seen[1] + after[1] - before[1])
            report = grouped.verify()
        bare.close()

    def summary(mode: str) -> dict[str, float]:
        ratios = [r / f for r, f in zip(rates[mode], rates["raw"], strict=True)]
        transactions, writes = groups[mode]
        return {
            "jobs_per_s": round(median(rates[mode])),
            "ratio_to_raw": round(median(ratios), 3),
            "read_model_max_lag_s": round(max(lags[mode]), 3),
            "writes_per_transaction": round(writes / transactions, 2) if transactions else 0,
        }

    return {
        "store": store,
        "synchronous": synchronous,
        "jobs_per_mode": per_round * rounds,
        "rounds": rounds,
        "events_per_job": _EVENTS_PER_JOB,
        "raw_sqlite_jobs_per_s": round(median(rates["raw"])),
        # The ceiling for any command-by-command ledger: five commits per job, no Python.
        "raw_sqlite_one_transaction_per_event": {
            "jobs_per_s": round(median(rates["raw_per_event"])),
            "ratio_to_raw": round(
                median(e / r for e, r in zip(rates["raw_per_event"], rates["raw"], strict=True)),
                3,
            ),
        },
        **{
            mode: {
                "jobs_per_s": round(median(rates[mode])),
                "ratio_to_raw": round(
                    median(b / r for b, r in zip(rates[mode], rates["raw"], strict=True)), 3
                ),
            }
            for mode in library
        },
        **{mode: summary(mode) for mode in modes},
        "chain_verified": report.ok,
    }


def _groups(ledger: Ledger) -> tuple[int, int]:
    """Transactions written and commands they carried, so far (0, 0 without group commit)."""
    writer = ledger.group_commit
    return (writer.groups, writer.writes) if writer is not None else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="FULL")
    args = parser.parse_args()
    result = run(args.jobs, args.store, args.rounds, args.threads, args.synchronous)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
