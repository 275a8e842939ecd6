"""A separate process that writes to the ledger, for the crash and concurrency tests.

    python ledger_child.py churn            submit and run jobs until killed, printing
                                            "ack <job_id> <version>" after each command
    python ledger_child.py submit GO COUNT VARIANT
                                            wait for the file GO, then submit COUNT jobs
                                            under keys GO-0.., printing one JSON line each

The store comes from the environment (KLIPPFISK_DATA_DIR, KLIPPFISK_LEDGER__*, POSTGRES_*),
as it would for any klippfisk process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from klippfisk.engine import IdempotencyConflict, Ledger
from klippfisk.spec.address import cid_of
from klippfisk.spec.compiled import CompiledSpec, Report

_TEMPLATE = Path(__file__).parent.parent / "data" / "ledger" / "job.json"


def _spec(name: str | None, variant: str) -> CompiledSpec:
    job = json.loads(_TEMPLATE.read_text())
    job["Tasks"][0]["Engine"]["Params"]["Parameters"] = [f"echo {variant}"]
    if name:
        job["Name"] = name
    report = Report(form="v1", profile="klippfisk", profile_version="1")
    return CompiledSpec(job, cid_of(job), {"main": cid_of(job["Tasks"][0])}, report)


def churn(ledger: Ledger) -> None:
    ledger.start_projecting(0.01)  # so a kill can land in the middle of a projection batch
    n = 0
    while True:
        n += 1
        job_id = ledger.submit(_spec(f"churn-{n}", "x")).job_id
        print("ack", job_id, 1, flush=True)
        ledger.queue(job_id)
        print("ack", job_id, 2, flush=True)
        execution_id = ledger.create_execution(job_id)
        print("ack", job_id, 3, flush=True)
        ledger.start_execution(job_id, execution_id)
        print("ack", job_id, 4, flush=True)
        ledger.complete_execution(job_id, execution_id, exit_code=0)
        print("ack", job_id, 5, flush=True)


def submit(ledger: Ledger, go: Path, count: int, variant: str) -> None:
    while not go.exists():
        time.sleep(0.001)
    for k in range(count):
        try:
            result = ledger.submit(_spec(None, variant), idempotency_key=f"{go}-{k}")
            line = {"key": k, "job_id": result.job_id, "created": result.created}
        except IdempotencyConflict:
            line = {"key": k, "conflict": True}
        print(json.dumps(line), flush=True)


def main() -> None:
    with Ledger.open() as ledger:
        if sys.argv[1] == "churn":
            churn(ledger)
        else:
            submit(ledger, Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])


if __name__ == "__main__":
    main()
