"""A writer killed with SIGKILL mid-stream loses nothing it acknowledged and leaves no mess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from klippfisk.engine import Ledger
from klippfisk.engine.persistence.projections import PageQuery
from klippfisk.engine.settings import Settings

CHILD = Path(__file__).with_name("ledger_child.py")


@pytest.mark.slow
def test_a_killed_writer_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "KLIPPFISK_DATA_DIR": str(tmp_path), "KLIPPFISK_LEDGER__STORE": "sqlite"}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "churn"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    acked: dict[str, int] = {}
    for line in child.stdout:
        _, job_id, version = line.split()
        acked[job_id] = int(version)
        if len(acked) >= 60:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()

    with Ledger.open(Settings(data_dir=tmp_path)) as ledger:
        for job_id, version in acked.items():
            stored = ledger.recorder.select_events(job_id)
            versions = [s.originator_version for s in stored]
            assert versions == list(range(1, len(versions) + 1)), f"{job_id} has gaps or repeats"
            assert versions[-1] >= version, f"{job_id} lost acknowledged event {version}"
        assert ledger.verify().ok
        ledger.catch_up()
        rows = ledger.projection.page(PageQuery(limit=10_000))
        stored_jobs = {
            str(n.originator_id) for n in ledger.recorder.select_notifications(1, 100_000)
        }
        assert {r.job_id for r in rows} == stored_jobs
        for row in rows:
            assert row.event_version == ledger.last_modified(row.job_id)
