"""A ledger written before the package became `klippfisk.*` still opens, verifies and grows.

every-event-v0.db was written by the code before the move (stored topics such as
"engine.job:Job.Submitted"), one event of every kind:
- "old-named" (alice, cli): queued, execution 1 started then failed (retryable), execution 2
  started and completed with "hi\\n", then resubmitted by bob over HTTP with a new label;
- an idempotent bluesky job (key "post-1"): queued, started, its execution cancelled, then
  stopped by carol;
- an unnamed job: queued, started, then timed out after 60 s.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from klippfisk.engine import ExecutionState, JobState, Ledger, Source
from klippfisk.engine.settings import LedgerSettings, Settings
from tests.unit.engine.conftest import compiled_job

DATA = Path(__file__).parents[2] / "data" / "ledger"
NAMED = "j-2b89e788-669f-51c8-9041-c00b4446bf9c"
KEYED = "j-a0a15c50-a7c7-5680-b5d8-e78870f6450e"
TIMED_OUT = "j-468b7071-26d0-4ccb-a663-5b9dcffdc649"


@pytest.fixture
def former(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A copy of the file, read where only the installed `klippfisk` can be imported: run
    from the repository's root, the former top-level `engine` would otherwise import too and
    hide a topic that no longer resolves."""
    root = str(Path(__file__).parents[3])
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", root)])
    for name in [m for m in sys.modules if m == "engine" or m.startswith("engine.")]:
        monkeypatch.delitem(sys.modules, name)
    path = tmp_path / "ledger.db"
    shutil.copy(DATA / "every-event-v0.db", path)
    return Settings(data_dir=tmp_path, ledger=LedgerSettings(path=path))


def stored_topics(settings: Settings) -> set[str]:
    with sqlite3.connect(settings.ledger.path) as connection:
        return {row[0] for row in connection.execute("SELECT topic FROM stored_events")}


def test_the_file_holds_every_event_kind_under_its_former_topics(former: Settings):
    kinds = {topic.rpartition(".")[2] for topic in stored_topics(former)}
    assert kinds == {
        "Submitted",
        "Resubmitted",
        "Queued",
        "ExecutionCreated",
        "ExecutionStarted",
        "ExecutionCompleted",
        "ExecutionFailed",
        "ExecutionCancelled",
        "StopRequested",
        "TimedOut",
    }
    assert all(topic.startswith("engine.job:Job.") for topic in stored_topics(former))


def test_a_former_ledger_reads_back_every_job_as_it_was_written(former: Settings):
    with Ledger.open(former) as ledger:
        named = ledger.get("old-named")
        assert named.id == NAMED and named.version == 2 and named.state == JobState.PENDING
        assert named.job["Labels"] == {"v": "2"} and named.source.actor == "bob"
        first, second = named.executions
        assert first.state == ExecutionState.FAILED and first.error == "boom"
        assert second.state == ExecutionState.COMPLETED and second.stdout == "hi\n"
        assert ledger.get(KEYED).state == JobState.STOPPED
        assert ledger.get(TIMED_OUT).state == JobState.FAILED
        kinds = [entry["Event"]["Message"] for entry in ledger.history(KEYED)]
        assert kinds, "the history of a former job is readable"


def test_a_former_ledger_verifies_and_keeps_appending(former: Settings):
    with Ledger.open(former) as ledger:
        assert ledger.verify().ok
        ledger.queue(NAMED)
        new = ledger.submit(compiled_job("after-the-move"), source=Source("cli", "dave"))
        ledger.stop(new.job_id)
        report = ledger.verify()
        assert report.ok and report.jobs_checked == 4
        assert ledger.get(NAMED).state == JobState.QUEUED
    with Ledger.open(former) as reopened:
        assert reopened.verify().ok
        assert {j.id for j in reopened.list_jobs().items} >= {NAMED, KEYED, TIMED_OUT, new.job_id}
    new_topics = stored_topics(former) - {
        t for t in stored_topics(former) if t.startswith("engine.")
    }
    assert new_topics and all(t.startswith("klippfisk.engine.job:Job.") for t in new_topics)
